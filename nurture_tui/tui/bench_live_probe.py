"""Headless probe for `nurture bench tui-live`: the leaderboard at 4 Hz on a workspace another process is
writing to, in a fresh process so its CPU is the TUI's alone.

Prints JSON lines:
- `{"event": "refresh", "ms": [...], "fetch_ms": [...]}` — every refresh of the leaderboard: the poll timer
  fires → the console query in its worker → the keyed diff applied → the frame after it painted; `fetch_ms`
  the console call alone (in the worker).
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
from typing import Any

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
            started: list[float] = []
            fetched: list[float] = []
            refresh_ms: list[float] = []
            fetch = screen.fetch
            load, refresh_rows = screen.load, screen.refresh_rows

            def timed_load() -> None:
                started.append(time.perf_counter())
                load()

            def timed_fetch() -> Any:
                t0 = time.perf_counter()
                rows = fetch()
                fetched.append((time.perf_counter() - t0) * 1000)
                return rows

            def timed_refresh() -> None:
                refresh_rows()
                if started:
                    t0 = started[-1]
                    screen.table.call_after_refresh(lambda: refresh_ms.append((time.perf_counter() - t0) * 1000))

            screen.load, screen.fetch, screen.refresh_rows = timed_load, timed_fetch, timed_refresh
            await asyncio.sleep(2.0)  # warm-up: the day's baselines, the page cache
            refresh_ms.clear()
            fetched.clear()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            _emit(event="refresh", ms=[round(x, 3) for x in refresh_ms], fetch_ms=[round(x, 3) for x in fetched])
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
