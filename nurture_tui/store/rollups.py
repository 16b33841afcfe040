"""Database triggers that keep `email_stat` (the email reports' rollup) exact.

Every writer — the engine's sends, the dispatcher's outcomes, tracking's opens and clicks, unsubscribes,
retention pruning, lead erasure, bulk loads — changes `outbox` or `activity` rows; triggers on those two
tables apply the change to `email_stat` in the same transaction, so the rollup can never disagree with a
scan of the log, whoever writes and however many write at once:

- outbox insert / update of status or last_error / delete: the message's status contribution (sent =
  attempted: sent, bounced or failed; delivered; bounced_hard = bounced; bounced_soft = failed with a 4xx
  last error; failed = the other failures) moves from the old cell to the new one; a deleted message also
  takes its remaining opens, clicks and unsubscribes with it;
- activity insert / update / delete of an open, click or unsubscribe carrying an outbox id: totals (bot and
  non-bot apart) move, and a message's unique open / click / unsubscribe counts when its first non-bot one
  arrives (and is taken back when its last one goes). On PostgreSQL the message's outbox row is locked
  first (`FOR UPDATE`), so two first opens committed at once count one unique open, not two; the delete
  triggers run BEFORE the row goes there, so a cascade (lead erasure) takes everything back exactly once.

The progression report's rollups (`lead_milestone`, `lead_cohort`) are kept the same way:

- `lead_milestone`: any write of a `stage_change` activity, an MQL or an opportunity, and a change of a
  lead's `created_at`, recomputes that lead's row from its own log rows (a handful of index probes: earliest
  stage change to consideration / decision, first MQL, first accepted MQL, first opportunity; then each
  closed downwards, see models/reports.py); the row goes when none is left or the lead is erased;
- `lead_cohort`: a lead counts on the day it was created (sequence 0), on the day of its first enrollment
  (-1) and of its first enrollment in each sequence; an enrollment insert / update of lead, sequence or
  entered_at / delete moves the lead between days only when it changes that first entry, judged against the
  lead's other enrollments (index probes).

On PostgreSQL both first take the lead's rollup lock (a transaction-scoped advisory lock per lead id, not
the lead's row: a transaction updating the lead's score or fields does not hold up another's rollups), so
writers of one lead's milestones or enrollments run one after the other and each recomputation sees the
other's committed rows. Engine steps that only update an enrollment's node,
status or due time, and every other activity kind, fire nothing.

The split report's rollups (`lead_send`, `send_cohort`) are kept the same way: a send step's `sent` activity,
a non-bot open or click of a message, or an enrollment reaching or leaving `goal` recomputes the lead's
`lead_send` rows from its own log rows and moves their `send_cohort` cells (the lead's rollup lock taken first
on PostgreSQL).

`install(conn)` creates the triggers (idempotent) and, when it had to create them, rebuilds the tables from
the log in the same transaction; a fingerprint of the definitions kept in `meta` makes triggers created by
other code count as missing. `nurture init` (migrate.ensure_rollups, which also creates a rollup table an
older workspace lacks) and `metadata.create_all` call it; `uninstall` drops them for a bulk load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event, text
from sqlmodel import SQLModel

from . import meta

ATTEMPTED = "('sent', 'bounced', 'failed')"
KEY = ("day", "sequence_id", "node_id", "template_id", "shard")
COUNTS = ("sent", "delivered", "bounced_hard", "bounced_soft", "failed", "unique_opens", "total_opens",
          "bot_opens", "unique_clicks", "total_clicks", "bot_clicks", "unsubscribes")
TRIGGER_NAMES = ("email_stat_outbox_ins", "email_stat_outbox_upd", "email_stat_outbox_del",
                 "email_stat_activity_ins", "email_stat_activity_upd", "email_stat_activity_del")
ENGAGED = "('open', 'click', 'unsubscribe')"


def _day(col: str, pg: bool) -> str:
    return f"to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD')" if pg else f"substr({col}, 1, 10)"


def _flag(cond: str, sign: int) -> str:
    return f"CASE WHEN {cond} THEN {sign} ELSE 0 END"


def _status(r: str, sign: int) -> dict[str, str]:
    soft = f"{r}.last_error LIKE '4%'"
    return {"sent": _flag(f"{r}.status IN {ATTEMPTED}", sign), "delivered": _flag(f"{r}.status = 'sent'", sign),
            "bounced_hard": _flag(f"{r}.status = 'bounced'", sign),
            "bounced_soft": _flag(f"({r}.status = 'failed' AND {soft})", sign),
            "failed": _flag(f"({r}.status = 'failed' AND ({r}.last_error IS NULL OR NOT {soft}))", sign)}


def _others(r: str, kind: str, exclude_self: bool) -> str:
    """Another non-bot `kind` activity of the message `r.outbox_id` exists."""
    bot = "" if kind == "unsubscribe" else " AND NOT x.bot"
    me = f" AND x.id <> {r}.id" if exclude_self else ""
    return f"EXISTS (SELECT 1 FROM activity x WHERE x.outbox_id = {r}.outbox_id AND x.kind = '{kind}'{bot}{me})"


def _engagement(r: str, sign: int) -> dict[str, str]:
    """One activity row's contribution (its message's uniqueness judged against the other rows)."""
    nonbot = f"NOT {r}.bot"
    return {
        "total_opens": _flag(f"({r}.kind = 'open' AND {nonbot})", sign),
        "bot_opens": _flag(f"({r}.kind = 'open' AND {r}.bot)", sign),
        "unique_opens": _flag(f"({r}.kind = 'open' AND {nonbot} AND NOT {_others(r, 'open', True)})", sign),
        "total_clicks": _flag(f"({r}.kind = 'click' AND {nonbot})", sign),
        "bot_clicks": _flag(f"({r}.kind = 'click' AND {r}.bot)", sign),
        "unique_clicks": _flag(f"({r}.kind = 'click' AND {nonbot} AND NOT {_others(r, 'click', True)})", sign),
        "unsubscribes": _flag(f"({r}.kind = 'unsubscribe' AND NOT {_others(r, 'unsubscribe', True)})", sign),
    }


def _message_engagement(o: str, sign: int) -> dict[str, str]:
    """All remaining engagement of the message `o` (when the message itself goes)."""
    def count(cond: str) -> str:
        return f"{sign} * (SELECT count(*) FROM activity x WHERE x.outbox_id = {o}.id AND {cond})"

    def exists(cond: str) -> str:
        return _flag(f"EXISTS (SELECT 1 FROM activity x WHERE x.outbox_id = {o}.id AND {cond})", sign)

    return {"total_opens": count("x.kind = 'open' AND NOT x.bot"), "bot_opens": count("x.kind = 'open' AND x.bot"),
            "unique_opens": exists("x.kind = 'open' AND NOT x.bot"),
            "total_clicks": count("x.kind = 'click' AND NOT x.bot"), "bot_clicks": count("x.kind = 'click' AND x.bot"),
            "unique_clicks": exists("x.kind = 'click' AND NOT x.bot"), "unsubscribes": exists("x.kind = 'unsubscribe'")}


#: The shard a PostgreSQL transaction adds to (email_stat, send_cohort): its own, so concurrent writers of one
#: cell (two engine workers sending one step, two tracking writers) update different rows instead of queueing.
SHARD_PG = "(txid_current() % 8)::int"


def _cell_key(o: str, pg: bool, by_message: bool = False) -> list[str]:
    """The email_stat cell of the outbox row `o` (SQLite, and a rebuild, shard by message id)."""
    return [_day(f"{o}.created_at", pg), f"coalesce({o}.sequence_id, 0)", f"coalesce({o}.node_id, '')",
            f"coalesce({o}.template_id, 0)", SHARD_PG if pg and not by_message else f"{o}.id % 8"]


def _upsert(o: str, values: dict[str, str], pg: bool, where: str) -> str:
    """Add `values` to the cell of the outbox row `o` (selected by `where`)."""
    cols = [*KEY, *values]
    key = _cell_key(o, pg)
    sets = ", ".join(f"{c} = email_stat.{c} + excluded.{c}" for c in values)
    return (f"INSERT INTO email_stat ({', '.join(cols)}) SELECT {', '.join([*key, *values.values()])} "
            f"{where} ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {sets}")


def _outbox_sql(r: str, sign: int, pg: bool, with_engagement: bool) -> str:
    """The outbox row `r` (NEW or OLD)'s contribution to its cell (a one-row SELECT without FROM)."""
    values = _status(r, sign)
    if with_engagement:
        values |= _message_engagement(r, sign)
    return _upsert(r, values, pg, f"WHERE {r}.created_at IS NOT NULL")


