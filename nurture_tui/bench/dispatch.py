"""`nurture bench dispatch --messages N --json`: render N messages, deliver them over SMTP, check the rate limit.

1. Render: both compose stages in batches of 500 for N leads of a fresh SQLite workspace —
   `mail.compose.compose_outbox_rows` (sandboxed Jinja2 subject + ~10-line HTML with a condition, a loop
   and two links, per-batch context loading, derived text part; what the engine's step stores) and
   `mail.compose.finalize` (what the dispatcher adds at send time: click tracking, open pixel,
   compliance footer and headers).
   Reference, same run: plain `jinja2.Environment` renders of the same subject + HTML with a ready
   context dict (no sandbox, no database, no tracking): the floor for any Jinja-based renderer.
2. Deliver: `mail.dispatch.Dispatcher` (claim → suppression re-check → MIME → pooled SMTP → record) to an
   aiosmtpd sink on 127.0.0.1 with `--connections` (≤ 10) connections, rate limit off.
   Reference, same run: one `smtplib` connection sending the same number of pre-built messages in a loop.
3. Rate limit: `--rate-messages` more messages through a dispatcher limited to `--rate` msgs/s with the
   default burst (one second's worth, B = rate). The bucket starts full, so after the first B sends the
   limiter should grant exactly `rate` sends per second: achieved = (M - B) / (last grant - first grant)
   and `rate_limit_error_pct` = |achieved - rate| / rate × 100. `rate_limit_end_to_end_per_s` is the same
   over the whole dispatch call (claims, connection set-up and the final commit included).

Rates are wall-clock. The machine is often shared, so the render figures are also given per CPU second
of this process (`*_cpu_per_s`), which is what the code costs regardless of neighbours.
"""

from __future__ import annotations

import smtplib
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..workspace import Workspace

NAME = "dispatch"

BENCH_SUBJECT = "{{ lead.first_name | default('Hi') }}, the {{ lead.industry | default('B2B') }} nurturing guide"
BENCH_HTML = """<html><body>
<p>Hi {{ lead.first_name | default("there") }},</p>
<p>Teams at {{ account.name | default(lead.company) | default("companies like yours") }} use three plays:</p>
<ul>{% for play in ["score behaviour and fit", "hand off with context", "recycle, don't drop"] %}
<li>{{ loop.index }}. {{ play }}</li>{% endfor %}</ul>
{% if lead.stage == "decision" %}<p>Ready to talk? <a href="https://example.com/demo">Book a demo</a>.</p>
{% else %}<p><a href="https://example.com/guide?utm_source=nurture&amp;utm_medium=email">Read the guide</a>.</p>
{% endif %}
<p>See <a href="https://example.com/pricing">pricing</a>.</p>
<p>{{ owner.name | default(sender.name) }}<br>{{ owner.signature }}</p>
</body></html>"""

_INDUSTRIES = ("Software", "Manufacturing", "Healthcare", "Finance", None)
_STAGES = ("awareness", "consideration", "decision")


def _workspace(path: Path, smtp_url: str):  # type: ignore[no-untyped-def]
    from ..config import load_settings
    from ..workspace import Workspace

    settings = load_settings(None, f"sqlite:///{path}", data_dir=path.parent)
    settings.mail.smtp_url = smtp_url
    return Workspace.open(settings, create=True)


def _seed(ws: Workspace, n: int) -> list[int]:
    from sqlalchemy import insert, select

    from ..mail.templates import upsert_template
    from ..store.engine import write_tx
    from ..store.tables import account, lead, user

    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        conn.execute(insert(user), [{"username": f"rep{i}", "name": f"Rep {i} Owner", "signature": "Sales team",
                                     "created_at": now} for i in range(10)])
        owners = list(conn.execute(select(user.c.id)).scalars())
        conn.execute(insert(account), [{"name": f"Account {i}", "created_at": now} for i in range(100)])
        accounts = list(conn.execute(select(account.c.id)).scalars())
        conn.execute(insert(lead), [{
            "email": f"lead{i}@bench.test", "first_name": f"Lead{i}" if i % 7 else None, "company": f"Co {i % 500}",
            "industry": _INDUSTRIES[i % 5], "stage": _STAGES[i % 3], "account_id": accounts[i % 100] if i % 4 else None,
            "owner_id": owners[i % 10], "created_at": now, "updated_at": now,
        } for i in range(n)])
        upsert_template(conn, name="bench", subject=BENCH_SUBJECT, html=BENCH_HTML, user="bench", now=now)
        return list(conn.execute(select(lead.c.id).order_by(lead.c.id)).scalars())


