"""`LiveTable`: a KeyedTable for boards refreshed several times a second. The built-in DataTable keys its
rendered-cell cache on one table-wide update counter, so any change (a cell, a move) re-renders every
visible cell — about 0.3 ms each, so a 50-row board cost ~150 ms of CPU per refresh under steady writes.
Here a cell's cache key is its row's own version (bumped when one of its cells changes, or the row is
added or removed), the row's position and the cell width, plus an epoch for changes to the columns: rows
that neither changed nor moved are drawn from the cache.

This relies on DataTable's private `_render_cell` and `_update_count` (Textual is pinned exactly;
tests/tui/test_leaderboard_live.py checks that what is shown follows the data)."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from textual.widgets.data_table import ColumnKey, RowKey

from ..common.keyed_table import KeyedTable


class LiveTable(KeyedTable):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._row_versions: dict[RowKey, int] = {}
        self._epoch = 0

    def _bump(self, row_key: RowKey | str) -> None:
        key = RowKey(row_key) if isinstance(row_key, str) else row_key
        self._row_versions[key] = self._row_versions.get(key, 0) + 1

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
        """Column labels or widths changed: render every cell again."""
        self._epoch += 1
        self.refresh()

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        table: Any = self
        counter = table._update_count
        version = self._row_versions.get(row_key, 0) if row_key is not None else 0
        table._update_count = (self._epoch, row_index, row_key, version, width)
        try:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        finally:
            table._update_count = counter