def _activity_sql(r: str, sign: int, pg: bool, only_if: str = "TRUE") -> str:
    """The activity row `r`'s contribution to its message's cell (nothing when the message is gone)."""
    return _upsert("o", _engagement(r, sign), pg,
                   f"FROM outbox o WHERE o.id = {r}.outbox_id AND o.created_at IS NOT NULL AND {only_if}")


def _activity_batch_sql() -> str:
    """PostgreSQL, once per INSERT statement: the new rows (`new_rows`, a transition table) added to their
    messages' cells, a message's unique open / click / unsubscribe counted when no such row of it exists
    outside this statement (`new_ids`: the statement's engaged rows; the messages are locked first)."""
    def others(kind: str) -> str:
        bot = "" if kind == "unsubscribe" else " AND NOT x.bot"
        return (f"EXISTS (SELECT 1 FROM activity x WHERE x.outbox_id = o.id AND x.kind = '{kind}'{bot} "
                "AND x.id <> ALL(new_ids))")

    per_message = (
        "SELECT r.outbox_id, count(*) FILTER (WHERE r.kind = 'open' AND NOT r.bot) AS total_opens, "
        "count(*) FILTER (WHERE r.kind = 'open' AND r.bot) AS bot_opens, "
        "count(*) FILTER (WHERE r.kind = 'click' AND NOT r.bot) AS total_clicks, "
        "count(*) FILTER (WHERE r.kind = 'click' AND r.bot) AS bot_clicks, "
        "bool_or(r.kind = 'open' AND NOT r.bot) AS opened, bool_or(r.kind = 'click' AND NOT r.bot) AS clicked, "
        f"bool_or(r.kind = 'unsubscribe') AS unsubscribed FROM new_rows r WHERE {_A_NEW.replace('NEW.', 'r.')} "
        "GROUP BY r.outbox_id")
    values = {"total_opens": "m.total_opens", "bot_opens": "m.bot_opens",
              "unique_opens": _flag(f"m.opened AND NOT {others('open')}", 1),
              "total_clicks": "m.total_clicks", "bot_clicks": "m.bot_clicks",
              "unique_clicks": _flag(f"m.clicked AND NOT {others('click')}", 1),
              "unsubscribes": _flag(f"m.unsubscribed AND NOT {others('unsubscribe')}", 1)}
    cells = (f"SELECT {', '.join(f'{k} AS k{i}' for i, k in enumerate(_cell_key('o', True)))}, "
             + ", ".join(f"{v} AS {c}" for c, v in values.items())
             + f" FROM ({per_message}) m JOIN outbox o ON o.id = m.outbox_id WHERE o.created_at IS NOT NULL")
    return (f"INSERT INTO email_stat ({', '.join([*KEY, *values])}) SELECT "
            + ", ".join([*(f"c.k{i}" for i in range(len(KEY))), *(f"sum(c.{c})" for c in values)])
            + f" FROM ({cells}) c GROUP BY {', '.join(f'c.k{i}' for i in range(len(KEY)))} "
            f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET "
            + ", ".join(f"{c} = email_stat.{c} + excluded.{c}" for c in values))


_CHANGED = "(OLD.status IS DISTINCT FROM NEW.status OR OLD.last_error IS DISTINCT FROM NEW.last_error)"
_A_CHANGED = ("(OLD.outbox_id IS DISTINCT FROM NEW.outbox_id OR OLD.kind IS DISTINCT FROM NEW.kind "
              "OR OLD.bot IS DISTINCT FROM NEW.bot)")
_A_NEW = f"(NEW.outbox_id IS NOT NULL AND NEW.kind IN {ENGAGED})"
_A_OLD = f"(OLD.outbox_id IS NOT NULL AND OLD.kind IN {ENGAGED})"


def sqlite_ddl() -> list[str]:
    changed = _CHANGED.replace("IS DISTINCT FROM", "IS NOT")
    a_changed = _A_CHANGED.replace("IS DISTINCT FROM", "IS NOT")
    return [
        f"CREATE TRIGGER IF NOT EXISTS email_stat_outbox_ins AFTER INSERT ON outbox "
        f"WHEN NEW.status IN {ATTEMPTED} BEGIN {_outbox_sql('NEW', 1, False, False)}; END",
        f"CREATE TRIGGER IF NOT EXISTS email_stat_outbox_upd AFTER UPDATE ON outbox WHEN {changed} "
        f"AND (OLD.status IN {ATTEMPTED} OR NEW.status IN {ATTEMPTED}) BEGIN "
        f"{_outbox_sql('OLD', -1, False, False)}; {_outbox_sql('NEW', 1, False, False)}; END",
        f"CREATE TRIGGER IF NOT EXISTS email_stat_outbox_del AFTER DELETE ON outbox BEGIN "
        f"{_outbox_sql('OLD', -1, False, True)}; END",
        f"CREATE TRIGGER IF NOT EXISTS email_stat_activity_ins AFTER INSERT ON activity WHEN {_A_NEW} BEGIN "
        f"{_activity_sql('NEW', 1, False)}; END",
        f"CREATE TRIGGER IF NOT EXISTS email_stat_activity_upd AFTER UPDATE ON activity WHEN {a_changed} "
        f"AND ({_A_OLD} OR {_A_NEW}) BEGIN "
        f"{_activity_sql('OLD', -1, False, _A_OLD)}; {_activity_sql('NEW', 1, False, _A_NEW)}; END",
        f"CREATE TRIGGER IF NOT EXISTS email_stat_activity_del AFTER DELETE ON activity WHEN {_A_OLD} BEGIN "
        f"{_activity_sql('OLD', -1, False)}; END",
    ]


