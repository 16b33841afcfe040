"""The pull's per-object table (`PULL_SPECS`) agrees with the field mapping and the store."""

from __future__ import annotations

from nurture_tui.salesforce import mapping
from nurture_tui.salesforce.pull import PULL_SPECS


def test_every_pulled_object_has_one_spec() -> None:
    assert set(PULL_SPECS) == set(mapping.PULL_ORDER) == set(mapping.PULL_FIELDS)


def test_specs_read_columns_their_tables_have() -> None:
    for obj, spec in PULL_SPECS.items():
        missing = [c for c in ("id", "sf_id", *spec.columns) if c not in spec.table.c]
        assert not missing, f"{obj}: {spec.table.name} has no {missing}"
        if spec.by_modstamp:  # the compare reads the stored modstamp
            assert "sf_modstamp" in spec.columns, obj
        assert {"Id", "SystemModstamp"} <= set(mapping.PULL_FIELDS[obj]), obj  # the key and the watermark
