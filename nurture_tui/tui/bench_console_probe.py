"""One TUI console, headless under Textual's Pilot, making the bulk "adjust score" write by keys until its time
is up (issue 20 item 12): tag the current lead (space), `a`, points, reason, confirm `y`. Run as
`python -m nurture_tui.tui.bench_console_probe DB CONFIG USER ROLE SECONDS` by `nurture bench
concurrent-consoles --pilot` and tests/integration/store/test_concurrent_writers.py; prints the scenario's
one JSON line: {"name", "ok", "errors", "latencies"}. An error toast or the error modal the app shows (what
would reach the operator) is an error; a write has landed when the audit log (read through the console) has
a newer entry of this user."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


async def _until(pilot: Any, cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await pilot.pause(0.02)
    return cond()


async def main(db_url: str, config: str, name: str, role: str, seconds: float) -> None:
    os.environ["NURTURE_USER__NAME"] = name
    os.environ["NURTURE_USER__ROLE"] = role
    from textual.widgets import Input

    from ..config import load_settings
    from ..console.audit_log import AuditFilter
    from ..workspace import Workspace
    from .app import make_app
    from .screens.dialogs.confirm import ConfirmModal
    from .screens.dialogs.error import ErrorModal
    from .screens.dialogs.prompt import PromptModal
    from .widgets.leads.lead_list import LeadList

    ws = Workspace.open(load_settings(config, db_url))
    app = make_app(ws, initial_mode="leads")

    def landed() -> int:
        newest = app.backend.sync.audit(limit=1, where=AuditFilter(user=name))
        return newest[0].id if newest else 0

    ok, errors, latencies = 0, [], []
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: bool(app.screen.query(LeadList)) and app.screen.query_one(LeadList).loaded, 60)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen = len(app._notifications)
            t0 = time.perf_counter()
            await pilot.press("space", "a")
            if not await _until(pilot, lambda: isinstance(app.screen, PromptModal), 30):
                errors.append("the points prompt did not open")
                break
            app.screen.query_one(Input).value = "1"
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, PromptModal)
                         and app.screen.title_text.startswith("Reason"), 30)
            app.screen.query_one(Input).value = f"bench {name} {ok}"
            await pilot.press("enter")
            await _until(pilot, lambda: isinstance(app.screen, ConfirmModal), 30)
            before = landed()
            await pilot.press("y")
            done = await _until(pilot, lambda before=before, seen=seen: (  # type: ignore[misc]
                landed() > before or isinstance(app.screen, ErrorModal)
                or any(n.severity == "error" for n in list(app._notifications)[seen:])), 150)
            latencies.append(time.perf_counter() - t0)
            bad = [n.message for n in list(app._notifications)[seen:] if n.severity == "error"]
            if isinstance(app.screen, ErrorModal):
                bad.append("error modal")
            if bad or not done:
                errors += bad or ["the write did not land"]
                break
            ok += 1
            await pilot.press("down")
    ws.close()
    print(json.dumps({"name": name, "ok": ok, "errors": errors, "latencies": latencies}))


if __name__ == "__main__":
    a = sys.argv[1:]
    asyncio.run(main(a[0], a[1], a[2], a[3], float(a[4])))