def pg_ddl() -> list[str]:
    outbox_fn = f"""
CREATE OR REPLACE FUNCTION email_stat_outbox() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status IN {ATTEMPTED} THEN {_outbox_sql('NEW', 1, True, False)}; END IF;
  ELSIF TG_OP = 'UPDATE' THEN
    IF {_CHANGED} AND (OLD.status IN {ATTEMPTED} OR NEW.status IN {ATTEMPTED}) THEN
      {_outbox_sql('OLD', -1, True, False)};
      {_outbox_sql('NEW', 1, True, False)};
    END IF;
  ELSE
    -- BEFORE DELETE: the message's activity rows are still there to be taken back, whatever order a
    -- cascade (lead erasure) deletes them in; an activity row deleted after it finds no message.
    {_outbox_sql('OLD', -1, True, True)};
    RETURN OLD;
  END IF;
  RETURN NULL;
END $fn$"""
    activity_fn = f"""
CREATE OR REPLACE FUNCTION email_stat_activity() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND {_A_OLD} THEN
    PERFORM 1 FROM outbox WHERE id = OLD.outbox_id FOR UPDATE;
    {_activity_sql('OLD', -1, True)};
  END IF;
  IF TG_OP = 'UPDATE' AND {_A_NEW} THEN
    PERFORM 1 FROM outbox WHERE id = NEW.outbox_id FOR UPDATE;
    {_activity_sql('NEW', 1, True)};
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NULL;
END $fn$"""
    # Inserts (every open, click and send) are handled once per statement: a batch of hits costs a few
    # set-based statements instead of a trigger call per row, and two first opens of one message in one
    # statement count one unique open (row triggers fire after the statement, each seeing the other row).
    activity_batch_fn = f"""
CREATE OR REPLACE FUNCTION email_stat_activity_batch() RETURNS trigger LANGUAGE plpgsql SET jit = off AS $fn$
DECLARE
  new_ids bigint[];
BEGIN
  SELECT array_agg(r.id) INTO new_ids FROM new_rows r WHERE {_A_NEW.replace('NEW.', 'r.')};
  IF new_ids IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM outbox WHERE id IN (SELECT r.outbox_id FROM new_rows r WHERE {_A_NEW.replace('NEW.', 'r.')})
    ORDER BY id FOR UPDATE;
  EXECUTE {_dynamic(_activity_batch_sql().replace("ALL(new_ids)", "ALL($1)"))} USING new_ids;
  RETURN NULL;
END $fn$"""
    return [
        outbox_fn, activity_fn, activity_batch_fn,
        *[f"DROP TRIGGER IF EXISTS {n} ON {'outbox' if 'outbox' in n else 'activity'}" for n in TRIGGER_NAMES],
        "CREATE TRIGGER email_stat_outbox_ins AFTER INSERT ON outbox FOR EACH ROW "
        f"WHEN (NEW.status IN {ATTEMPTED}) EXECUTE FUNCTION email_stat_outbox()",
        "CREATE TRIGGER email_stat_outbox_upd AFTER UPDATE OF status, last_error ON outbox FOR EACH ROW "
        f"WHEN ({_CHANGED}) EXECUTE FUNCTION email_stat_outbox()",
        "CREATE TRIGGER email_stat_outbox_del BEFORE DELETE ON outbox FOR EACH ROW "
        "EXECUTE FUNCTION email_stat_outbox()",
        "CREATE TRIGGER email_stat_activity_ins AFTER INSERT ON activity REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION email_stat_activity_batch()",
        "CREATE TRIGGER email_stat_activity_upd AFTER UPDATE OF outbox_id, kind, bot ON activity FOR EACH ROW "
        f"WHEN ({_A_CHANGED}) EXECUTE FUNCTION email_stat_activity()",
        f"CREATE TRIGGER email_stat_activity_del BEFORE DELETE ON activity FOR EACH ROW WHEN {_A_OLD} "
        "EXECUTE FUNCTION email_stat_activity()",
    ]


def rebuild_sql(pg: bool) -> list[str]:
    """Recompute the whole table from the log (what the triggers maintain incrementally)."""
    def total(cond: str) -> str:
        return f"sum({_flag(cond, 1)})"

    sums = ", ".join(f"{total(cond)} AS {name}" for name, cond in (
        ("opens", "a.kind = 'open' AND NOT a.bot"), ("bot_opens", "a.kind = 'open' AND a.bot"),
        ("clicks", "a.kind = 'click' AND NOT a.bot"), ("bot_clicks", "a.kind = 'click' AND a.bot"),
        ("unsubs", "a.kind = 'unsubscribe'")))
    agg = f"SELECT a.outbox_id, {sums} FROM activity a WHERE a.outbox_id IS NOT NULL GROUP BY a.outbox_id"
    status = _status("o", 1)
    cols = {**status, "unique_opens": "CASE WHEN e.opens > 0 THEN 1 ELSE 0 END",
            "total_opens": "coalesce(e.opens, 0)", "bot_opens": "coalesce(e.bot_opens, 0)",
            "unique_clicks": "CASE WHEN e.clicks > 0 THEN 1 ELSE 0 END", "total_clicks": "coalesce(e.clicks, 0)",
            "bot_clicks": "coalesce(e.bot_clicks, 0)", "unsubscribes": "CASE WHEN e.unsubs > 0 THEN 1 ELSE 0 END"}
    key = _cell_key("o", pg, by_message=True)
    return ["DELETE FROM email_stat",
            f"INSERT INTO email_stat ({', '.join([*KEY, *COUNTS])}) SELECT {', '.join(key)}, "
            + ", ".join(f"sum({cols[c]})" for c in COUNTS)
            + f" FROM outbox o LEFT JOIN ({agg}) e ON e.outbox_id = o.id WHERE o.created_at IS NOT NULL "
            "GROUP BY 1, 2, 3, 4, 5"]


# --- the progression report's rollups: lead_milestone and lead_cohort ---------------------------------------

