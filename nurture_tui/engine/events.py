"""The single entry point for engagement coming in: tracking web app, demo simulator, Salesforce pull.

`record_events(conn, events, now, settings)` runs inside the caller's transaction and:
1. inserts one `activity` row per event (bot-flagged rows are stored but trigger and score nothing);
2. scores the rest (scoring.service.apply_activities);
3. refreshes materialised segments for the affected leads (when the segments area provides it);
4. wakes matching `wait_for` enrollments: `up_to` → due now with outcome yes, `exactly` → outcome yes
   recorded for the end of the window. Only events at or after the moment the lead reached the node count;
5. checks goal and exit rules of the affected leads' running enrollments;
6. re-checks entry: event-entry sequences whose event matches, and segment-entry sequences for these leads.

An event is a dict: lead_id and kind (required); at (default now), sequence_id, version_id, node_id,
template_id, outbox_id, url, bot, meta, dedupe_key (for event entry) optional.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from ..errors import ValidationError
from ..sequences.model import EventMatch
from ..store.models import ACTIVITY_KINDS
from ..store.tables import activity, enrollment, lead, template
from . import deps
from .bulk import insert_with_ids
from .lifecycle import ACTIVITY_KEYS, Live, activity_row, finish, goal_or_exit
from .node_stats import CounterBatch
from .plans import Plan, load_plan

#: Kinds that count as engagement (update lead.last_activity_at).
ENGAGEMENT_KINDS = frozenset(
    {"open", "click", "form", "page_view", "reply", "meeting", "campaign_response", "opportunity"}
)


def record_events(conn: Connection, events: list[dict[str, Any]], now: datetime, settings: Any) -> list[int]:
    """Record engagement events; returns the new activity ids in input order."""
    rows = [_activity(e, now, f"events[{i}]") for i, e in enumerate(events)]
    if not rows:
        return []
    ids = insert_with_ids(conn, activity, [dict(r) for r in rows])
    live = []
    for aid, row, ev in zip(ids, rows, events, strict=True):
        if not row["bot"]:
            live.append({**row, "id": aid, "dedupe_key": ev.get("dedupe_key")})
    if not live:
        return ids
    deps.apply_activities(conn, [{k: v for k, v in a.items() if k != "dedupe_key"} for a in live], now, settings)
    lead_ids = sorted({a["lead_id"] for a in live})
    _touch_leads(conn, live)
    deps.refresh_segments_for_leads(conn, lead_ids, now)
    counters = CounterBatch()
    acts: list[dict[str, Any]] = []
    wake_waiting(conn, live, now)
    _check_rules(conn, lead_ids, now, counters, acts)
    from .enroll import enroll_from_events, recheck_segment_entry

    enroll_from_events(conn, live, now, settings)
    recheck_segment_entry(conn, lead_ids, now, settings)
    if acts:
        conn.execute(insert(activity), acts)
    counters.flush(conn)
    return ids


def _activity(event: dict[str, Any], now: datetime, where: str) -> dict[str, Any]:
    kind = event.get("kind")
    if kind not in ACTIVITY_KINDS:
        raise ValidationError(f"{where}.kind", f"unknown activity kind {kind!r}")
    lead_id = event.get("lead_id")
    if not isinstance(lead_id, int):
        raise ValidationError(f"{where}.lead_id", "a lead id (integer) is required")
    at = event.get("at") or now
    if at.tzinfo is None:
        raise ValidationError(f"{where}.at", "timestamp must be timezone-aware")
    values = {k: event.get(k) for k in ACTIVITY_KEYS if k not in ("lead_id", "kind", "at")}
    values["bot"] = bool(values["bot"])
    values["meta"] = values["meta"] or {}
    return activity_row(lead_id, kind, at, **values)


def _touch_leads(conn: Connection, live: list[dict[str, Any]]) -> None:
    latest: dict[int, datetime] = {}
    for a in live:
        lid = a["lead_id"]
        if a["kind"] in ENGAGEMENT_KINDS and (lid not in latest or a["at"] > latest[lid]):
            latest[lid] = a["at"]
    if latest:
        conn.execute(
            update(lead)
            .where(lead.c.id == bindparam("lid"))
            .values(last_activity_at=func.coalesce(
                func.max(lead.c.last_activity_at, bindparam("at")) if conn.dialect.name == "sqlite"
                else func.greatest(lead.c.last_activity_at, bindparam("at")),
                bindparam("at"),
            )),
            [{"lid": lid, "at": at} for lid, at in sorted(latest.items())],
        )


# -- wait_for wake -----------------------------------------------------------------------------------

def wake_waiting(conn: Connection, live: list[dict[str, Any]], now: datetime) -> int:
    """Set matching `wait_for` outcomes; returns how many enrollments were woken."""
    by_lead: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in live:
        by_lead[a["lead_id"]].append(a)
    e = enrollment.c
    waiting = conn.execute(
        select(e.id, e.lead_id, e.version_id, e.sequence_id, e.node_id, e.steps, e.wait_for, e.node_entered_at)
        .where(e.lead_id.in_(list(by_lead)), e.status == "waiting", e.wait_for.is_not(None))
    ).all()
    names = TemplateNames(conn)
    params = []
    for row in waiting:
        wf = row.wait_for
        if not isinstance(wf, dict) or wf.get("outcome") == "yes" or "events" not in wf:
            continue
        plan = load_plan(conn, row.version_id)
        node = plan.nodes.get(row.node_id or "")
        if node is None or node.step.wait_for is None:
            continue
        matches = node.step.wait_for.events
        since = row.node_entered_at
        hit = next((a for a in by_lead[row.lead_id]
                    if (since is None or a["at"] >= since)
                    and any(event_matches(m, a, row.sequence_id, names) for m in matches)), None)
        if hit is None:
            continue
        new_wf = {**wf, "outcome": "yes", "activity_id": hit["id"]}
        up_to = node.step.wait_for.mode == "up_to" or node.step.wait_for.window is None
        params.append({"eid": row.id, "p_steps": row.steps, "p_wf": new_wf, "p_up_to": up_to})
    woken = [p for p in params if p["p_up_to"]]
    exactly = [p for p in params if not p["p_up_to"]]
    guard = (e.id == bindparam("eid")) & (e.steps == bindparam("p_steps")) & (e.status == "waiting")
    if woken:
        conn.execute(update(enrollment).where(guard).values(wait_for=bindparam("p_wf"), due_at=now),
                     [{k: v for k, v in p.items() if k != "p_up_to"} for p in woken])
    if exactly:
        conn.execute(update(enrollment).where(guard).values(wait_for=bindparam("p_wf")),
                     [{k: v for k, v in p.items() if k != "p_up_to"} for p in exactly])
    return len(params)


class TemplateNames:
    """Template name → id, looked up once per call when a wait_for names a template."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ids: dict[str, int | None] = {}

    def id_of(self, name: str) -> int | None:
        if name not in self._ids:
            self._ids[name] = self._conn.execute(
                select(template.c.id).where(template.c.name == name)
            ).scalar_one_or_none()
        return self._ids[name]


