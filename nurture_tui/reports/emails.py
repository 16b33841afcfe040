"""Email metrics per send cohort: the messages sent in the period, and everything that happened to them
(whenever it happened), per sequence, step, template and week.

A message belongs to the cohort of the moment it was queued for sending (`outbox.created_at`, the time of
its `sent` activity); its opens, clicks, unsubscribes and complaints count for that cohort, so a rate is
always "of the messages sent in the period, how many were opened", never opens of one day over sends of
another (the 187 % open rate the old dashboard table showed).

- sent: cohort messages that were attempted (outbox status sent, bounced or failed; still queued or
  suppressed ones are not counted);
- delivered: accepted by the relay (status sent);
- bounced_hard: refused permanently for the recipient (5xx → status bounced; also when the bounce comes back
  later as a DSN or an ESP event, mail/bounces.py);
- bounced_soft: given up after temporary refusals (status failed with a 4xx as the last error; a later soft
  bounce report writes `4xx soft bounce (…)`);
- failed: other failures (our sender refused, a relay error);
- unique/total opens, unique clicks: non-bot `open`/`click` activities carrying the message id (of any cohort
  message: only a delivered message carries the tracking links, so in practice of delivered ones); opens and
  clicks flagged as a machine (link scanners, mail-privacy prefetch: `activity.bot`) are counted apart in
  bot_opens and bot_clicks and nowhere else;
- unsubscribes: messages whose unsubscribe link (or List-Unsubscribe) was used, by category left;
- complaints: `complaint` suppressions, each counted against the last message sent to that lead before it.
Rates are over delivered messages; click-to-open is unique clicks over unique opens.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, func, literal, or_, select

from ..batching import chunks
from ..store.tables import activity, email_stat, outbox, sequence, suppression, template
from .common import Period, Report, Scope, day_of, make_report, rate, segment_leads, week_of
from .dashboard import Series, start_of_day

NAME = "emails"
TITLE = "Email metrics per send cohort"
COUNTS = ("sent", "delivered", "bounced_hard", "bounced_soft", "failed", "unique_opens", "total_opens",
          "bot_opens", "unique_clicks", "total_clicks", "bot_clicks", "unsubscribes", "complaints")
COLUMNS = ["level", "key", "sent", "delivered", "bounced_hard", "bounced_soft", "failed", "unique_opens",
           "open_rate", "total_opens", "bot_opens", "unique_clicks", "click_rate", "click_to_open",
           "total_clicks", "bot_clicks", "unsubscribes", "unsubscribe_rate", "unsubscribes_by_category",
           "complaints", "complaint_rate"]
ATTEMPTED = ("sent", "bounced", "failed")


def _flag(cond: Any) -> Any:
    return case((cond, 1), else_=0)


def cohort_where(conn: Connection, scope: Scope) -> list[Any]:
    o = outbox.c
    where = [o.created_at >= scope.period.since, o.created_at < scope.period.until]
    if scope.sequence_id is not None:
        where.append(o.sequence_id == scope.sequence_id)
    seg = segment_leads(conn, scope)
    if seg is not None:
        where.append(o.lead_id.in_(seg))
    return where


def _per_message(conn: Connection, scope: Scope) -> Any:
    """One row per cohort message with its engagement counts (a join on activity's message index)."""
    o, a = outbox.c, activity.c
    nonbot = a.bot.is_(False)
    eng = (select(a.outbox_id.label("oid"),
                  func.sum(_flag(and_(a.kind == "open", nonbot))).label("opens"),
                  func.sum(_flag(and_(a.kind == "open", a.bot.is_(True)))).label("bot_opens"),
                  func.sum(_flag(and_(a.kind == "click", nonbot))).label("clicks"),
                  func.sum(_flag(and_(a.kind == "click", a.bot.is_(True)))).label("bot_clicks"),
                  func.sum(_flag(a.kind == "unsubscribe")).label("unsubs"))
           .select_from(outbox.join(activity, a.outbox_id == o.id))
           .where(*cohort_where(conn, scope), a.kind.in_(("open", "click", "unsubscribe")))
           .group_by(a.outbox_id).subquery())
    return eng


def cohort_cells(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """The cohort's counts per (sequence, step, template, day sent): every figure is additive over cells.
    Read from the `email_stat` rollup (exact: kept by triggers, see store/rollups.py); with a segment
    filter, which the rollup cannot know, from the log itself."""
    if scope.segment_name is not None:
        return scan_cells(conn, scope)
    s = email_stat.c
    where = [s.day >= f"{scope.period.since:%Y-%m-%d}", s.day < f"{scope.period.until:%Y-%m-%d}"]
    if scope.sequence_id is not None:
        where.append(s.sequence_id == scope.sequence_id)
    stmt = (select(s.sequence_id, s.node_id, s.template_id, s.day, *[func.sum(s[c]).label(c) for c in COUNTS
                                                                      if c != "complaints"])
            .where(*where).group_by(s.sequence_id, s.node_id, s.template_id, s.day))
    out = []
    for r in conn.execute(stmt):
        cell = dict(r._mapping)
        if not cell["sent"] and not any(cell[c] for c in COUNTS if c != "complaints"):
            continue  # a cell whose messages were all deleted
        cell.update(sequence_id=cell["sequence_id"] or None, node_id=cell["node_id"] or None,
                    template_id=cell["template_id"] or None, complaints=0)
        out.append(cell)
    return out


def scan_cells(conn: Connection, scope: Scope) -> list[dict[str, Any]]:
    """`cohort_cells` computed from `outbox` and `activity` (the segment filter; the rollup's reference)."""
    o = outbox.c
    eng = _per_message(conn, scope)
    day = day_of(conn, o.created_at).label("day")
    soft = and_(o.status == "failed", o.last_error.like("4%"))
    stmt = (select(o.sequence_id, o.node_id, o.template_id, day,
                   func.sum(_flag(o.status.in_(ATTEMPTED))).label("sent"),
                   func.sum(_flag(o.status == "sent")).label("delivered"),
                   func.sum(_flag(o.status == "bounced")).label("bounced_hard"),
                   func.sum(_flag(soft)).label("bounced_soft"),
                   func.sum(_flag(and_(o.status == "failed", or_(o.last_error.is_(None), ~o.last_error.like("4%")))))
                   .label("failed"),
                   func.sum(_flag(eng.c.opens > 0)).label("unique_opens"),
                   func.coalesce(func.sum(eng.c.opens), 0).label("total_opens"),
                   func.coalesce(func.sum(eng.c.bot_opens), 0).label("bot_opens"),
                   func.sum(_flag(eng.c.clicks > 0)).label("unique_clicks"),
                   func.coalesce(func.sum(eng.c.clicks), 0).label("total_clicks"),
                   func.coalesce(func.sum(eng.c.bot_clicks), 0).label("bot_clicks"),
                   func.sum(_flag(eng.c.unsubs > 0)).label("unsubscribes"),
                   literal(0).label("complaints"))
            .select_from(outbox.outerjoin(eng, eng.c.oid == o.id))
            .where(*cohort_where(conn, scope))
            .group_by(o.sequence_id, o.node_id, o.template_id, day))
    return [dict(r._mapping) for r in conn.execute(stmt)]


def daily_series(conn: Connection, now: datetime, days: int = 14) -> Series:
    """Sent, opened and clicked per send day over the last `days` days (the TUI's Reports table): "open" and
    "click" are the messages *of that day's cohort* that were opened / clicked (bots excluded), so
    open / sent is a true rate, never above 100 %."""
    today = start_of_day(now)
    first = today - timedelta(days=days - 1)
    scope = Scope(Period(first, today + timedelta(days=1)), now)
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    for c in cohort_cells(conn, scope):
        per_day[c["day"]].update({"sent": int(c["sent"]), "open": int(c["unique_opens"] or 0),
                                  "click": int(c["unique_clicks"] or 0)})
    starts = [first + timedelta(days=i) for i in range(days)]
    keys = [f"{s:%Y-%m-%d}" for s in starts]
    return Series(labels=[f"{s:%m-%d}" for s in starts],
                  values={k: [per_day[d][k] for d in keys] for k in ("sent", "open", "click")})


def load(conn: Connection, scope: Scope) -> Report:
    cells = cohort_cells(conn, scope)
    if not cells:
        return make_report(NAME, TITLE, scope, COLUMNS, [], empty="no messages were sent in the period"
                           + (" by this sequence" if scope.sequence_id else ""))
    categories = _unsub_categories(conn, scope)
    complaints = _complaints(conn, scope)
    seq_names = dict(conn.execute(select(sequence.c.id, sequence.c.name)).all())
    tpl_names = dict(conn.execute(select(template.c.id, template.c.name)).all())

    def keys(c: dict[str, Any]) -> list[tuple[str, str]]:
        seq = seq_names.get(c["sequence_id"], "(no sequence)" if c["sequence_id"] is None
                            else f"sequence {c['sequence_id']}")
        tpl = tpl_names.get(c["template_id"], "(no template)" if c["template_id"] is None
                            else f"template {c['template_id']}")
        return [("total", "all"), ("week", week_of(c["day"])), ("sequence", seq),
                ("step", f"{seq} / {c['node_id'] or '-'}"), ("template", tpl)]

    totals: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    cats: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for c in cells:
        ident = (c["sequence_id"], c["node_id"], c["template_id"], c["day"])
        c["complaints"] = complaints.get(ident, 0)
        for k in keys(c):
            totals[k].update({n: int(c[n] or 0) for n in COUNTS})
            cats[k].update(categories.get(ident, Counter()))
    order = {"total": 0, "week": 1, "sequence": 2, "step": 3, "template": 4}
    rows = [_row(level, key, totals[(level, key)], cats[(level, key)])
            for level, key in sorted(totals, key=lambda k: (order[k[0]], k[1]))]
    return make_report(NAME, TITLE, scope, COLUMNS, rows, notes=[
        "cohort = messages queued for sending in the period; their engagement counts whenever it happened",
        "rates are % of delivered; click_to_open = unique clicks / unique opens",
        "bot_opens / bot_clicks: machine opens and clicks (scanners, prefetch), excluded from every other column",
    ])


def _row(level: str, key: str, t: Counter[str], cats: Counter[str]) -> dict[str, Any]:
    d = t["delivered"]
    return {"level": level, "key": key, **{n: t[n] for n in COUNTS},
            "open_rate": rate(t["unique_opens"], d), "click_rate": rate(t["unique_clicks"], d),
            "click_to_open": rate(t["unique_clicks"], t["unique_opens"]),
            "unsubscribe_rate": rate(t["unsubscribes"], d, 2),
            "unsubscribes_by_category": "; ".join(f"{c}: {n}" for c, n in sorted(cats.items())),
            "complaint_rate": rate(t["complaints"], d, 2)}


def _unsub_categories(conn: Connection, scope: Scope) -> dict[tuple[Any, ...], Counter[str]]:
    """Categories left per cohort cell (one unsubscribe may leave several; `*` = all marketing). Read from
    the unsubscribes (few) to their messages, never the other way round (the cohort can be millions)."""
    o, a = outbox.c, activity.c
    out: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    unsubs = conn.execute(select(a.outbox_id, a.meta).where(a.kind == "unsubscribe", a.outbox_id.is_not(None),
                                                             a.at >= scope.period.since)).all()
    by_message: dict[int, list[Any]] = defaultdict(list)
    for oid, meta in unsubs:
        by_message[int(oid)].append(meta)
    for chunk in chunks(sorted(by_message)):
        for oid, seq_id, node_id, tpl_id, day, category in conn.execute(
                select(o.id, o.sequence_id, o.node_id, o.template_id, day_of(conn, o.created_at), o.category)
                .where(o.id.in_(chunk), *cohort_where(conn, scope))):
            for meta in by_message[oid]:
                left = (meta or {}).get("categories") or [category]
                out[(seq_id, node_id, tpl_id, day)].update("all marketing" if c == "*" else str(c) for c in left)
    return out


def _complaints(conn: Connection, scope: Scope) -> Counter[tuple[Any, ...]]:
    """Each complaint against the last message sent to its lead before it, if that message is in the cohort."""
    o, s = outbox.c, suppression.c
    last = (select(o.id).where(o.lead_id == s.lead_id, o.created_at <= s.created_at, o.status.in_(ATTEMPTED))
            .order_by(o.created_at.desc(), o.id.desc()).limit(1).correlate(suppression).scalar_subquery())
    rows = conn.execute(select(s.lead_id, last.label("oid"))
                        .where(s.reason == "complaint", s.lead_id.is_not(None),
                               s.created_at >= scope.period.since)).all()
    ids = [r.oid for r in rows if r.oid is not None]
    out: Counter[tuple[Any, ...]] = Counter()
    if not ids:
        return out
    for r in conn.execute(select(o.sequence_id, o.node_id, o.template_id, day_of(conn, o.created_at))
                          .where(o.id.in_(ids), *cohort_where(conn, scope))):
        out[tuple(r)] += 1
    return out