ROLLUP_TABLES = ("email_stat", "lead_milestone", "lead_cohort", "lead_send", "send_cohort")
MILESTONE_COLS = ("consideration_at", "decision_at", "mql_at", "sql_at", "opportunity_at")
PROGRESS_TRIGGERS = ("progress_activity_ins", "progress_activity_upd", "progress_activity_del",
                     "progress_mql_ins", "progress_mql_upd", "progress_mql_del",
                     "progress_opportunity_ins", "progress_opportunity_upd", "progress_opportunity_del",
                     "progress_enrollment_ins", "progress_enrollment_upd", "progress_enrollment_del",
                     "progress_lead_ins", "progress_lead_upd", "progress_lead_del")
_NONE_LEFT = "consideration_at IS NULL"  # (the earliest of them all: reached with any later one)
_STAGES = ("consideration", "decision")


def _stage_to(r: str, pg: bool) -> str:
    return f"{r}.meta ->> 'to'" if pg else f"json_extract({r}.meta, '$.to')"


def _least(exprs: list[str], pg: bool) -> str:
    """The earliest non-NULL time (NULL when all are)."""
    if len(exprs) == 1:
        return exprs[0]
    if pg:
        return f"LEAST({', '.join(exprs)})"
    far = "'9999-12-31'"  # SQLite keeps times as ISO text
    return f"NULLIF(min({', '.join(f'coalesce({e}, {far})' for e in exprs)}), {far})"


def _milestone_row(raw: str, pg: bool) -> str:
    """lead_milestone's columns from `raw` (lead_id, r1…r5: each milestone's own earliest time): a milestone
    is reached at the earliest of its own time and every later one's; awareness at creation or, if earlier,
    the first milestone (NULL for a lead without a creation time)."""
    rs = [f"r.r{i}" for i in range(1, 6)]
    closed = [_least(rs[i:], pg) for i in range(5)]
    aware = f"CASE WHEN l.created_at IS NOT NULL THEN {_least(['l.created_at', closed[0]], pg)} END"
    return (f"INSERT INTO lead_milestone (lead_id, awareness_at, {', '.join(MILESTONE_COLS)}) "
            f"SELECT l.id, {aware}, {', '.join(closed)} FROM lead l JOIN ({raw}) r ON r.lead_id = l.id "
            f"WHERE TRUE ON CONFLICT (lead_id) DO UPDATE SET awareness_at = excluded.awareness_at, "
            + ", ".join(f"{c} = excluded.{c}" for c in MILESTONE_COLS))


def _milestone_sql(x: str, pg: bool) -> list[str]:
    """Recompute lead `x`'s row from its log rows (index probes; nothing for an erased lead, no row when it
    has no milestone)."""
    def stage(to: str) -> str:
        return (f"(SELECT min(s.at) FROM activity s WHERE s.kind = 'stage_change' AND s.lead_id = {x} "
                f"AND {_stage_to('s', pg)} = '{to}')")

    raw = [*(stage(to) for to in _STAGES), f"(SELECT min(m.created_at) FROM mql m WHERE m.lead_id = {x})",
           f"(SELECT min(m.decided_at) FROM mql m WHERE m.lead_id = {x} AND m.status = 'accepted')",
           f"(SELECT min(o.created_at) FROM opportunity o WHERE o.lead_id = {x})"]
    cols = ", ".join(f"{v} AS r{i}" for i, v in enumerate(raw, start=1))
    return [_milestone_row(f"SELECT {x} AS lead_id, {cols}", pg),
            f"DELETE FROM lead_milestone WHERE lead_id = {x} AND {_NONE_LEFT}"]


def _milestone_rebuild(pg: bool) -> list[str]:
    to = _stage_to("a", pg)
    kinds = [*_STAGES, "mql", "sql", "opportunity"]
    raw = ("SELECT lead_id, " + ", ".join(f"min(CASE WHEN k = '{k}' THEN at END) AS r{i}"
                                         for i, k in enumerate(kinds, start=1))
           + f" FROM (SELECT a.lead_id, {to} AS k, a.at FROM activity a WHERE a.kind = 'stage_change' "
           f"UNION ALL SELECT lead_id, 'mql', created_at FROM mql UNION ALL SELECT lead_id, 'sql', decided_at "
           "FROM mql WHERE status = 'accepted' UNION ALL SELECT lead_id, 'opportunity', created_at FROM opportunity "
           "WHERE lead_id IS NOT NULL) x GROUP BY lead_id")
    return [_milestone_row(raw, pg), f"DELETE FROM lead_milestone WHERE {_NONE_LEFT}"]


def _cohort_add(day: str, seq: str, n: str, where: str) -> str:
    return (f"INSERT INTO lead_cohort (day, sequence_id, n) SELECT {day}, {seq}, {n} {where} "
            "ON CONFLICT (day, sequence_id) DO UPDATE SET n = lead_cohort.n + excluded.n")


def _enrollment_sql(r: str, sign: int, pg: bool) -> list[str]:
    """The enrollment row `r` (NEW added / OLD removed) moves its lead's first entry, overall (-1) and in its
    sequence, when it is earlier than the lead's other enrollments' (`q.m`, which excludes `r` itself)."""
    out = []
    for seq, same in (("-1", ""), (f"{r}.sequence_id", f" AND e.sequence_id = {r}.sequence_id")):
        others = (f"FROM (SELECT (SELECT min(e.entered_at) FROM enrollment e WHERE e.lead_id = {r}.lead_id{same} "
                  f"AND e.id <> {r}.id) AS m) q WHERE {r}.entered_at IS NOT NULL")
        out += [_cohort_add(_day(f"{r}.entered_at", pg), seq, str(sign),
                            f"{others} AND (q.m IS NULL OR {r}.entered_at < q.m)"),
                _cohort_add(_day("q.m", pg), seq, str(-sign), f"{others} AND q.m IS NOT NULL AND {r}.entered_at < q.m")]
    return out


def _lead_sql(r: str, sign: int, pg: bool) -> str:
    return _cohort_add(_day(f"{r}.created_at", pg), "0", str(sign), f"WHERE {r}.created_at IS NOT NULL")


_STAGE_CHANGED = ("(OLD.lead_id IS DISTINCT FROM NEW.lead_id OR OLD.kind IS DISTINCT FROM NEW.kind OR OLD.at IS "
                  "DISTINCT FROM NEW.at OR OLD.meta IS DISTINCT FROM NEW.meta) AND (OLD.kind = 'stage_change' OR "
                  "NEW.kind = 'stage_change')")
_MQL_CHANGED = ("(OLD.lead_id IS DISTINCT FROM NEW.lead_id OR OLD.created_at IS DISTINCT FROM NEW.created_at OR "
                "OLD.decided_at IS DISTINCT FROM NEW.decided_at OR OLD.status IS DISTINCT FROM NEW.status)")
_OPP_CHANGED = "(OLD.lead_id IS DISTINCT FROM NEW.lead_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)"
_ENR_CHANGED = ("(OLD.lead_id IS DISTINCT FROM NEW.lead_id OR OLD.sequence_id IS DISTINCT FROM NEW.sequence_id OR "
                "OLD.entered_at IS DISTINCT FROM NEW.entered_at)")
