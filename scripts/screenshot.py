"""Write docs/screenshot.svg: the dashboard of a live demo (5,000 leads, a few demo days in).

    .venv/bin/python scripts/screenshot.py [--leads N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from nurture_tui.config import load_settings
from nurture_tui.demo.live import DemoRuntime
from nurture_tui.demo.workspace import ensure_demo
from nurture_tui.tui.app import make_app
from nurture_tui.workspace import Workspace

DOCS = Path(__file__).resolve().parent.parent / "docs"


async def shoot(ws: Workspace, runtime: DemoRuntime, seconds: float) -> None:
    app = make_app(ws, demo=runtime)
    async with app.run_test(size=(140, 42)) as pilot:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline or not app.screen.query("#chart-engagement"):
            await pilot.pause(0.5)
        await pilot.pause(2.5)  # one more dashboard refresh after the demo has run
        app.save_screenshot(filename="screenshot.svg", path=str(DOCS))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--leads", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20.0, help="real seconds the live demo runs first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, f"sqlite:///{tmp}/demo.db", data_dir=Path(tmp))
        settings.user.name = "maria"
        ws = Workspace.open(settings, create=True)
        ws, _summary = ensure_demo(ws, leads=args.leads, seed=42)
        runtime = DemoRuntime(ws)
        try:
            asyncio.run(shoot(ws, runtime, args.seconds))
        finally:
            runtime.stop()
            ws.close()
    print(f"wrote {DOCS / 'screenshot.svg'}")


if __name__ == "__main__":
    main()
