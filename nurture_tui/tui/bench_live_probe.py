"""Headless probe for `nurture bench tui-live`: the leaderboard at 4 Hz on a workspace another process is
writing to, in a fresh process so its CPU is the TUI's alone.

Prints JSON lines:
- `{"event": "refresh", "ms": [...], "fetch_ms": [...], "apply_ms": [...], "lines_drawn": [...]}` — every
  refresh of the leaderboard: the poll timer fires → the console query in its worker → the keyed diff
  applied → the frame that painted it (the compositor's update handed to the driver; a refresh that changed
  nothing on screen ends with its diff); `fetch_ms` the console call alone (in the worker), `apply_ms` the
  diff on the UI thread, `lines_drawn` the table lines drawn again for it.
- `{"event": "cpu", "pct": …, "seconds": …, "refreshes": …}` — process CPU (every thread) over the measured
  window, as a percentage of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any, cast

SIZE = (160, 48)


def _emit(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def _until(cond: Any, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError("the leaderboard did not load")
        await asyncio.sleep(0.01)


async def _measure(db_url: str, now: str, seconds: float, rate_hz: int) -> None:
    from ..clock import VirtualClock
    from ..config import load_settings
    from ..workspace import Workspace
    from .app import make_app
    from .screens.leaderboard import LeaderboardScreen

    ws = Workspace.open(load_settings(None, db_url), clock=VirtualClock(datetime.fromisoformat(now)),
                        check_schema=False)
    app = make_app(ws, initial_mode="leaderboard", background=False)
    try:
        async with app.run_test(size=SIZE):
            await _until(lambda: isinstance(app.screen, LeaderboardScreen) and app.screen.table.row_count > 0)
            screen: Any = app.screen
            screen._set_rate(rate_hz)
            table = screen.table
            started: list[float] = []
            fetched: list[float] = []
            applied: list[float] = []
            drawn: list[int] = []
            refresh_ms: list[float] = []
            painting: list[tuple[float, int]] = []  # refreshes waiting for their frame: (start, lines drawn before)
            fetch = screen.fetch
            load, refresh_rows, display = screen.load, screen.refresh_rows, app._display

            def timed_load() -> None:
                started.append(time.perf_counter())
                load()

            def timed_fetch() -> Any:
                t0 = time.perf_counter()
                rows = fetch()
                fetched.append((time.perf_counter() - t0) * 1000)
                return rows

            def timed_refresh() -> None:
                t0 = time.perf_counter()
                refresh_rows()
                applied.append((time.perf_counter() - t0) * 1000)
                if not started:
                    return
                if any(w._repaint_required or w._layout_required for w in (screen, *screen.walk_children())):
                    painting.append((started[-1], getattr(table, "lines_rendered", 0)))
                else:  # nothing on screen changed: the refresh ends with its diff
                    refresh_ms.append((time.perf_counter() - started[-1]) * 1000)
                    drawn.append(0)

            def timed_display(on: Any, update: Any) -> None:
                display(on, update)
                if painting and update is not None:
                    now = time.perf_counter()
                    for t0, lines in painting:
                        refresh_ms.append((now - t0) * 1000)
                        drawn.append(getattr(table, "lines_rendered", 0) - lines)
                    painting.clear()

            screen.load, screen.fetch, screen.refresh_rows = timed_load, timed_fetch, timed_refresh
            cast(Any, app)._display = timed_display
            await asyncio.sleep(2.0)  # warm-up: the day's baselines, the page cache
            for samples in (refresh_ms, fetched, applied, drawn):
                samples.clear()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            _emit(event="refresh", ms=[round(x, 3) for x in refresh_ms], fetch_ms=[round(x, 3) for x in fetched],
                  apply_ms=[round(x, 3) for x in applied], lines_drawn=drawn)
            _emit(event="cpu", pct=round(100.0 * cpu / wall, 2), seconds=round(wall, 2), refreshes=len(refresh_ms))
    finally:
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(_measure(args.db, args.now, args.seconds, args.rate))


if __name__ == "__main__":
    main()