#: (table, trigger name suffix, condition on insert (NEW) / delete (OLD), columns and condition on update)
_MILESTONE_SOURCES = (
    ("activity", "NEW.kind = 'stage_change'", "OLD.kind = 'stage_change'", "lead_id, kind, at, meta", _STAGE_CHANGED),
    ("mql", "TRUE", "TRUE", "lead_id, created_at, decided_at, status", _MQL_CHANGED),
    ("opportunity", "NEW.lead_id IS NOT NULL", "OLD.lead_id IS NOT NULL", "lead_id, created_at", _OPP_CHANGED),
)


def _dynamic(sql: str) -> str:
    """A statement over a transition table, run with EXECUTE: PL/pgSQL would plan it once per session and
    keep the plan, chosen for the first statement's row count and the tables' sizes then (an engine worker's
    batches went from ~0.2 s to ~6 s as `activity` grew under a plan made when it was small)."""
    assert "$q$" not in sql
    return f"$q${sql}$q$"


def _body(stmts: list[str]) -> str:
    return " ".join(f"{s};" for s in stmts)


def progress_sqlite_ddl() -> list[str]:
    def sq(cond: str) -> str:
        return cond.replace("IS DISTINCT FROM", "IS NOT")

    out = []
    for table, ins, dele, _cols, changed in _MILESTONE_SOURCES:
        out += [
            f"CREATE TRIGGER IF NOT EXISTS progress_{table}_ins AFTER INSERT ON {table} WHEN {ins} BEGIN "
            f"{_body(_milestone_sql('NEW.lead_id', False))} END",
            f"CREATE TRIGGER IF NOT EXISTS progress_{table}_upd AFTER UPDATE ON {table} WHEN {sq(changed)} BEGIN "
            f"{_body([*_milestone_sql('OLD.lead_id', False), *_milestone_sql('NEW.lead_id', False)])} END",
            f"CREATE TRIGGER IF NOT EXISTS progress_{table}_del AFTER DELETE ON {table} WHEN {dele} BEGIN "
            f"{_body(_milestone_sql('OLD.lead_id', False))} END"]
    return [
        *out,
        "CREATE TRIGGER IF NOT EXISTS progress_enrollment_ins AFTER INSERT ON enrollment BEGIN "
        f"{_body(_enrollment_sql('NEW', 1, False))} END",
        f"CREATE TRIGGER IF NOT EXISTS progress_enrollment_upd AFTER UPDATE ON enrollment WHEN {sq(_ENR_CHANGED)} "
        f"BEGIN {_body([*_enrollment_sql('OLD', -1, False), *_enrollment_sql('NEW', 1, False)])} END",
        "CREATE TRIGGER IF NOT EXISTS progress_enrollment_del AFTER DELETE ON enrollment BEGIN "
        f"{_body(_enrollment_sql('OLD', -1, False))} END",
        f"CREATE TRIGGER IF NOT EXISTS progress_lead_ins AFTER INSERT ON lead BEGIN {_lead_sql('NEW', 1, False)}; END",
        "CREATE TRIGGER IF NOT EXISTS progress_lead_upd AFTER UPDATE ON lead WHEN OLD.created_at IS NOT "
        f"NEW.created_at BEGIN {_lead_sql('OLD', -1, False)}; {_lead_sql('NEW', 1, False)}; "
        f"{_body(_milestone_sql('NEW.id', False))} END",
        f"CREATE TRIGGER IF NOT EXISTS progress_lead_del AFTER DELETE ON lead BEGIN {_lead_sql('OLD', -1, False)}; "
        "DELETE FROM lead_milestone WHERE lead_id = OLD.id; END",
    ]


#: The advisory lock namespace of "this lead's rollup rows" (a transaction-scoped lock per lead id).
LEAD_LOCK = 1279607108


def _lead_key(x: str) -> str:
    return f"{LEAD_LOCK}, ({x} % 2147483647)::int"


def _lock(x: str) -> str:
    return f"PERFORM pg_advisory_xact_lock({_lead_key(x)})"


def progress_pg_ddl() -> list[str]:
    def plpgsql(name: str, old: list[str], new: list[str], extra_old: str = "TRUE") -> str:
        return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND {extra_old} THEN
    {_body(old)}
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {_body(new)}
  END IF;
  RETURN NULL;
