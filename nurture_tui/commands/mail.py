"""`nurture mail …`: dispatch the outbox, run a local SMTP sink, inspect the outbox, manage suppressions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import echo_json, state

NAME = "mail"
app = typer.Typer(help="Outbox dispatch over SMTP, the local sink, suppressions.", no_args_is_help=True)


@app.command("dispatch")
def dispatch_cmd(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass over due messages, then exit.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Messages per pass.")] = 1000,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between passes.")] = 2.0,
) -> None:
    """Send due outbox messages through the configured relay (mail.smtp_url); Ctrl-C stops."""
    import time

    from ..config import require_real_secrets
    from ..mail.dispatch import close_dispatcher, dispatch_due

    with state(ctx).workspace() as ws:
        # the tracking and unsubscribe links it signs go out to the world: not with a public secret
        require_real_secrets(ws.settings, "mail dispatch")
        try:
            while True:
                res = dispatch_due(ws, limit)
                if once or res.claimed:
                    echo_json({"claimed": res.claimed, "sent": res.sent, "retried": res.retried,
                               "bounced": res.bounced, "failed": res.failed, "suppressed": res.suppressed,
                               "deferred": res.deferred})
                if once:
                    return
                if res.claimed < limit:
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass
        finally:
            close_dispatcher(ws)


@app.command("sink")
def sink_cmd(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8025,
    maildir: Annotated[Path | None, typer.Option("--maildir", help="Also store messages in this Maildir.")] = None,
) -> None:
    """Run a local SMTP server that accepts and keeps every message (nothing leaves the machine)."""
    import time

    from ..mail.sink import SmtpSink

    with SmtpSink(host, port, maildir=maildir) as sink:
        typer.echo(f"SMTP sink listening on {sink.url}" + (f", Maildir {maildir}" if maildir else "")
                   + "; Ctrl-C stops", err=True)
        seen = 0
        try:
            while True:
                time.sleep(0.5)
                msgs = sink.messages
                for m in msgs[seen:]:
                    echo_json({"from": m.mail_from, "to": m.rcpt_tos, "subject": m.message()["Subject"]})
                seen = len(msgs)
        except KeyboardInterrupt:
            pass


@app.command("outbox")
def outbox_cmd(ctx: typer.Context) -> None:
    """Outbox messages by status (and the next retry time of queued ones)."""
    from sqlalchemy import func, select

    from ..store.tables import outbox

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count(), func.min(outbox.c.next_try_at))
                            .group_by(outbox.c.status).order_by(outbox.c.status)).all()
    for status, count, next_try in rows:
        echo_json({"status": status, "count": count, "next_try_at": next_try if status == "queued" else None})


@app.command("suppress")
def suppress_cmd(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="Address to suppress.")],
    reason: Annotated[str, typer.Option("--reason", help="manual, complaint or bounce.")] = "manual",
    lift: Annotated[bool, typer.Option("--lift", help="Remove the address's suppressions instead.")] = False,
) -> None:
    """Suppress an address (or lift its suppressions with --lift)."""
    from sqlalchemy import select

    from ..errors import ValidationError
    from ..mail import suppression
    from ..store.engine import write_tx
    from ..store.tables import lead

    if reason not in suppression.HARD_REASONS:
        raise ValidationError("--reason", f"one of {', '.join(suppression.HARD_REASONS)}")
    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        if lift:
            echo_json({"email": email, "lifted": suppression.lift(conn, email)})
            return
        lead_id = conn.execute(select(lead.c.id).where(lead.c.email == email.strip().lower())).scalar()
        suppression.suppress(conn, email=email, lead_id=lead_id, reason=reason, detail=f"by {ws.user}",
                             now=ws.clock.now())
    echo_json({"email": email.strip().lower(), "suppressed": reason, "lead_id": lead_id})


@app.command("unsubscribes")
def unsubscribes_cmd(
    ctx: typer.Context,
    maildir: Annotated[Path, typer.Argument(help="Maildir receiving mail for mail.unsubscribe_mailto.")],
) -> None:
    """Apply unsubscribe requests that arrived by email (the mailto: of List-Unsubscribe)."""
    from ..errors import ValidationError
    from ..mail.inbound import process_maildir

    if not (maildir / "new").is_dir():
        raise ValidationError(str(maildir), "not a Maildir (no new/ directory)")
    with state(ctx).workspace() as ws:
        res = process_maildir(ws, maildir)
    echo_json({"processed": res.processed, "unsubscribed": res.unsubscribed, "invalid": res.invalid,
               "reports": res.reports})


@app.command("bounces")
def bounces_cmd(
    ctx: typer.Context,
    maildir: Annotated[Path | None, typer.Argument(help="Maildir receiving bounces and complaints.")] = None,
    imap: Annotated[str | None, typer.Option("--imap", help="imap[s]://user:pass@host/FOLDER "
                                             "(default mail.bounce_imap_url).")] = None,
) -> None:
    """Apply the DSN bounces and ARF complaints waiting in a Maildir or an IMAP folder (idempotent)."""
    from ..errors import NurtureError
    from ..mail.bouncebox import process_imap, process_maildir

    with state(ctx).workspace() as ws:
        url = imap or (None if maildir else ws.settings.mail.bounce_imap_url)
        if maildir is None and not url:
            raise NurtureError("give a MAILDIR, --imap URL, or set mail.bounce_imap_url")
        res = process_imap(ws, url) if url else process_maildir(ws, maildir or Path())
    echo_json(res.as_dict())
    for line in res.feedback.errors:
        typer.echo(f"warning: {line}", err=True)
    if res.error:
        raise NurtureError(res.error)


@app.command("check-dns")
def check_dns_cmd(ctx: typer.Context) -> None:
    """Check the From domain's SPF, DKIM and DMARC records (mail.dns_records, else live DNS)."""
    from ..mail.dkimsign import signer_for
    from ..mail.dnscheck import check_alignment, resolver_for

    with state(ctx).workspace() as ws:
        mail = ws.settings.mail
        findings = check_alignment(mail, signer_for(mail), resolver_for(mail))
    for f in findings:
        typer.echo(f"{f.level:<8} {f.check:<6} {f.text}")
    if any(f.level == "warning" for f in findings):
        raise typer.Exit(1)
