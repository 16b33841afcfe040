"""A workspace = settings + database engine + clock. Every shell (CLI, TUI, daemon, web app) opens one
and hands it to the core services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, inspect

from .clock import Clock, SystemClock
from .config import Settings, load_settings
from .errors import NurtureError
from .store.engine import make_engine


@dataclass
class Workspace:
    settings: Settings
    engine: Engine
    clock: Clock = field(default_factory=SystemClock)

    @property
    def user(self) -> str:
        return self.settings.user.name

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        create: bool = False,
        check_schema: bool = True,
        **settings_overrides: Any,
    ) -> Workspace:
        """Open the configured workspace. With `create=True` the schema is created/upgraded first;
        otherwise an uninitialised database is a user error pointing at `nurture init`."""
        settings = settings or load_settings(**settings_overrides)
        engine = make_engine(settings.db_url)
        ws = cls(settings=settings, engine=engine, clock=clock or SystemClock())
        if create:
            ws.migrate()
        elif check_schema:
            ws.require_schema()
        return ws

    def migrate(self) -> tuple[str | None, str | None]:
        from .store.migrate import upgrade  # alembic loads only when needed (TUI start-up budget)

        try:
            return upgrade(self.engine)
        except Exception as exc:
            raise NurtureError(f"{self.describe()}: cannot create or upgrade the schema: {_first(exc)}") from exc

    def require_schema(self) -> None:
        from .store.migrate import current_revision, head_revision

        try:
            rev = current_revision(self.engine)
        except Exception as exc:
            raise NurtureError(f"{self.describe()}: cannot open database: {_first(exc)}") from exc
        if rev is None:
            if "lead" in inspect(self.engine).get_table_names():
                return  # created by metadata.create_all (tests)
            raise NurtureError(f"{self.describe()}: not a nurture workspace yet; run `nurture init` first")
        if rev != head_revision():
            raise NurtureError(f"{self.describe()}: schema is at {rev}, code expects {head_revision()}; "
                               "run `nurture init` to upgrade")

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