END $fn$"""

    milestone_fn = plpgsql("progress_milestone", [_lock("OLD.lead_id"), *_milestone_sql("OLD.lead_id", True)],
                           [_lock("NEW.lead_id"), *_milestone_sql("NEW.lead_id", True)])
    enrollment_fn = plpgsql("progress_enrollment", [_lock("OLD.lead_id"), *_enrollment_sql("OLD", -1, True)],
                            [_lock("NEW.lead_id"), *_enrollment_sql("NEW", 1, True)])
    lead_fn = plpgsql("progress_lead", [_lead_sql("OLD", -1, True)], [
        _lead_sql("NEW", 1, True), f"IF TG_OP = 'UPDATE' THEN {_body(_milestone_sql('NEW.id', True))} END IF"]).replace(
        "RETURN NULL;", "IF TG_OP = 'DELETE' THEN DELETE FROM lead_milestone WHERE lead_id = OLD.id; END IF;\n"
        "  RETURN NULL;")
    out = [milestone_fn, enrollment_fn, lead_fn,
           *[f"DROP TRIGGER IF EXISTS {n} ON {n.split('_')[1]}" for n in PROGRESS_TRIGGERS]]
    for table, ins, dele, cols, changed in _MILESTONE_SOURCES:
        out += [f"CREATE TRIGGER progress_{table}_ins AFTER INSERT ON {table} FOR EACH ROW WHEN ({ins}) "
                "EXECUTE FUNCTION progress_milestone()",
                f"CREATE TRIGGER progress_{table}_upd AFTER UPDATE OF {cols} ON {table} FOR EACH ROW "
                f"WHEN ({changed}) EXECUTE FUNCTION progress_milestone()",
                f"CREATE TRIGGER progress_{table}_del AFTER DELETE ON {table} FOR EACH ROW WHEN ({dele}) "
                "EXECUTE FUNCTION progress_milestone()"]
    return [*out,
            "CREATE TRIGGER progress_enrollment_ins AFTER INSERT ON enrollment FOR EACH ROW "
            "EXECUTE FUNCTION progress_enrollment()",
            "CREATE TRIGGER progress_enrollment_upd AFTER UPDATE OF lead_id, sequence_id, entered_at ON enrollment "
            f"FOR EACH ROW WHEN ({_ENR_CHANGED}) EXECUTE FUNCTION progress_enrollment()",
            "CREATE TRIGGER progress_enrollment_del AFTER DELETE ON enrollment FOR EACH ROW "
            "EXECUTE FUNCTION progress_enrollment()",
            "CREATE TRIGGER progress_lead_ins AFTER INSERT ON lead FOR EACH ROW EXECUTE FUNCTION progress_lead()",
            "CREATE TRIGGER progress_lead_upd AFTER UPDATE OF created_at ON lead FOR EACH ROW "
            "WHEN (OLD.created_at IS DISTINCT FROM NEW.created_at) EXECUTE FUNCTION progress_lead()",
            "CREATE TRIGGER progress_lead_del AFTER DELETE ON lead FOR EACH ROW EXECUTE FUNCTION progress_lead()"]


def progress_rebuild_sql(pg: bool) -> list[str]:
    """Recompute both progression rollups from the log."""
    first = "SELECT lead_id, {seq} AS seq, min(entered_at) AS f FROM enrollment GROUP BY lead_id{group}"
    return [
        "DELETE FROM lead_milestone", "DELETE FROM lead_cohort",
        *_milestone_rebuild(pg),
        f"INSERT INTO lead_cohort (day, sequence_id, n) SELECT {_day('created_at', pg)}, 0, count(*) FROM lead "
        "WHERE created_at IS NOT NULL GROUP BY 1",
        *[f"INSERT INTO lead_cohort (day, sequence_id, n) SELECT {_day('x.f', pg)}, x.seq, count(*) FROM "
          f"({first.format(seq=seq, group=group)}) x WHERE x.f IS NOT NULL GROUP BY 1, 2"
          for seq, group in (("-1", ""), ("sequence_id", ", sequence_id"))],
    ]


@contextmanager
def bulk_lead_inserts(conn: Connection) -> Iterator[None]:
    """Around one bulk INSERT of new leads in the caller's transaction (the Salesforce pull's pages of up to
    25,000): on SQLite the row trigger `progress_lead_ins` (one `lead_cohort` upsert per lead, a third of the
    cost of writing the rows) is set aside, and the leads inserted meanwhile are counted with one grouped
    upsert instead — the same cells, the same transaction; the trigger's own definition is then put back
    as it was. SQLite has one writer at a time and its DDL is transactional, so no other writer can insert
    a lead while the trigger is away, and a rollback restores it. On PostgreSQL (DROP TRIGGER would lock
    the table against readers until commit) and without the trigger this does nothing."""
    row = None
    if conn.dialect.name == "sqlite":
        row = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger' "
                                   "AND name = 'progress_lead_ins'").first()
    if row is None:
        yield
        return
    top = int(conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM lead").scalar_one())
    conn.exec_driver_sql("DROP TRIGGER progress_lead_ins")
    try:
        yield
    finally:  # (also after a failed insert: the rows it did write are counted, the trigger is back)
        conn.exec_driver_sql(_cohort_add(_day("created_at", False), "0", "count(*)",
                                         f"FROM lead WHERE id > {top} AND created_at IS NOT NULL GROUP BY 1"))
        conn.exec_driver_sql(str(row[0]))


# --- the split-test report's rollups: lead_send and send_cohort ---------------------------------------------

SEND_TRIGGERS = ("send_activity_ins", "send_activity_hit", "send_activity_upd", "send_activity_del",
                 "send_enrollment_ins", "send_enrollment_upd", "send_enrollment_del")
_CELL = ("version_id", "node_id", "day", "shard")


#: Probes of one lead's sends must walk `activity(kind, lead_id, …)` (a handful of rows). Without planner
#: statistics SQLite prefers `activity(version_id, node_id, kind, …)` (more equality columns), which holds
#: every send of the step: each send would then cost as many rows as the step has sent. A unary plus on
#: version_id keeps that index out of the choice (PostgreSQL reads it as the same integer).
_NO_INDEX = "+"


def _sent_row(r: str) -> str:
    """`r` is a send step's `sent` activity (what lead_send counts)."""
    return f"({r}.kind = 'sent' AND {r}.version_id IS NOT NULL AND {r}.node_id IS NOT NULL)"


def _engaged_row(r: str) -> str:
    """`r` is a non-bot open or click of a message (what marks a lead's send opened / clicked)."""
    return f"({r}.outbox_id IS NOT NULL AND {r}.kind IN ('open', 'click') AND NOT {r}.bot)"


def _keys_of_sent(r: str) -> str:
    return f"(SELECT {r}.version_id AS v, {r}.node_id AS n, {r}.lead_id AS l WHERE {_sent_row(r)})"


def _keys_of_engaged(r: str) -> str:
    """The send of the message `r` engaged with (a message has one `sent` activity)."""
    return (f"(SELECT s.version_id AS v, s.node_id AS n, s.lead_id AS l FROM activity s "
            f"WHERE s.outbox_id = {r}.outbox_id AND {_sent_row('s')} AND {_engaged_row(r)})")


def _keys_of_enrollment(r: str) -> str:
    """Every send step the enrollment's lead was sent from in its version (its goal flag is theirs)."""
    return (f"(SELECT DISTINCT s.version_id AS v, s.node_id AS n, s.lead_id AS l FROM activity s "
            f"WHERE s.kind = 'sent' AND s.lead_id = {r}.lead_id AND {_NO_INDEX}s.version_id = {r}.version_id "
            f"AND s.node_id IS NOT NULL AND {r}.status = 'goal')")


def _message_has(outbox_id: str, kind: str) -> str:
    """The message has a non-bot activity of `kind`."""
    return f"EXISTS (SELECT 1 FROM activity x WHERE x.outbox_id = {outbox_id} AND x.kind = '{kind}' AND NOT x.bot)"


def _goal_met(k: str) -> str:
    """The lead `k.l`'s enrollment in the version `k.v` met the goal."""
    return f"EXISTS (SELECT 1 FROM enrollment e WHERE e.lead_id = {k}.l AND e.version_id = {k}.v AND e.status = 'goal')"


def _shard(pg: bool) -> str:
    return SHARD_PG if pg else "0"


def _cell_add(sign: int, keys: str, pg: bool) -> str:
    """Add (sign ×) the lead_send rows of `keys` to their send_cohort cells (this writer's shard of them; one
    upsert per cell: a statement-level recomputation covers many leads of one cell)."""
    vals = ", ".join(f"{sign} * sum(ls.{c})" for c in ("opened", "clicked", "goal"))
    return (f"INSERT INTO send_cohort (version_id, node_id, day, shard, n, opened, clicked, goal) "
            f"SELECT ls.version_id, ls.node_id, ls.first_day, {_shard(pg)}, {sign} * count(*), {vals} "
            f"FROM {keys} k JOIN lead_send ls ON ls.version_id = k.v AND ls.node_id = k.n AND ls.lead_id = k.l "
            "WHERE TRUE GROUP BY ls.version_id, ls.node_id, ls.first_day "
            f"ON CONFLICT ({', '.join(_CELL)}) DO UPDATE SET "
            + ", ".join(f"{c} = send_cohort.{c} + excluded.{c}" for c in ("n", "opened", "clicked", "goal")))


