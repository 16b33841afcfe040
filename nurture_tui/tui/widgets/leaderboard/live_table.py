"""`LiveTable`: a KeyedTable for boards refreshed several times a second, drawn through the Line API.

The built-in DataTable keys every render cache (cells, rows, lines) on one table-wide update counter, so
any change — one cell, one move — renders every visible cell again through Rich (`Padding`, `Styled`,
`console.render_lines`: ~0.1 ms a cell, 500 cells a frame on a 50-row board); and `remove_row` asks for a
layout of the whole screen. Here:

- each visible line is a `Strip` cached by its row's key and version (bumped when one of its cells
  changes, or it is added or removed), its position (zebra stripe, the row/column meta clicks read), the
  cursor and hover state, the crop and the styles;
- a row that changed is drawn from its cells' segments directly (a `Text` cell is joined and rendered the
  way Rich's `Text` renders itself, padded and cropped to the column), not through the console; other
  renderables, and tables with row labels, fixed rows or columns, multi-line rows or a cell cursor, go
  through DataTable's own path;
- `apply` (the keyed diff) repaints only the lines whose row or version changed: the full repaints and
  the layout the DataTable asks for on every `update_cell`, `remove_row` and re-order are held back while
  it runs, unless the number of rows changed (then it repaints and lays out as DataTable does).

This relies on DataTable internals (`_render_line`, `_row_locations`, `_get_row_style`,
`_get_styles_to_render_cell`, `_pseudo_class_state`; Textual is pinned exactly). tests/tui/
test_leaderboard_live.py checks the strips equal DataTable's own, line for line, and that a refresh
repaints only the rows that changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Self

from rich.cells import cell_len
from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.cache import LRUCache
from textual.geometry import Region
from textual.renderables.styled import Styled
from textual.strip import Strip
from textual.widgets._data_table import default_cell_formatter
from textual.widgets.data_table import ColumnKey, RowKey

from ..common.keyed_table import KeyedTable

_NEWLINE = Text("\n")
_FAST_OVERFLOW = (None, "fold", "crop")
_FAST_JUSTIFY = (None, "default")


def _content_key(value: object) -> tuple[object, ...] | None:
    """What a cell's drawing depends on, for a plain string or a Text without spans (None: anything else —
    markup may carry meta of its own, which must merge with the row/column meta in DataTable's order)."""
    if value is None:
        return ("",)
    if isinstance(value, str):
        return None if "[" in value else ("s", value)
    if type(value) is Text and not value.spans and (not isinstance(value.style, Style) or not value.style.meta):
        return ("t", value.plain, value.style, value.justify, value.overflow, value.no_wrap, value.end)
    return None


