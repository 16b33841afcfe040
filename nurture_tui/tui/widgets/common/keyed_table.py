"""`KeyedTable`: a DataTable refreshed by keyed diffs — never clear-and-refill, so the cursor, the scroll
position and unchanged cells stay put while rows come, go, change and move."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.console import RenderableType
from textual._two_way_dict import TwoWayDict
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


class KeyedTable(DataTable[RenderableType]):
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None for an empty table)."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def apply(self, rows: Mapping[str, Sequence[RenderableType]], *, ordered: bool = True) -> None:
        """Make the table show exactly `rows` (key -> cells): remove rows that left, update changed cells,
        add newcomers, and (`ordered`) put rows in the mapping's order."""
        columns = list(self.columns)
        for gone in [k for k in self.rows if k.value not in rows]:
            self.remove_row(gone)
        for key, cells in rows.items():
            if key in self.rows:
                for col, value in zip(columns, cells, strict=True):
                    if str(self.get_cell(key, col)) != str(value):
                        self.update_cell(key, col, value)
            else:
                self.add_row(*cells, key=key)
        if ordered:
            self.order_by(list(rows))

    def order_by(self, keys: Sequence[str]) -> None:
        """Put the rows in the order of `keys` (every row's key, each once)."""
        if [k.value for k in self.ordered_row_keys()] == list(keys):
            return
        position = {key: i for i, key in enumerate(keys)}
        # DataTable.sort hands its key function only cell values, so re-index the rows by key the way
        # sort() itself does (Textual is pinned exactly; tests/tui cover the order).
        ordered = sorted(self.rows, key=lambda k: position[k.value or ""])
        self._row_locations = TwoWayDict({key: i for i, key in enumerate(ordered)})
        self._update_count += 1
        self.refresh()

    def ordered_row_keys(self) -> list[RowKey]:
        keys = (self._row_locations.get_key(i) for i in range(self.row_count))
        return [k for k in keys if k is not None]