def _recompute(keys: str, pg: bool) -> list[str]:
    """Recompute the lead_send rows of `keys` (v, n, l) from the log, moving their cells' counts: take the old
    rows out of their cells (dropping a cell left empty), recompute the rows (index probes: the lead's sends
    from the step, their messages' opens and clicks, its goal in the version), put them back in."""
    sends = (f"FROM activity s WHERE s.kind = 'sent' AND s.lead_id = k.l AND {_NO_INDEX}s.version_id = k.v "
             "AND s.node_id = k.n")

    def engaged(kind: str) -> str:
        return _flag(f"EXISTS (SELECT 1 {sends} AND {_message_has('s.outbox_id', kind)})", 1)

    goal = _flag(_goal_met("k"), 1)
    row = (f"SELECT k.v, k.n, k.l, (SELECT min(s.at) {sends}) AS first_at, {engaged('open')} AS o, "
           f"{engaged('click')} AS c, {goal} AS g FROM {keys} k")
    return [
        _cell_add(-1, keys, pg),
        f"DELETE FROM send_cohort WHERE n = 0 AND opened = 0 AND clicked = 0 AND goal = 0 AND ({', '.join(_CELL)}) "
        f"IN (SELECT ls.version_id, ls.node_id, ls.first_day, {_shard(pg)} FROM {keys} k JOIN lead_send ls "
        "ON ls.version_id = k.v AND ls.node_id = k.n AND ls.lead_id = k.l)",
        f"DELETE FROM lead_send WHERE (version_id, node_id, lead_id) IN (SELECT k.v, k.n, k.l FROM {keys} k)",
        "INSERT INTO lead_send (version_id, node_id, lead_id, first_day, opened, clicked, goal) "
        f"SELECT q.v, q.n, q.l, {_day('q.first_at', pg)}, q.o, q.c, q.g FROM ({row}) q WHERE q.first_at IS NOT NULL",
        _cell_add(1, keys, pg),
    ]


_SEND_A_CHANGED = ("(OLD.kind IS DISTINCT FROM NEW.kind OR OLD.version_id IS DISTINCT FROM NEW.version_id OR "
                   "OLD.node_id IS DISTINCT FROM NEW.node_id OR OLD.at IS DISTINCT FROM NEW.at OR OLD.lead_id IS "
                   "DISTINCT FROM NEW.lead_id OR OLD.outbox_id IS DISTINCT FROM NEW.outbox_id OR OLD.bot IS "
                   "DISTINCT FROM NEW.bot)")
_SEND_E_CHANGED = ("(OLD.status IS DISTINCT FROM NEW.status OR OLD.version_id IS DISTINCT FROM NEW.version_id OR "
                   "OLD.lead_id IS DISTINCT FROM NEW.lead_id) AND (OLD.status = 'goal' OR NEW.status = 'goal')")


def _send_any(r: str) -> str:
    return f"({_sent_row(r)} OR {_engaged_row(r)})"


def _flag_unset(r: str) -> str:
    """A new open / click `r` can change its send's lead_send row only while that row's flag for its kind
    is still 0 — inserts only ever set it — so a repeat open or click of a message (most tracking hits: image
    prefetch, re-reads) skips the recomputation: one index probe instead of ten statements."""
    return ("EXISTS (SELECT 1 FROM activity s JOIN lead_send ls ON ls.version_id = s.version_id AND "
            f"ls.node_id = s.node_id AND ls.lead_id = s.lead_id WHERE s.outbox_id = {r}.outbox_id AND "
            f"{_sent_row('s')} AND (CASE WHEN {r}.kind = 'open' THEN ls.opened ELSE ls.clicked END) = 0)")


def _activity_recompute(r: str, pg: bool) -> list[str]:
    return [*_recompute(_keys_of_sent(r), pg), *_recompute(_keys_of_engaged(r), pg)]


def send_sqlite_ddl() -> list[str]:
    def sq(cond: str) -> str:
        return cond.replace("IS DISTINCT FROM", "IS NOT")

    return [
        f"CREATE TRIGGER IF NOT EXISTS send_activity_ins AFTER INSERT ON activity WHEN {_sent_row('NEW')} "
        f"BEGIN {_body(_recompute(_keys_of_sent('NEW'), False))} END",
        f"CREATE TRIGGER IF NOT EXISTS send_activity_hit AFTER INSERT ON activity WHEN {_engaged_row('NEW')} "
        f"AND {_flag_unset('NEW')} BEGIN {_body(_recompute(_keys_of_engaged('NEW'), False))} END",
        f"CREATE TRIGGER IF NOT EXISTS send_activity_upd AFTER UPDATE ON activity WHEN {sq(_SEND_A_CHANGED)} AND "
        f"({_send_any('OLD')} OR {_send_any('NEW')}) BEGIN "
        f"{_body([*_activity_recompute('OLD', False), *_activity_recompute('NEW', False)])} END",
        f"CREATE TRIGGER IF NOT EXISTS send_activity_del AFTER DELETE ON activity WHEN {_send_any('OLD')} "
        f"BEGIN {_body(_activity_recompute('OLD', False))} END",
        "CREATE TRIGGER IF NOT EXISTS send_enrollment_ins AFTER INSERT ON enrollment WHEN NEW.status = 'goal' "
        f"BEGIN {_body(_recompute(_keys_of_enrollment('NEW'), False))} END",
        f"CREATE TRIGGER IF NOT EXISTS send_enrollment_upd AFTER UPDATE ON enrollment WHEN {sq(_SEND_E_CHANGED)} "
        f"BEGIN {_body([q for r in ('OLD', 'NEW') for q in _recompute(_keys_of_enrollment(r), False)])} END",
        "CREATE TRIGGER IF NOT EXISTS send_enrollment_del AFTER DELETE ON enrollment WHEN OLD.status = 'goal' "
        f"BEGIN {_body(_recompute(_keys_of_enrollment('OLD'), False))} END",
    ]


def send_pg_ddl() -> list[str]:
    # Each recomputation first takes the lead's rollup lock (as the progression triggers do), so two writers of one
    # lead's sends, opens or goal run one after the other and the second sees the first's rows.
    def fn(name: str, old: list[str], new: list[str], old_when: str, new_when: str) -> str:
        return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND {old_when} THEN
    {_lock("OLD.lead_id")};
    {_body(old)}
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND {new_when} THEN
    {_lock("NEW.lead_id")};
    {_body(new)}
  END IF;
  RETURN NULL;