def event_matches(m: EventMatch, a: dict[str, Any], sequence_id: int | None, names: TemplateNames) -> bool:
    if a["kind"] != m.kind:
        return False
    if m.node is not None and (a.get("node_id") != m.node or a.get("sequence_id") != sequence_id):
        return False
    if m.template is not None and (a.get("template_id") is None or a["template_id"] != names.id_of(m.template)):
        return False
    if m.url is not None and not fnmatchcase(a.get("url") or "", m.url):
        return False
    if m.form is not None:
        form = (a.get("meta") or {}).get("form")
        if form is None or not fnmatchcase(str(form), m.form):
            return False
    return True


# -- goal / exit on events ---------------------------------------------------------------------------

def _check_rules(
    conn: Connection, lead_ids: list[int], now: datetime, counters: CounterBatch, acts: list[dict[str, Any]]
) -> None:
    e = enrollment.c
    rows = conn.execute(
        select(e.id, e.lead_id, e.sequence_id, e.version_id, e.node_id, e.steps)
        .where(e.lead_id.in_(lead_ids), e.status.in_(("active", "waiting")))
    ).all()
    items = [Live(r.id, r.lead_id, r.sequence_id, r.version_id, r.node_id, r.steps) for r in rows]
    items = [it for it in items if _plan_has_rules(conn, it.version_id)]
    if not items:
        return
    verdicts = goal_or_exit(conn, items, now)
    done = [(it, *verdicts[it.id]) for it in items if it.id in verdicts]
    if done:
        finish(conn, done, now, counters, acts)


def _plan_has_rules(conn: Connection, version_id: int) -> bool:
    plan: Plan = load_plan(conn, version_id)
    return plan.has_rules
