"""The measured side of `nurture bench tui` (run as `python -m nurture_tui.tui.bench_probe`): a fresh
process that opens the real app headless on the Leads screen and reports, one JSON object per line:

- `{"event": "ready"}` as soon as the first screen of leads is painted and takes keys (the parent times
  process start → this line);
- then page-down and jump-to-end latencies (key press → every visible row loaded and repainted) and the
  peak RSS.

With `--reference N` it instead times the built-in DataTable loading N rows of the same leads (the
reference the issue names), to first paint, and its RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from typing import Any

SIZE = (120, 40)


def _emit(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


def _rss_parts() -> dict[str, float]:
    """Current RSS split into anonymous (heap) and file-backed (SQLite mmap, shared libraries) MB."""
    parts: dict[str, float] = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("RssAnon", "RssFile", "RssShmem")):
                    key, value = line.split(":")
                    parts[key.lower() + "_mb"] = round(int(value.split()[0]) / 1024.0, 1)
    except OSError:
        pass
    return parts


async def _until(pilot: Any, cond: Any, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not cond():
        if time.perf_counter() > deadline:
            raise TimeoutError("the lead list did not load in time")
        await asyncio.sleep(0.001)
    await pilot.pause()  # let the repaint that follows the data go out


async def _measure_app(db_url: str, pages: int, jumps: int) -> None:
    from .. import cli
    from ..commands.common import CliState
    from ..commands.tui import open_workspace
    from .app import make_app

    cli._register()  # what `nurture tui` does before opening: every command module is imported
    from .widgets.leads.lead_list import LeadList

    ws = open_workspace(CliState(db_url=db_url))
    app = make_app(ws, initial_mode="leads", background=False, status_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        def lead_list() -> LeadList | None:
            found = app.screen.query(LeadList)
            return found.first() if found else None

        await _until(pilot, lambda: (lst := lead_list()) is not None and lst.loaded and lst.visible_loaded())
        usage = resource.getrusage(resource.RUSAGE_SELF)
        _emit(event="ready", cpu_s=round(usage.ru_utime + usage.ru_stime, 3))
        lst = lead_list()
        assert lst is not None
        await _until(pilot, lambda: lst.total is not None)
        await pilot.pause(0.3)  # let the prefetch after the first paint finish, as a user's first glance does

        async def key_to_paint(key: str, moved: Any) -> float:
            """A real key event (as the terminal driver posts it) → the cursor moved, every visible row
            loaded, and the frame after that painted."""
            start = time.perf_counter()
            app.simulate_key(key)
            while not (moved() and lst.visible_loaded()):
                await asyncio.sleep(0.0005)
            painted = asyncio.Event()
            lst.call_after_refresh(painted.set)
            await painted.wait()
            return (time.perf_counter() - start) * 1000

        page_ms = []
        for _ in range(pages):
            before = lst.cursor
            page_ms.append(await key_to_paint("pagedown", lambda before=before: lst.cursor > before))
            await asyncio.sleep(0.05)  # a fast reader's pace; prefetch runs in between as it would
        jump_ms = []
        total = lst.total or 0
        for _ in range(jumps):
            await key_to_paint("home", lambda: lst.cursor == 0)
            for i in [i for i in lst.rows if i >= total - 2000]:  # cold jump: forget the tail
                del lst.rows[i]
            jump_ms.append(await key_to_paint("end", lambda: lst.cursor == total - 1))
        _emit(event="done", total=total, page_down_ms=round(statistics.median(page_ms), 2),
              page_down_p95_ms=round(sorted(page_ms)[int(0.95 * (len(page_ms) - 1))], 2),
              jump_end_ms=round(statistics.median(jump_ms), 2), rss_mb=_rss_mb(), **_rss_parts())
    ws.close()


async def _measure_reference(db_url: str, rows: int) -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from ..bench.tui import reference_rows

    start = time.perf_counter()
    data = reference_rows(db_url, rows)

    class Reference(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("Email", "Name", "Company", "Country", "Stage", "Score")
            table.add_rows(data)

    app = Reference()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()  # rows added, layout and the first frame done
        first_paint = time.perf_counter() - start
    _emit(event="reference", rows=len(data), first_paint_s=round(first_paint, 3), rss_mb=_rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--jumps", type=int, default=5)
    parser.add_argument("--reference", type=int, default=0)
    args = parser.parse_args()
    if args.reference:
        asyncio.run(_measure_reference(args.db, args.reference))
    else:
        asyncio.run(_measure_app(args.db, args.pages, args.jumps))


if __name__ == "__main__":
    main()