END $fn$"""

    return [
        fn("send_activity", _activity_recompute("OLD", True), _activity_recompute("NEW", True),
           _send_any("OLD"), f"({_sent_row('NEW')} OR ({_engaged_row('NEW')} AND (TG_OP <> 'INSERT' OR "
           f"{_flag_unset('NEW')})))"),
        fn("send_enrollment", _recompute(_keys_of_enrollment("OLD"), True),
           _recompute(_keys_of_enrollment("NEW"), True), "OLD.status = 'goal'", "NEW.status = 'goal'"),
        *[f"DROP TRIGGER IF EXISTS {n} ON {_trigger_table(n)}" for n in SEND_TRIGGERS],
        # row-level: a statement-level version over the transition table measured slower for the engine's
        # batches of 500 sends (each lead's recomputation is a few index probes either way)
        f"CREATE TRIGGER send_activity_ins AFTER INSERT ON activity FOR EACH ROW WHEN ({_sent_row('NEW')}) "
        "EXECUTE FUNCTION send_activity()",
        f"CREATE TRIGGER send_activity_hit AFTER INSERT ON activity FOR EACH ROW WHEN ({_engaged_row('NEW')}) "
        "EXECUTE FUNCTION send_activity()",
        "CREATE TRIGGER send_activity_upd AFTER UPDATE OF kind, version_id, node_id, at, lead_id, outbox_id, bot "
        f"ON activity FOR EACH ROW WHEN ({_SEND_A_CHANGED} AND ({_send_any('OLD')} OR {_send_any('NEW')})) "
        "EXECUTE FUNCTION send_activity()",
        f"CREATE TRIGGER send_activity_del AFTER DELETE ON activity FOR EACH ROW WHEN ({_send_any('OLD')}) "
        "EXECUTE FUNCTION send_activity()",
        "CREATE TRIGGER send_enrollment_ins AFTER INSERT ON enrollment FOR EACH ROW WHEN (NEW.status = 'goal') "
        "EXECUTE FUNCTION send_enrollment()",
        "CREATE TRIGGER send_enrollment_upd AFTER UPDATE OF status, version_id, lead_id ON enrollment FOR EACH ROW "
        f"WHEN ({_SEND_E_CHANGED}) EXECUTE FUNCTION send_enrollment()",
        "CREATE TRIGGER send_enrollment_del AFTER DELETE ON enrollment FOR EACH ROW WHEN (OLD.status = 'goal') "
        "EXECUTE FUNCTION send_enrollment()",
    ]


def send_rebuild_sql(pg: bool) -> list[str]:
    def engaged(kind: str) -> str:
        return f"max({_flag(_message_has('s.outbox_id', kind), 1)})"

    goal = _flag(_goal_met("q"), 1)
    per_lead = (f"SELECT s.version_id AS v, s.node_id AS n, s.lead_id AS l, min(s.at) AS first_at, "
                f"{engaged('open')} AS o, {engaged('click')} AS c FROM activity s WHERE {_sent_row('s')} "
                "GROUP BY s.version_id, s.node_id, s.lead_id")
    return ["DELETE FROM send_cohort", "DELETE FROM lead_send",
            "INSERT INTO lead_send (version_id, node_id, lead_id, first_day, opened, clicked, goal) "
            f"SELECT q.v, q.n, q.l, {_day('q.first_at', pg)}, q.o, q.c, {goal} FROM ({per_lead}) q",
            "INSERT INTO send_cohort (version_id, node_id, day, shard, n, opened, clicked, goal) SELECT version_id, "
            "node_id, first_day, 0, count(*), sum(opened), sum(clicked), sum(goal) FROM lead_send GROUP BY 1, 2, 3"]


DDL_KEY = "rollups.ddl"


def _ddl(pg: bool) -> list[str]:
    return ([*pg_ddl(), *progress_pg_ddl(), *send_pg_ddl()] if pg
            else [*sqlite_ddl(), *progress_sqlite_ddl(), *send_sqlite_ddl()])


def _fingerprint(pg: bool) -> str:
    """Of the trigger definitions this code installs: a workspace whose triggers were made by other code
    (an older release) gets them replaced and its rollups rebuilt."""
    return hashlib.sha256("\n".join(_ddl(pg)).encode()).hexdigest()[:16]


def installed(conn: Connection) -> bool:
    pg = conn.dialect.name == "postgresql"
    if pg:
        sql = ("SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
               "WHERE (t.tgname LIKE 'email_stat_%' OR t.tgname LIKE 'progress_%' OR t.tgname LIKE 'send_%') "
               "AND c.relnamespace = to_regnamespace(current_schema())")
    else:
        sql = ("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
               "AND (name LIKE 'email_stat_%' OR name LIKE 'progress_%' OR name LIKE 'send_%')")
    expected = len(TRIGGER_NAMES) + len(PROGRESS_TRIGGERS) + len(SEND_TRIGGERS)
    complete = int(conn.execute(text(sql)).scalar_one()) == expected
    return complete and meta.get(conn, DDL_KEY) == _fingerprint(pg)


def _trigger_table(name: str) -> str:
    if name.startswith("email_stat_"):
        return name.split("_")[2]
    return name.split("_")[1]  # progress_<table>_<op>, send_<table>_<op>


def uninstall(conn: Connection) -> None:
    """Drop every rollup trigger (a bulk load without its secondary indexes would make each trigger's probes
    scan the table); `install` afterwards creates them and rebuilds the rollups from the log."""
    pg = conn.dialect.name == "postgresql"
    for name in (*TRIGGER_NAMES, *PROGRESS_TRIGGERS, *SEND_TRIGGERS):
        conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {_trigger_table(name)}" if pg else ""))


def install(conn: Connection, *, rebuild: bool | None = None) -> bool:
    """Create the triggers if they are missing and then rebuild the rollup from the log (both in the
    caller's transaction). Returns True when it had to install them. `rebuild=True` forces a rebuild."""
    pg = conn.dialect.name == "postgresql"

    def run(stmt: str) -> None:
        conn.exec_driver_sql(stmt.replace("%", "%%") if pg else stmt)  # psycopg reads % as a placeholder

    fresh = not installed(conn)
    if fresh:
        uninstall(conn)  # (SQLite's CREATE TRIGGER IF NOT EXISTS would keep an older definition)
        for stmt in _ddl(pg):
            run(stmt)
        meta.put(conn, DDL_KEY, _fingerprint(pg))
    if fresh if rebuild is None else rebuild:
        for stmt in [*rebuild_sql(pg), *progress_rebuild_sql(pg), *send_rebuild_sql(pg)]:
            run(stmt)
    return fresh


@event.listens_for(SQLModel.metadata, "after_create")
def _after_create(target: Any, connection: Connection, **kw: Any) -> None:
    """`metadata.create_all` (tests, tools) gets the triggers too, once the tables they sit on exist."""
    tables = {t.name for t in kw.get("tables") or target.sorted_tables}
    if tables & set(ROLLUP_TABLES) or not installed(connection):
        existing = set(connection.dialect.get_table_names(connection))
        if set(ROLLUP_TABLES) | {"outbox", "activity", "lead", "enrollment", "mql", "opportunity"} <= existing:
            install(connection)
