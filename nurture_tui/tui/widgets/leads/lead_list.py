"""The virtual lead list: a Line-API ScrollView over any number of leads.

Only the rows near the viewport are held (a position -> LeadRow cache). Missing rows are fetched in a
thread worker by keyset from the nearest cached neighbour (one index range scan), from the end for
jumps to the bottom, and by OFFSET only for a jump into the middle far from anything cached. The next
screens are prefetched, so page-down is a cache hit. Line 0 is a sticky column header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.segment import Segment
from textual import events, work
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState, get_current_worker

from ....console.leads import LeadQuery, LeadRow, LeadsConsole
from ...keymap import bind
from ...messages import WorkerFailed

PAGE = 200  # rows per fetch
PREFETCH_SCREENS = 2  # screens kept loaded below (and one above) the viewport
MAX_CACHED = 6000


@dataclass(frozen=True)
class Column:
    key: str  # sort key in leads.queries.SORTABLE, or "" when not sortable
    title: str
    width: int  # 0 = flexible
    right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("email", "Email", 0),
    Column("name", "Name", 0),
    Column("company", "Company", 0),
    Column("country", "Country", 12),
    Column("stage", "Stage", 13),
    Column("score", "Score", 7, right=True),
    Column("grade", "Gr", 3),
    Column("last_activity", "Last activity", 16),
)
SORT_KEYS = [c.key for c in COLUMNS if c.key]


def _cell(row: LeadRow, key: str) -> str:
    if key == "score":
        return f"{row.score:.0f}"
    if key == "last_activity":
        return row.last_activity_at.strftime("%Y-%m-%d %H:%M") if row.last_activity_at else ""
    if key == "email":
        return row.email + (" ⊘" if row.opted_out else "")
    return str(getattr(row, key, ""))


def _fit(text: str, width: int, right: bool) -> str:
    if len(text) > width:
        text = text[: max(0, width - 1)] + "…" if width > 1 else text[:width]
    return text.rjust(width) if right else text.ljust(width)


class LeadList(ScrollView, can_focus=True, inherit_bindings=False):
    """Virtual list of leads for a LeadQuery. Posts Opened(lead_id), TagsChanged, Loaded."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("down,j", "cursor_down", "Down", "list.down", show=False),
        bind("up,k", "cursor_up", "Up", "list.up", show=False),
        bind("pagedown,ctrl+f", "page_down", "Page down", "list.page_down", show=False),
        bind("pageup,ctrl+b", "page_up", "Page up", "list.page_up", show=False),
        bind("home,g", "first", "First", "list.first", show=False),
        bind("end,G", "last", "Last", "list.last", show=False),
        bind("enter", "open", "Open", "leads.open"),
        bind("space", "tag", "Tag", "leads.tag"),
        bind("greater_than_sign", "sort_next", "Sort →", "leads.sort_next", key_display=">"),
        bind("less_than_sign", "sort_prev", "Sort ←", "leads.sort_prev", show=False, key_display="<"),
        bind("i", "sort_invert", "Invert sort", "leads.sort_invert", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "lead-list--header", "lead-list--cursor", "lead-list--tagged", "lead-list--placeholder",
    }
    DEFAULT_CSS = """
    LeadList { height: 1fr; overflow-x: hidden; }
    LeadList > .lead-list--header { text-style: bold; background: $panel; }
    LeadList > .lead-list--cursor { background: $accent 40%; text-style: bold; }
    LeadList:focus > .lead-list--cursor { background: $accent; color: $text; }
    LeadList > .lead-list--tagged { color: $warning; text-style: bold; }
    LeadList > .lead-list--placeholder { color: $text-muted; }
    """

    cursor: reactive[int] = reactive(0, always_update=True)

    @dataclass
    class Opened(Message):
        lead_id: int

    @dataclass
    class Changed(Message):
        """Count, tags or query changed: the screen updates its status line."""

        total: int | None
        tagged: int
        cursor: int

    def __init__(self, source: LeadsConsole, query: LeadQuery, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.query_spec = query
        self.total: int | None = None
        self.rows: dict[int, LeadRow] = {}
        self.tagged: dict[int, str] = {}  # lead id -> email (for the confirm modal's scope)
        self._generation = 0
        self._pending: tuple[int, int] | None = None  # range being fetched
        self._first_loaded = False

    # -- data --------------------------------------------------------------------------------------

    @property
    def body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    @property
    def loaded(self) -> bool:
        """The first page is in (what the benchmark and tests wait for)."""
        return self._first_loaded

    def visible_loaded(self) -> bool:
        if self.total is None:
            return False
        top = round(self.scroll_y)
        end = min(self.total, top + self.body_height)
        return all(i in self.rows for i in range(top, end))

    def set_query(self, query: LeadQuery) -> None:
        self.query_spec = query
        self.reload()

    def reload(self, *, keep_cursor: bool = False) -> None:
        self._generation += 1
        self.rows.clear()
        self.total = None
        self._pending = None
        self._first_loaded = False
        if not keep_cursor:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        self._update_virtual_size()
        self.refresh()
        self._load_first(self.query_spec, self._generation, max(PAGE, self.body_height * 2))
        self._count(self.query_spec, self._generation)

    def on_mount(self) -> None:
        self.reload()

    @work(thread=True, exclusive=True, group="leads.first", exit_on_error=False, description="Loading leads")
    def _load_first(self, query: LeadQuery, generation: int, limit: int) -> None:
        rows = self.source.page(query, limit=limit)
        if not get_current_worker().is_cancelled:
            self.post_message(self._Rows(generation, 0, rows, True))

    @work(thread=True, exclusive=True, group="leads.count", exit_on_error=False, description="Counting leads")
    def _count(self, query: LeadQuery, generation: int) -> None:
        total = self.source.count(query)
        if not get_current_worker().is_cancelled:
            self.post_message(self._Total(generation, total))

    @work(thread=True, exclusive=True, group="leads.page", exit_on_error=False, description="Paging leads")
    def _fetch(self, query: LeadQuery, generation: int, start: int, plan: dict[str, Any]) -> None:
        rows = self.source.page(query, **plan)
        if not get_current_worker().is_cancelled:
            self.post_message(self._Rows(generation, start, rows, False))

    @dataclass
    class _Rows(Message, bubble=False):
        generation: int
        start: int
        rows: list[LeadRow]
        first: bool

    @dataclass
    class _Total(Message, bubble=False):
        generation: int
        total: int

    def on_lead_list__rows(self, msg: _Rows) -> None:
        msg.stop()
        self._store(msg.generation, msg.start, msg.rows, msg.first)

    def on_lead_list__total(self, msg: _Total) -> None:
        msg.stop()
        self._set_total(msg.generation, msg.total)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "leads.page" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._pending = None  # a failed page must not block the next fetch
        if event.state == WorkerState.ERROR and isinstance(event.worker.error, BaseException):
            self.post_message(WorkerFailed(event.worker.description or "Leads", event.worker.error))

    def _set_total(self, generation: int, total: int) -> None:
        if generation != self._generation:
            return
        self.total = total
        self._update_virtual_size()
        self.cursor = min(self.cursor, max(0, total - 1))
        self._post_changed()
        self.refresh()
        self._ensure_visible()

    def _store(self, generation: int, start: int, rows: list[LeadRow], first: bool) -> None:
        if generation != self._generation:
            return
        for i, row in enumerate(rows):
            self.rows[start + i] = row
        if first:
            self._first_loaded = True
            if self.total is None and len(rows) < PAGE:
                self.total = len(rows)
        self._pending = None
        self._evict()
        self._update_virtual_size()
        self.refresh()
        self._post_changed()
        self._ensure_visible()

    def _evict(self) -> None:
        if len(self.rows) <= MAX_CACHED:
            return
        centre = round(self.scroll_y)
        far = sorted(self.rows, key=lambda i: abs(i - centre), reverse=True)
        for i in far[: len(self.rows) - MAX_CACHED // 2]:
            del self.rows[i]

    def _update_virtual_size(self) -> None:
        known = self.total if self.total is not None else len(self.rows)
        self.virtual_size = Size(self.scrollable_content_region.width, known + 1)

    def _ensure_visible(self) -> None:
        """Fetch whatever is missing around the viewport (one fetch in flight at a time)."""
        if self.total is None or self._pending is not None or not self._first_loaded:
            return
        top = round(self.scroll_y)
        lo = max(0, top - self.body_height)
        hi = min(self.total, top + self.body_height * (1 + PREFETCH_SCREENS))
        # Visible rows first, then the prefetch margins.
        vis_hi = min(self.total, top + self.body_height)
        missing = [i for i in range(top, vis_hi) if i not in self.rows] or \
            [i for i in range(lo, hi) if i not in self.rows]
        if not missing:
            return
        first, last = missing[0], missing[-1]
        plan = self._plan(first, last)
        start = plan.pop("_start")
        self._pending = (first, last)
        self._fetch(self.query_spec, self._generation, start, plan)

    def _plan(self, first: int, last: int) -> dict[str, Any]:
        assert self.total is not None
        if first - 1 in self.rows:
            return {"_start": first, "after": self.rows[first - 1].sort_key, "limit": max(PAGE, last - first + 1)}
        if last + 1 in self.rows:
            n = max(PAGE, last - first + 1)
            begin = max(0, last + 1 - n)
            return {"_start": begin, "before": self.rows[last + 1].sort_key, "limit": last + 1 - begin}
        if self.total - first <= PAGE * 2:
            return {"_start": first, "from_end": True, "limit": self.total - first}
        return {"_start": first, "offset": first, "limit": max(PAGE, last - first + 1)}

    def _post_changed(self) -> None:
        self.post_message(self.Changed(self.total, len(self.tagged), self.cursor))

    # -- rendering ---------------------------------------------------------------------------------

    def _widths(self, width: int) -> list[int]:
        fixed = sum(c.width for c in COLUMNS if c.width) + 2 + len(COLUMNS)  # tag mark + gaps
        flex = [c for c in COLUMNS if not c.width]
        share = max(8, (width - fixed) // max(1, len(flex)))
        return [c.width or share for c in COLUMNS]

    def _line(self, cells: list[str], width: int) -> str:
        parts = [_fit(text, w, c.right) for text, w, c in zip(cells, self._widths(width), COLUMNS, strict=True)]
        return " ".join(parts)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            titles = []
            for c in COLUMNS:
                mark = ""
                if c.key == self.query_spec.sort:
                    mark = "▼" if self.query_spec.descending else "▲"
                titles.append(c.title + mark)
            head = base + self.get_component_rich_style("lead-list--header")
            return Strip([Segment(("  " + self._line(titles, width)).ljust(width)[:width], head)], width)
        index = round(self.scroll_y) + y - 1
        if self.total is not None and index >= self.total:
            return Strip.blank(width, base)
        row = self.rows.get(index)
        if row is None:
            if self.total is None and index >= len(self.rows) and self._first_loaded:
                return Strip.blank(width, base)
            self.call_later(self._ensure_visible)
            dim = base + self.get_component_rich_style("lead-list--placeholder")
            return Strip([Segment("  …".ljust(width)[:width], dim)], width)
        tagged = row.id in self.tagged
        style = base
        if tagged:
            style = style + self.get_component_rich_style("lead-list--tagged")
        if index == self.cursor:
            style = style + self.get_component_rich_style("lead-list--cursor")
        text = ("● " if tagged else "  ") + self._line([_cell(row, c.key) for c in COLUMNS], width)
        return Strip([Segment(text.ljust(width)[:width], style)], width)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._ensure_visible()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._ensure_visible()

    # -- cursor and actions --------------------------------------------------------------------------

    def _last_index(self) -> int:
        total = self.total if self.total is not None else len(self.rows)
        return max(0, total - 1)

    def watch_cursor(self, old: int, new: int) -> None:
        top = round(self.scroll_y)
        if new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + self.body_height:
            self.scroll_to(y=new - self.body_height + 1, animate=False, immediate=True)
        self.refresh()
        self._post_changed()

    def move_to(self, index: int) -> None:
        self.cursor = max(0, min(self._last_index(), index))

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.move_to(self.cursor - 1)

    def action_page_down(self) -> None:
        step = self.body_height
        self.scroll_to(y=min(self.max_scroll_y, self.scroll_y + step), animate=False, immediate=True)
        self.move_to(self.cursor + step)

    def action_page_up(self) -> None:
        step = self.body_height
        self.scroll_to(y=max(0, self.scroll_y - step), animate=False, immediate=True)
        self.move_to(self.cursor - step)

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self._last_index())

    def current(self) -> LeadRow | None:
        return self.rows.get(self.cursor)

    def action_open(self) -> None:
        row = self.current()
        if row is not None:
            self.post_message(self.Opened(row.id))

    def action_tag(self) -> None:
        row = self.current()
        if row is None:
            return
        if row.id in self.tagged:
            del self.tagged[row.id]
        else:
            self.tagged[row.id] = row.email
        self.move_to(self.cursor + 1)
        self.refresh()
        self._post_changed()

    def clear_tags(self) -> None:
        self.tagged.clear()
        self.refresh()
        self._post_changed()

    def _resort(self, sort: str, descending: bool) -> None:
        self.set_query(self.query_spec.with_sort(sort, descending))

    def action_sort_next(self) -> None:
        i = SORT_KEYS.index(self.query_spec.sort) if self.query_spec.sort in SORT_KEYS else -1
        self._resort(SORT_KEYS[(i + 1) % len(SORT_KEYS)], self.query_spec.descending)

    def action_sort_prev(self) -> None:
        i = SORT_KEYS.index(self.query_spec.sort) if self.query_spec.sort in SORT_KEYS else 0
        self._resort(SORT_KEYS[(i - 1) % len(SORT_KEYS)], self.query_spec.descending)

    def action_sort_invert(self) -> None:
        self._resort(self.query_spec.sort, not self.query_spec.descending)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_to(round(self.scroll_y) + event.y - 1)

