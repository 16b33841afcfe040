"""`nurture daemon` (headless scheduler, web app, workers) and `nurture enroll` (manual entry)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import echo_json, state


def daemon(
    ctx: typer.Context,
    http: Annotated[str | None, typer.Option("--http", help="Serve the tracking web app on HOST:PORT.")] = None,
    worker: Annotated[bool, typer.Option("--worker", help="Claim-only worker (PostgreSQL scale-out).")] = False,
) -> None:
    """Run the scheduler headless (JSON-lines logs on stderr; SIGTERM finishes the batch and exits)."""
    from ..engine.daemon import run_daemon
    from ..logs import configure_logging
    from ..wiring import build_scheduler

    ws = state(ctx).workspace()
    configure_logging()
    raise typer.Exit(run_daemon(ws, build_scheduler(ws, worker=worker), http=http))


def enroll(
    ctx: typer.Context,
    sequence: Annotated[str, typer.Argument(help="Sequence name.")],
    lead: Annotated[str | None, typer.Option("--lead", help="Lead email or id.")] = None,
    segment: Annotated[str | None, typer.Option("--segment", help="Enrol every member of a saved segment.")] = None,
) -> None:
    """Enrol one lead (--lead) or a whole segment (--segment) in a sequence now."""
    from sqlalchemy import or_, select

    from ..engine.enroll import enroll_lead, enroll_segment
    from ..errors import NotFoundError, NurtureError
    from ..store.engine import bulk_write_tx, write_tx
    from ..store.tables import lead as lead_t

    if (lead is None) == (segment is None):
        raise NurtureError("enroll: give exactly one of --lead or --segment")
    ws = state(ctx).workspace()
    now = ws.clock.now()
    if segment is not None:
        with bulk_write_tx(ws.engine) as (conn, commit):
            count = enroll_segment(conn, segment, sequence, now, commit=commit)
        echo_json({"sequence": sequence, "segment": segment, "enrolled": count})
        return
    with write_tx(ws.engine) as conn:
        assert lead is not None
        cond = lead_t.c.email == lead.strip().lower()
        if lead.isdigit():
            cond = or_(cond, lead_t.c.id == int(lead))
        lead_id = conn.execute(select(lead_t.c.id).where(cond)).scalar()
        if lead_id is None:
            raise NotFoundError(f"--lead {lead!r}: no such lead")
        eid = enroll_lead(conn, int(lead_id), sequence, now)
    echo_json({"sequence": sequence, "lead_id": lead_id, "enrollment_id": eid,
               "enrolled": eid is not None})


COMMANDS = [("daemon", daemon), ("enroll", enroll)]
