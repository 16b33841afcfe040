"""The hand-off to sales: an engagement summary the rep starts from, pushed to Salesforce as a Task
(plus status / owner / score / grade field updates through `salesforce.outbox`), optionally emailed.

The summary answers what a rep asks first: which sequences and steps the lead went through (the path
taken), which emails it received and opened — by the subject line the lead actually saw (the rendered
subject of the sent message, never the template's source), which links it clicked (with their titles),
which pages it visited and forms it filled (with dates), how the score got where it is, and why it
qualified. No `{{ … }}` / `{% … %}` ever reaches the rep (`untemplated`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ..config import ScoringSettings
from ..salesforce import outbox as sf
from ..store.tables import account, activity, enrollment, lead, mql, sequence, template, user
from ..store.tables import outbox as mail_outbox
from .history import history
from .scale import scale

HISTORY_LINES = 12
LIST_LINES = 10


def _fmt_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def _name(row: Any) -> str:
    return " ".join(p for p in (row.first_name, row.last_name) if p) or row.email


def engagement_summary(conn: Connection, mql_id: int, now: datetime, settings: ScoringSettings) -> str:
    """Plain text (Salesforce Task descriptions are plain text, ≤32k characters)."""
    m = conn.execute(select(mql).where(mql.c.id == mql_id)).one()
    ld = conn.execute(select(lead).where(lead.c.id == m.lead_id)).one()
    acct = None
    if ld.account_id is not None:
        acct = conn.execute(select(account.c.name).where(account.c.id == ld.account_id)).scalar()
    why = m.why or {}
    live = scale(conn, now, settings).live(float(ld.score), now)
    lines = [
        f"{_name(ld)} <{ld.email}>" + (f", {ld.title}" if ld.title else "")
        + (f" at {ld.company or acct}" if (ld.company or acct) else ""),
        "  " + " · ".join(x for x in (ld.industry, ld.country, ld.persona and f"persona {ld.persona}",
                                     ld.stage and f"stage {ld.stage}") if x),
        "",
        f"WHY IT QUALIFIED (cycle {m.cycle}, {_fmt_time(m.created_at)} UTC)",
        f"  rule: {why.get('rule', '?')}; score {m.score:.0f}, grade {m.grade or '-'}; "
        f"assigned by {why.get('assigned', '?')}",
        f"  lead score now {live:.0f}",
    ]
    if m.account_id is not None:  # an MQA: the account qualified; show who drives it
        lines.append(f"  account {why.get('account', acct) or '?'}: top leads "
                     + ", ".join(f"{t['email']} ({t['score']:g})" for t in why.get("leads", [])))
    acts = conn.execute(
        select(activity.c.kind, activity.c.at, activity.c.sequence_id, activity.c.node_id, activity.c.template_id,
               activity.c.outbox_id, activity.c.url, activity.c.meta)
        .where(activity.c.lead_id == m.lead_id, activity.c.bot == False)  # noqa: E712
        .order_by(activity.c.at, activity.c.id)).all()
    seq_ids = {a.sequence_id for a in acts if a.sequence_id is not None}
    enr = conn.execute(select(enrollment.c.sequence_id, enrollment.c.status, enrollment.c.node_id)
                       .where(enrollment.c.lead_id == m.lead_id)).all()
    seq_ids |= {e.sequence_id for e in enr}
    seq_names = dict(conn.execute(select(sequence.c.id, sequence.c.name).where(sequence.c.id.in_(seq_ids))).all()) \
        if seq_ids else {}
    tpl_ids = {a.template_id for a in acts if a.template_id is not None}
    tpl = {r.id: r for r in conn.execute(select(template.c.id, template.c.name, template.c.subject)
                                         .where(template.c.id.in_(tpl_ids)))} if tpl_ids else {}
    subject_of = received_subjects(conn, int(m.lead_id), tpl)

    steps: dict[int, set[str]] = defaultdict(set)
    path: dict[int, list[str]] = defaultdict(list)  # the nodes in the order the lead reached them
    sends: Counter[int] = Counter()
    for a in acts:
        if a.sequence_id is not None and a.node_id:
            steps[a.sequence_id].add(a.node_id)
            if a.node_id not in path[a.sequence_id]:
                path[a.sequence_id].append(a.node_id)
        if a.kind == "sent" and a.sequence_id is not None:
            sends[a.sequence_id] += 1
    lines += ["", "SEQUENCES"]
    status = {e.sequence_id: f"{e.status} at {e.node_id}" if e.node_id else e.status for e in enr}
    if not seq_ids:
        lines.append("  (none)")
    for sid in sorted(seq_ids):
        lines.append(f"  {seq_names.get(sid, f'#{sid}')}: {len(steps[sid])} steps completed, {sends[sid]} emails "
                     f"sent" + (f", {status[sid]}" if sid in status else ""))
        if path[sid]:
            lines.append("    path: " + " → ".join(path[sid][-LIST_LINES:]))

    sent = [a for a in acts if a.kind == "sent"]
    lines += ["", f"EMAILS RECEIVED ({len(sent)})"]
    for a in sent[-LIST_LINES:]:
        lines.append(f"  {_fmt_time(a.at)} {subject_of(a)}")
    opens: Counter[str] = Counter()
    for a in acts:
        if a.kind == "open":
            opens[subject_of(a)] += 1
    lines += ["", f"EMAILS OPENED ({sum(opens.values())})"]
    lines += [f"  {subject} ×{n}" if n > 1 else f"  {subject}" for subject, n in opens.most_common(LIST_LINES)]

    clicks = [a for a in acts if a.kind == "click"]
    titles = link_titles(conn, {a.template_id for a in clicks if a.template_id is not None})
    lines += ["", f"LINKS CLICKED ({len(clicks)})"]
    for a in clicks[-LIST_LINES:]:
        meta = a.meta or {}
        title = untemplated(meta.get("title") or meta.get("link_text") or titles.get((a.template_id, a.url)))
        lines.append(f"  {_fmt_time(a.at)} {title + ' — ' if title else ''}{a.url or '?'}")

    forms = [a for a in acts if a.kind == "form"]
    lines += ["", f"FORMS ({len(forms)})"]
    for a in forms[-LIST_LINES:]:
        lines.append(f"  {_fmt_time(a.at)} {(a.meta or {}).get('form') or a.url or 'form'}")
    pages = Counter(a.url or "?" for a in acts if a.kind == "page_view")
    last_visit = {a.url or "?": a.at for a in acts if a.kind == "page_view"}
    lines += ["", f"PAGES VISITED ({sum(pages.values())})"]
    lines += [f"  {_fmt_time(last_visit[url])} {url}" + (f" ×{n}" if n > 1 else "")
              for url, n in pages.most_common(LIST_LINES)]
    other = Counter(a.kind for a in acts if a.kind in ("reply", "meeting", "campaign_response"))
    if other:
        lines.append("  also: " + ", ".join(f"{k} ×{n}" for k, n in sorted(other.items())))

    changes = history(conn, int(m.lead_id))
    lines += ["", f"SCORE HISTORY (last {min(len(changes), HISTORY_LINES)} of {len(changes)}, points as earned)"]
    for ch in changes[-HISTORY_LINES:]:
        lines.append(f"  {_fmt_time(ch.at)} {ch.points:+g} {ch.reason}")
    return "\n".join(untemplated(line) or "" for line in lines)


_TEMPLATE_SYNTAX = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}|\{%|\{\{", re.S)


def untemplated(text: str | None) -> str | None:
    """Template source never reaches a rep: any `{% … %}` / `{{ … }}` left in a text is cut out."""
    if not text or "{" not in text:
        return text
    return " ".join(_TEMPLATE_SYNTAX.sub(" ", text).split())


def received_subjects(conn: Connection, lead_id: int, tpl: dict[int, Any]) -> Any:
    """activity row → the subject line the lead actually received: the rendered subject of the message it is
    about (its outbox row; else the lead's message from the same template), never the template's source."""
    o = mail_outbox.c
    msgs = conn.execute(select(o.id, o.template_id, o.subject).where(o.lead_id == lead_id, o.category != "internal")
                        .order_by(o.id)).all()
    by_id = {r.id: r.subject for r in msgs}
    by_template = {r.template_id: r.subject for r in msgs if r.template_id is not None}

    def subject(a: Any) -> str:
        got = by_id.get(a.outbox_id) if a.outbox_id is not None else None
        got = got or by_template.get(a.template_id)
        if not got and a.template_id in tpl:
            t = tpl[a.template_id]
            static = t.subject and "{{" not in t.subject and "{%" not in t.subject
            got = t.subject if static else t.name  # a templated subject's source is never shown
        return untemplated(got) or "(unknown email)"

    return subject


_ANCHOR = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])(https?://[^\"']+)\1[^>]*>(.*?)</a\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def link_titles(conn: Connection, template_ids: set[int]) -> dict[tuple[int, str], str]:
    """(template id, target URL) → the link's text in the template, so a click reads "Open the ROI
    calculator — https://…/roi" even when the tracking hit carried only the URL."""
    if not template_ids:
        return {}
    out: dict[tuple[int, str], str] = {}
    for tid, html in conn.execute(select(template.c.id, template.c.html).where(template.c.id.in_(template_ids))):
        for _, url, inner in _ANCHOR.findall(html or ""):
            text = " ".join(_TAG.sub(" ", inner).split())
            if text and "{{" not in text:
                out.setdefault((int(tid), url), text[:120])
    return out


def hand_off(conn: Connection, mql_id: int, now: datetime, settings: ScoringSettings) -> None:
    """Store the summary on the entry and queue the Salesforce pushes (+ the optional rep email)."""
    m = conn.execute(select(mql.c.lead_id, mql.c.rep_id, mql.c.score, mql.c.grade, mql.c.why)
                     .where(mql.c.id == mql_id)).one()
    summary = engagement_summary(conn, mql_id, now, settings)
    conn.execute(update(mql).where(mql.c.id == mql_id).values(summary=summary))
    fields: dict[str, Any] = {"mql_status": settings.mql_lead_status, "score": round(float(m.score))}
    if m.grade:
        fields["grade"] = m.grade
    if m.rep_id is not None:
        fields["owner"] = int(m.rep_id)
    sf.enqueue_field_update(conn, int(m.lead_id), fields, now)
    sf.enqueue_task(conn, int(m.lead_id), _task_subject(conn, int(m.lead_id), m.why or {}), summary,
                    int(m.rep_id) if m.rep_id is not None else None, now)
    if settings.notify_rep_email and m.rep_id is not None:
        email_rep(conn, mql_id, int(m.rep_id), summary, now)


def _task_subject(conn: Connection, lead_id: int, why: dict[str, Any]) -> str:
    row = conn.execute(select(lead.c.first_name, lead.c.last_name, lead.c.email, lead.c.company)
                       .where(lead.c.id == lead_id)).one()
    who = _name(row) + (f" ({row.company})" if row.company else "")
    return f"MQL: {who} — {why.get('rule', 'qualified')}"


def email_rep(conn: Connection, mql_id: int, rep_id: int, summary: str, now: datetime) -> int | None:
    """Queue the summary to the rep through the mail outbox (idempotent per entry and rep)."""
    rep = conn.execute(select(user.c.email).where(user.c.id == rep_id)).scalar()
    if not rep:
        return None
    m = conn.execute(select(mql.c.lead_id).where(mql.c.id == mql_id)).scalar_one()
    key = f"mql:{mql_id}:rep:{rep_id}"
    if conn.execute(select(mail_outbox.c.id).where(mail_outbox.c.idempotency_key == key)).first():
        return None
    subject = _task_subject(conn, int(m), conn.execute(select(mql.c.why).where(mql.c.id == mql_id)).scalar() or {})
    res = conn.execute(insert(mail_outbox).values(
        idempotency_key=key, lead_id=m, category="internal", to_email=rep, subject=subject,
        html="<pre>" + _html_escape(summary) + "</pre>", text=summary, headers={}, status="queued",
        next_try_at=now, created_at=now).returning(mail_outbox.c.id))
    return int(res.scalar_one())


def _html_escape(text: str) -> str:
    import html

    return html.escape(text)


def push_status(conn: Connection, lead_id: int, status: str, now: datetime, *, score: float | None = None) -> None:
    fields: dict[str, Any] = {"mql_status": status}
    if score is not None:
        fields["score"] = round(score)
    sf.enqueue_field_update(conn, lead_id, fields, now)


def push_reassign(conn: Connection, mql_id: int, rep_id: int, now: datetime, settings: ScoringSettings) -> None:
    """New owner in Salesforce and a Task for the new rep (with the same summary)."""
    m = conn.execute(select(mql.c.lead_id, mql.c.summary, mql.c.why).where(mql.c.id == mql_id)).one()
    sf.enqueue_field_update(conn, int(m.lead_id), {"owner": rep_id}, now)
    sf.enqueue_task(conn, int(m.lead_id), "Reassigned " + _task_subject(conn, int(m.lead_id), m.why or {}),
                    m.summary or engagement_summary(conn, mql_id, now, settings), rep_id, now)
    if settings.notify_rep_email:
        email_rep(conn, mql_id, rep_id, m.summary or "", now)


def push_note(conn: Connection, mql_id: int, what: str, now: datetime) -> None:
    """A Task on the lead for its rep (the lead's owner when the entry waits in a queue) saying what a rep
    did with the entry, with the hand-off summary."""
    m = conn.execute(select(mql.c.lead_id, mql.c.rep_id, mql.c.summary, mql.c.why).where(mql.c.id == mql_id)).one()
    sf.enqueue_task(conn, int(m.lead_id), f"{what}: " + _task_subject(conn, int(m.lead_id), m.why or {}),
                    m.summary or "", int(m.rep_id) if m.rep_id is not None else None, now)