class LiveTable(KeyedTable):
    def __init__(self, **kwargs: Any) -> None:
        # before DataTable's __init__: its reactive watchers already clear caches and refresh
        self._row_versions: dict[RowKey, int] = {}
        self._epoch = 0
        self._strips: LRUCache[tuple[Any, ...], Strip] = LRUCache(512)
        self._meta: dict[tuple[int, int], Style] = {}
        self._row_styles: dict[tuple[object, ...], Style] = {}
        self._cells: LRUCache[tuple[object, ...], list[Segment]] = LRUCache(4096)
        self._meta_styles: LRUCache[tuple[Style | None, Style], Style] = LRUCache(8192)
        self._holding = False  # inside apply(): full repaints are held back
        self._held_full = False
        self._held_layout = False
        #: Lines drawn by the Line-API path since mount (tests and the bench probe read it).
        self.lines_rendered = 0
        super().__init__(**kwargs)

    # -- row versions -------------------------------------------------------------------------------

    def _bump(self, row_key: RowKey | str) -> None:
        key = RowKey(row_key) if isinstance(row_key, str) else row_key
        self._row_versions[key] = self._row_versions.get(key, 0) + 1

    def row_version(self, row_key: RowKey | str) -> int:
        key = RowKey(row_key) if isinstance(row_key, str) else row_key
        return self._row_versions.get(key, 0)

    def update_cell(self, row_key: RowKey | str, column_key: ColumnKey | str, value: Any, *,
                    update_width: bool = False) -> None:
        super().update_cell(row_key, column_key, value, update_width=update_width)
        self._bump(row_key)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._bump(row_key)
        return row_key

    def remove_row(self, row_key: RowKey | str) -> None:
        self._bump(row_key)
        super().remove_row(row_key)

    def add_column(self, *args: Any, **kwargs: Any) -> ColumnKey:
        self._epoch += 1
        return super().add_column(*args, **kwargs)

    def refresh_columns(self) -> None:
        """Column labels or widths changed: render every line again (DataTable's own caches too: its header
        line is keyed on the update count, which a label change does not move)."""
        self._epoch += 1
        self._update_count += 1
        self._clear_caches()
        self.refresh()

    # -- the keyed diff, repainting only the lines that changed -------------------------------------

    def apply(self, rows: Mapping[str, Sequence[RenderableType]], *, ordered: bool = True) -> None:
        count, first = self.row_count, self._first_visible_row()
        before = self._visible_versions()
        try:
            with self._held_repaints():
                super().apply(rows, ordered=ordered)
        except BaseException:
            super().refresh(layout=True)  # a diff cut short: paint what there is
            raise
        if self.row_count != count:  # rows came or went: the scrollbar may come or go, as DataTable does
            super().refresh(layout=True)
            return
        if self._held_layout:
            super().refresh(layout=True)
            return
        if not self._held_full:
            return
        after = self._visible_versions()
        if self._first_visible_row() != first or len(after) != len(before):  # scrolled meanwhile
            super().refresh()
            return
        for row_index, (was, now) in enumerate(zip(before, after, strict=True), start=first):
            if was != now:
                self.refresh_row(row_index)

    @contextmanager
    def _held_repaints(self) -> Iterator[None]:
        self._holding, self._held_full, self._held_layout = True, False, False
        try:
            yield
        finally:
            self._holding = False

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        if self._holding and not recompose:
            if layout:  # remove_row asks for one; only needed if the number of rows changes
                self._held_layout = self._held_layout or self._layout_changing()
            if regions:
                return super().refresh(*regions, repaint=repaint)
            self._held_full = self._held_full or repaint
            return self
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _layout_changing(self) -> bool:
        """DataTable's own height is `auto`: a layout is needed only when the table's height may change."""
        return self.styles.height is None or self.styles.height.is_auto

    def _first_visible_row(self) -> int:
        return max(0, int(self.scroll_offset.y))

    def _visible_versions(self) -> list[tuple[RowKey | None, int]]:
        header = self.header_height if self.show_header else 0
        first = self._first_visible_row()
        last = min(self.row_count, first + max(0, self.size.height - header))
        keys = [self._row_locations.get_key(i) for i in range(first, last)]
        return [(k, self._row_versions.get(k, 0) if k is not None else 0) for k in keys]

    def _update_dimensions(self, new_rows: Any) -> None:
        widths = [c.get_render_width(self) for c in self.ordered_columns]
        super()._update_dimensions(new_rows)
        if widths != [c.get_render_width(self) for c in self.ordered_columns]:  # auto-width columns grew
            self._epoch += 1
            self.refresh()

    # -- caches -------------------------------------------------------------------------------------

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._strips.clear()
        self._meta.clear()
        self._row_styles.clear()
        self._cells.clear()
        self._meta_styles.clear()

    def notify_style_update(self) -> None:
        self._strips.clear()
        self._row_styles.clear()
        self._cells.clear()
        self._meta_styles.clear()
        super().notify_style_update()

    # -- drawing (Line API) -------------------------------------------------------------------------

    def _line_api(self) -> bool:
        """The table shapes drawn here (the rest go through DataTable's own path)."""
        return (self.cursor_type == "row" and not self.fixed_rows and not self.fixed_columns
                and not (self._labelled_row_exists and self.show_row_labels)
                and len(self._y_offsets) == self.row_count)  # every row one line high

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        if not self._line_api():
            return super()._render_line(y, x1, x2, base_style)
        width = self.size.width
        header = self.header_height if self.show_header else 0
        show_cursor, show_hover = self.show_cursor, self._show_hover_cursor
        cursor_row, hover_row = self.cursor_coordinate.row, self.hover_coordinate.row
        state = (x1, x2, width, base_style, self.cursor_type, show_cursor, show_hover, self._pseudo_class_state,
                 self.zebra_stripes, self.cell_padding, self._epoch)
        if y < header:  # the column labels: DataTable's own rendering, kept while nothing it shows changes
            key: tuple[Any, ...] = ("header", y, hover_row == -1, *state)
            strip = self._strips.get(key)
            if strip is None:
                strip = self._strips[key] = super()._render_line(y, x1, x2, base_style)
            return strip
        row_index = y - header
        row_key = self._row_locations.get_key(row_index)
        if row_key is None:
            return Strip.blank(width, base_style)
        row = self.rows[row_key]
        if row.height != 1:
            return super()._render_line(y, x1, x2, base_style)
        key = (row_key, self._row_versions.get(row_key, 0), row_index, cursor_row == row_index,
               hover_row == row_index, *state)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._draw_row(row_key, row_index, x1, x2, width, base_style)
            self.lines_rendered += 1
        return strip

    def _draw_row(self, row_key: RowKey, row_index: int, x1: int, x2: int, width: int, base_style: Style) -> Strip:
        """One row's line, as DataTable's `_render_line_in_row` + `_render_line` draw it."""
        cursor_type = self.cursor_type
        cursor = cursor_type == "row" and self.cursor_coordinate.row == row_index
        hover = cursor_type == "row" and self.hover_coordinate.row == row_index
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor,
            self.cursor_foreground_priority == "css", self.cursor_background_priority == "css")
        row_style = self._row_style(row_index, base_style)
        data = self._data[row_key]
        padding = self.cell_padding
        segments: list[Segment] = []
        table_width = 0
        for column_index, column in enumerate(self.ordered_columns):
            cell_width = column.get_render_width(self)
            table_width += cell_width
            value = data.get(column.key)
            meta = self._meta_style(row_index, column_index)
            content = _content_key(value)
            if content is None:  # markup, spans, other renderables: drawn as they come
                pre_style = row_style + meta + component_style
                segments.extend(self._draw_cell(value, cell_width, padding, pre_style, post_style))
                continue
            # The cell's segments without the row/column meta are the same wherever the row is (a row that
            # moves keeps most of its cells): kept, and the meta added to their styles.
            key = (content, cell_width, padding, row_style, component_style, post_style)
            drawn = self._cells.get(key)
            if drawn is None:
                drawn = self._cells[key] = self._draw_cell(value, cell_width, padding, row_style + component_style,
                                                           post_style)
            segments.extend(Segment(text, self._with_meta(style, meta)) for text, style, _ in drawn)
        extend_style, _ = self._get_styles_to_render_cell(
            False, False, False, hover, cursor, self.show_cursor, self._show_hover_cursor, False, False)
        extend_style = row_style + extend_style + Style.from_meta(
            {"row": row_index, "column": 0, "out_of_bounds": True})
        segments.append(Segment(" " * max(0, width - table_width), extend_style))
        return Strip(line_crop(segments, x1, x2, width)).adjust_cell_length(width, base_style).simplify()

    def _row_style(self, row_index: int, base_style: Style) -> Style:
        """DataTable's `_get_row_style` (a component style: ~0.2 ms to compute), kept per stripe."""
        key = (row_index % 2 if self.zebra_stripes else 0, base_style, self._pseudo_class_state)
        style = self._row_styles.get(key)
        if style is None:
            style = self._row_styles[key] = self._get_row_style(row_index, base_style)
        return style

    def _meta_style(self, row_index: int, column_index: int) -> Style:
        meta = self._meta.get((row_index, column_index))
        if meta is None:
            meta = self._meta[row_index, column_index] = Style.from_meta({"row": row_index, "column": column_index})
        return meta

    def _with_meta(self, style: Style | None, meta: Style) -> Style:
        key = (style, meta)
        combined = self._meta_styles.get(key)
        if combined is None:
            combined = self._meta_styles[key] = (style or Style()) + meta
        return combined

    def _draw_cell(self, value: Any, width: int, padding: int, pre_style: Style, post_style: Style) -> list[Segment]:
        """A cell padded to `width`: Text the way Rich renders it (no wrap, cropped), anything else through
        the console as DataTable does."""
        cell = Text("", end="") if value is None else default_cell_formatter(value, wrap=False, height=1) \
            or Text("", end="")
        inner = width - 2 * padding
        if isinstance(cell, Text) and inner >= 0 and cell.justify in _FAST_JUSTIFY and \
                cell.overflow in _FAST_OVERFLOW and "\n" not in cell.plain and "\t" not in cell.plain:
            if cell_len(cell.plain) > inner:
                cell = cell.copy()
                cell.truncate(inner, overflow=cell.overflow or "fold")
            pad_style = pre_style + post_style
            out = [Segment(" " * padding, pad_style)] if padding else []
            used = 0
            for segment in _NEWLINE.join([cell]).render(self.app.console, end=""):
                out.append(Segment(segment.text, pre_style + segment.style + post_style))
                used += segment.cell_length
            if inner - used + padding:
                out.append(Segment(" " * (inner - used + padding), pad_style))
            return out
        from rich.padding import Padding

        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        lines = self.app.console.render_lines(
            Styled(Padding(cell, (0, padding)), pre_style=pre_style, post_style=post_style), options)
        return lines[0]