def _render(ws: Workspace, lead_ids: list[int], tag: str) -> tuple[float, float, int]:
    """Compose and finalise (timed) and insert (not timed) one outbox row per lead; returns (wall s, CPU s,
    rows)."""
    from sqlalchemy import insert

    from ..mail.compose import Composer, SendRequest, compose_outbox_rows, finalize
    from ..store.engine import write_tx
    from ..store.tables import outbox

    now = ws.clock.now()
    comp = Composer(ws.settings.mail, now)
    spent, cpu, total = 0.0, 0.0, 0
    for i in range(0, len(lead_ids), 500):
        sends = [SendRequest(lid, "bench", None, None, None, "s1", f"{tag}:{lid}") for lid in lead_ids[i:i + 500]]
        with write_tx(ws.engine) as conn:
            t0, c0 = time.perf_counter(), time.process_time()
            rows = compose_outbox_rows(conn, sends, ws.settings, now)
            for r in rows:
                finalize(r, comp)
            spent += time.perf_counter() - t0
            cpu += time.process_time() - c0
            if any(r["status"] != "queued" for r in rows):
                raise RuntimeError(f"bench render failed: {rows[0]['last_error']}")
            conn.execute(insert(outbox), rows)
            total += len(rows)
    return spent, cpu, total


def _reference_render(n: int) -> tuple[float, float]:
    from jinja2 import Environment

    env = Environment(autoescape=True)
    subject, html = env.from_string(BENCH_SUBJECT), env.from_string(BENCH_HTML)
    ctx = {"lead": {"first_name": "Ann", "industry": "Software", "company": "Co", "stage": "consideration"},
           "account": {"name": "Account 1"}, "owner": {"name": "Rep", "signature": "Sales"},
           "sender": {"name": "Demo"}}
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        subject.render(ctx)
        html.render(ctx)
    return time.perf_counter() - t0, time.process_time() - c0


def _reference_smtp(url_port: int, n: int) -> float:
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = "bench@example.com", "ref@bench.test", "reference"
    msg.set_content("plain text part\n")
    msg.add_alternative("<p>html part</p>", subtype="html")
    data = msg.as_bytes()
    conn = smtplib.SMTP("127.0.0.1", url_port, timeout=30)
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            conn.sendmail("bench@example.com", ["ref@bench.test"], data)
        return time.perf_counter() - t0
    finally:
        conn.quit()


def command(
    messages: int = typer.Option(20_000, "--messages", min=100, help="Messages to render and deliver."),
    connections: int = typer.Option(8, "--connections", min=1, max=10, help="SMTP connections (≤ 10)."),
    rate: float = typer.Option(200.0, "--rate", min=1.0, help="Rate limit to check (msgs/s)."),
    rate_messages: int = typer.Option(2000, "--rate-messages", min=10, help="Messages sent under --rate."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Render and deliver N messages to a loopback aiosmtpd sink; check a configured rate limit."""
    from ..mail.dispatch import Dispatcher
    from ..mail.sink import SmtpSink
    from .common import record

    with tempfile.TemporaryDirectory(prefix="nurture-bench-dispatch-") as tmp, SmtpSink(keep=1000) as sink:
        ws = _workspace(Path(tmp) / "bench.db", sink.url)
        try:
            ids = _seed(ws, messages + rate_messages)
            render_s, render_cpu, rendered = _render(ws, ids[:messages], "main")
            ref_render_s, ref_render_cpu = _reference_render(messages)

            fast = Dispatcher(ws, max_connections=connections, rate_per_second=1e9, rate_per_hour=1e12)
            try:
                t0 = time.perf_counter()
                res = fast.dispatch_due(messages, max_seconds=None)
                deliver_s = time.perf_counter() - t0
                opened = fast.pool.opened
            finally:
                fast.close()
            if res.sent != messages or not sink.wait_for(messages, 30):
                raise RuntimeError(f"delivery incomplete: {res} / sink {sink.count}")

            ref_smtp_s = _reference_smtp(sink.port, messages)

            _render(ws, ids[messages:], "rate")
            limited = Dispatcher(ws, max_connections=connections, rate_per_second=rate, rate_per_hour=1e12)
            try:
                t0 = time.perf_counter()
                res_rate = limited.dispatch_due(rate_messages, max_seconds=None)
                rate_s = time.perf_counter() - t0
                granted = limited.limiter.granted_rate()
                burst = limited.limiter.second.capacity
            finally:
                limited.close()
            if res_rate.sent != rate_messages:
                raise RuntimeError(f"rate-limited delivery incomplete: {res_rate}")
        finally:
            ws.close()
    achieved = granted or 0.0
    end_to_end = (rate_messages - burst) / rate_s
    result = {
        "scenario": NAME,
        "messages": messages,
        "render_per_s": round(rendered / render_s),
        "render_cpu_per_s": round(rendered / render_cpu),
        "delivered_per_s": round(messages / deliver_s, 1),
        "rate_limit_error_pct": round(abs(achieved - rate) / rate * 100, 2),
        "rate_limit_configured_per_s": rate,
        "rate_limit_achieved_per_s": round(achieved, 1),
        "rate_limit_end_to_end_per_s": round(end_to_end, 1),
        "smtp_connections_opened": opened,
        "reference_render_per_s": round(messages / ref_render_s),
        "reference_render_cpu_per_s": round(messages / ref_render_cpu),
        "render_vs_reference": round(render_s and ref_render_s / render_s * rendered / messages, 3),
        "render_cpu_vs_reference": round(ref_render_cpu / render_cpu * rendered / messages, 3),
        "reference_smtplib_per_s": round(messages / ref_smtp_s, 1),
        "delivery_vs_reference": round((messages / deliver_s) / (messages / ref_smtp_s), 3),
    }
    record(result, as_json=json_)
