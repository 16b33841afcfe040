"""Field helpers so every table declares timestamps, JSON and ids the same way."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import ColumnDefault, DefaultClause
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel

from ..types import BigId, JsonType, UTCDateTime

# The tables are used through SQLAlchemy (Core on hot paths); pydantic validation of these classes is rare.
# Building ~30 pydantic validators at import cost ~35 ms of the TUI's 1 s start-up budget, so they are built
# on first use instead (same validators, later).
SQLModel.model_config["defer_build"] = True


def id_field() -> Any:
    return Field(default=None, primary_key=True, sa_type=BigId)


def fk_field(target: str, *, nullable: bool = True, index: bool = True) -> Any:
    return Field(default=None, foreign_key=target, nullable=nullable, index=index, sa_type=BigId)


def dt_field(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, nullable=nullable, index=index, sa_type=UTCDateTime)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JsonType)




def apply_core_defaults(models: list[type[SQLModel]]) -> None:
    """Mirror pydantic field defaults onto the SQLAlchemy columns.

    SQLModel keeps defaults on the pydantic side only, so a Core `insert()` that omits a column would
    write NULL (or fail on NOT NULL). Hot paths use Core, so every scalar default also becomes a
    server default (visible in migrations) and every default factory a Python-side column default.
    """
    for model in models:
        table = model.__table__  # type: ignore[attr-defined]
        for name, info in model.model_fields.items():
            if name not in table.c:
                continue
            col = table.c[name]
            if col.primary_key:
                continue
            if info.default_factory is not None:
                if col.default is None:
                    ColumnDefault(info.default_factory)._set_parent_with_dispatch(col)
                continue
            value = info.default
            if value is None or value is PydanticUndefined:
                continue
            if isinstance(value, bool):
                server: DefaultClause = DefaultClause(sa_true() if value else sa_false())
            elif isinstance(value, (int, float)):
                server = DefaultClause(str(value))
            elif isinstance(value, str):
                server = DefaultClause(value)
            else:
                continue
            if col.server_default is None:
                server._set_parent_with_dispatch(col)
            if col.default is None:
                ColumnDefault(value)._set_parent_with_dispatch(col)
