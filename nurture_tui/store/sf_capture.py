"""Change capture for the Salesforce push: triggers that mark a lead dirty in `sf_lead_sync`.

Whatever writes a lead — scoring, grading, the engine's stage actions, MQL hand-offs, unsubscribes, bounces,
tracking — the push must learn that a nurture-owned value changed. Triggers catch every writer without a call
in any hot path: an UPDATE of a pushed lead column (score, grade, stage, last activity; and, when the write is
local rather than a pull, status, opt-out and bounce; for a lead Salesforce does not have yet, the identity
fields a rejected create may need fixed), an enrollment insert, and an enrollment reaching or leaving an end
status (done / exited / goal — the engine's many active ↔ waiting moves fire nothing)
each upsert one `sf_lead_sync` row: `seq + 1`, and the time of the
oldest unpushed change kept. The push (salesforce/live.py) then reads the lead's current values, so 50
changes of one score are one write. A pull's own writes (they change `sf_modstamp`) mark nothing for the
Salesforce-owned columns, so a pulled Status or opt-out is not pushed back.

`install(conn)` creates the triggers (idempotent; a fingerprint in `meta` replaces older definitions);
`metadata.create_all` and `nurture init` call it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, event, text
from sqlmodel import SQLModel

from . import meta

TRIGGERS = ("sf_capture_lead_upd", "sf_capture_enrollment_ins", "sf_capture_enrollment_upd")
DDL_KEY = "sf_capture.ddl"
#: Lead columns whose change is always pushed (nurture-owned).
OWNED = ("score", "grade", "stage", "last_activity_at")
#: Lead columns pushed only when changed locally, not by a pull.
LOCAL = ("status", "opted_out", "bounced")
#: Columns a rejected create may need fixed: they re-queue a lead Salesforce does not have yet.
IDENTITY = ("email", "first_name", "last_name", "company")


def _changed(cols: tuple[str, ...], pg: bool) -> str:
    op = "IS DISTINCT FROM" if pg else "IS NOT"
    return " OR ".join(f"NEW.{c} {op} OLD.{c}" for c in cols)


def _lead_when(pg: bool) -> str:
    same_stamp = "NEW.sf_modstamp IS NOT DISTINCT FROM OLD.sf_modstamp" if pg else "NEW.sf_modstamp IS OLD.sf_modstamp"
    return (f"{_changed(OWNED, pg)} OR ({same_stamp} AND ({_changed(LOCAL, pg)})) "
            f"OR (NEW.sf_id IS NULL AND ({_changed(IDENTITY, pg)}))")


#: Enrollment statuses after which the lead is no longer in the sequence; the push reports the others as
#: "in progress", so the engine's many active ↔ waiting moves mark nothing.
ENDED = ("done", "exited", "goal")


def _ended_changed() -> str:
    ended = ", ".join(f"'{s}'" for s in ENDED)
    return f"(NEW.status IN ({ended})) <> (OLD.status IN ({ended}))"


def _upsert(lead_id: str, pg: bool) -> str:
    now = "extract(epoch from clock_timestamp())" if pg else "(julianday('now') - 2440587.5) * 86400.0"
    return (f"INSERT INTO sf_lead_sync (lead_id, seq, dirty_since, pushed) VALUES ({lead_id}, 1, {now}, '{{}}') "
            "ON CONFLICT (lead_id) DO UPDATE SET seq = sf_lead_sync.seq + 1, "
            "dirty_since = coalesce(sf_lead_sync.dirty_since, excluded.dirty_since)")


def sqlite_ddl() -> list[str]:
    cols = ", ".join((*OWNED, *LOCAL, *IDENTITY))
    return [
        f"CREATE TRIGGER sf_capture_lead_upd AFTER UPDATE OF {cols} ON lead WHEN {_lead_when(False)} "
        f"BEGIN {_upsert('NEW.id', False)}; END",
        "CREATE TRIGGER sf_capture_enrollment_ins AFTER INSERT ON enrollment "
        f"BEGIN {_upsert('NEW.lead_id', False)}; END",
        "CREATE TRIGGER sf_capture_enrollment_upd AFTER UPDATE OF status ON enrollment "
        f"WHEN {_ended_changed()} BEGIN {_upsert('NEW.lead_id', False)}; END",
    ]


def pg_ddl() -> list[str]:
    cols = ", ".join((*OWNED, *LOCAL, *IDENTITY))

    def fn(name: str, key: str) -> str:
        return (f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"{_upsert(key, True)}; RETURN NULL; END $$")

    return [
        fn("sf_capture_lead", "NEW.id"),
        fn("sf_capture_enrollment", "NEW.lead_id"),
        f"CREATE TRIGGER sf_capture_lead_upd AFTER UPDATE OF {cols} ON lead FOR EACH ROW WHEN ({_lead_when(True)}) "
        "EXECUTE FUNCTION sf_capture_lead()",
        "CREATE TRIGGER sf_capture_enrollment_ins AFTER INSERT ON enrollment FOR EACH ROW "
        "EXECUTE FUNCTION sf_capture_enrollment()",
        "CREATE TRIGGER sf_capture_enrollment_upd AFTER UPDATE OF status ON enrollment FOR EACH ROW "
        f"WHEN ({_ended_changed()}) EXECUTE FUNCTION sf_capture_enrollment()",
    ]


def _ddl(pg: bool) -> list[str]:
    return pg_ddl() if pg else sqlite_ddl()


def _fingerprint(pg: bool) -> str:
    return hashlib.sha256("\n".join(_ddl(pg)).encode()).hexdigest()[:16]


def installed(conn: Connection) -> bool:
    pg = conn.dialect.name == "postgresql"
    if pg:
        sql = ("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
               "WHERE t.tgname LIKE 'sf_capture_%' AND c.relnamespace = to_regnamespace(current_schema())")
    else:
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'sf_capture_%'"
    complete = int(conn.execute(text(sql)).scalar_one()) == len(TRIGGERS)
    return complete and meta.get(conn, DDL_KEY) == _fingerprint(pg)


def uninstall(conn: Connection) -> None:
    pg = conn.dialect.name == "postgresql"
    for name in TRIGGERS:
        on = f" ON {name.split('_')[2]}" if pg else ""
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}{on}")


def install(conn: Connection) -> bool:
    """Create the triggers when missing or out of date (in the caller's transaction); True when it did."""
    if installed(conn):
        return False
    pg = conn.dialect.name == "postgresql"
    uninstall(conn)
    for stmt in _ddl(pg):
        conn.exec_driver_sql(stmt.replace("%", "%%") if pg else stmt)
    meta.put(conn, DDL_KEY, _fingerprint(pg))
    return True


@event.listens_for(SQLModel.metadata, "after_create")
def _after_create(target: Any, connection: Connection, **kw: Any) -> None:
    existing = set(connection.dialect.get_table_names(connection))
    if {"lead", "enrollment", "sf_lead_sync", "meta"} <= existing:
        install(connection)
