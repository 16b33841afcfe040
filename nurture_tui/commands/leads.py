"""`nurture leads import FILE.csv [--map COL=FIELD …] [--dry-run] [--consent CATEGORY …]`, `nurture leads export
FILE.csv`, and the data-protection requests `nurture leads erase EMAIL…` / `nurture leads export-data EMAIL`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from .common import state

NAME = "leads"
app = typer.Typer(help="Import and export leads as CSV; erase or export one person's data.", no_args_is_help=True)


class StderrProgress:
    """A one-line progress indicator on stderr, redrawn at most 10 times a second; silent when stderr
    is not a terminal (scripts, CI). Plain text: the core and the CLI never load rich."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._drawn = False

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()  # clock-ok: redraw throttling, not domain time
        if not force and now - self._last < 0.1:
            return
        self._last = now
        sys.stderr.write(f"\r\x1b[2K{self.label}: {text}")
        sys.stderr.flush()
        self._drawn = True

    def done(self) -> None:
        if self._drawn:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    def bytes_callback(self) -> Callable[[int, int, int], None]:
        def callback(done: int, total: int, rows: int) -> None:
            pct = 100.0 * done / total if total else 100.0
            self.show(f"{pct:5.1f}%  {rows:,} rows", force=done >= total)

        return callback


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV file (UTF-8, with or without BOM; , ; tab or | delimited)."),
    map_: list[str] = typer.Option([], "--map", help="COLUMN=FIELD (repeatable); FIELD may be custom.KEY, "
                                   "or - to skip the column."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and count; write nothing to the database."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of the file."),
    consent: list[str] = typer.Option([], "--consent", help="Record consent to this subscription category for "
                                      "every imported row (repeatable; docs/compliance.md)."),
    legal_basis: str = typer.Option("consent", "--legal-basis", help="Legal basis of that consent."),
) -> None:
    """Import leads from a CSV file: upsert by email; bad rows go to FILE.errors.csv."""
    from ..errors import NurtureError
    from ..leads.importer import ConsentGrant, import_csv, parse_map_options

    mapping = parse_map_options(map_)
    bar = StderrProgress(f"importing {file.name}")
    with state(ctx).workspace() as ws:
        try:
            result = import_csv(ws, file, mapping=mapping, dry_run=dry_run, encoding=encoding,
                                progress=bar.bytes_callback(),
                                consent=ConsentGrant(tuple(consent), legal_basis) if consent else None)
        finally:
            bar.done()
    if result.ignored_columns:
        typer.echo(f"note: ignored columns {', '.join(result.ignored_columns)} "
                   "(use --map COLUMN=FIELD or --map COLUMN=custom.KEY to keep them)", err=True)
    typer.echo(result.summary())
    if result.rows and not (result.imported or result.updated):
        raise NurtureError(f"{file}: no row could be imported; see {result.errors_file}")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV file to write (UTF-8)."),
    segment: str | None = typer.Option(None, "--segment", help="Only the leads in this saved segment."),
) -> None:
    """Export leads to CSV (re-importable: `nurture leads import` of the file reproduces them)."""
    from ..leads.exporter import export_csv

    bar = StderrProgress(f"exporting {file.name}")
    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        where = None
        if segment is not None:
            from ..segments import compiler, service

            rule = service.get_segment(conn, segment).rule
            where = compiler.where_clause(conn, rule, ws.clock.now(),
                                          half_life_days=ws.settings.scoring.half_life_days)
        try:
            count = export_csv(conn, file, where=where, progress=lambda n: bar.show(f"{n:,} rows"))
        finally:
            bar.done()
    typer.echo(f"{file}: exported {count} leads" + (f" in segment {segment!r}" if segment else ""))


@app.command("erase")
def erase_cmd(
    ctx: typer.Context,
    emails: list[str] = typer.Argument(..., help="Addresses of the people to forget."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase people (right to be forgotten): remove their personal data from every table, keep a salted hash
    that blocks re-imports and Salesforce pulls, queue the Salesforce action (docs/compliance.md)."""
    from ..compliance.erasure import check_known, erase
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws:
        with ws.engine.connect() as conn:
            wanted = check_known(conn, emails)  # an unknown address: exit 2, nothing erased
        if not yes and not typer.confirm(f"Erase {len(wanted)} person(s) for good? This cannot be undone"):
            raise typer.Abort()
        with write_tx(ws.engine) as conn:
            done = [erase(conn, email, now=ws.clock.now(), settings=ws.settings, user=ws.user) for email in wanted]
    for outcome in done:
        typer.echo(outcome.line())


@app.command("export-data")
def export_data_cmd(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="The person's address."),
    output: Path = typer.Option(..., "--output", "-o", help="JSON file to write."),
) -> None:
    """Write everything held about one person as JSON (access request; docs/compliance.md)."""
    from ..compliance.export import export_data

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        doc = export_data(conn, email, output, ws.clock.now())
    typer.echo(f"{output}: {doc['email']}: {len(doc['activities'])} activities, {len(doc['messages'])} messages, "
               f"{len(doc['consent'])} consent records")


@app.command("consent")
def consent_cmd(
    ctx: typer.Context,
    emails: list[str] = typer.Argument(..., help="Addresses of existing leads."),
    category: str = typer.Option(..., "--category", help="Subscription category."),
    source: str = typer.Option("operator", "--source", help="Where the consent was given: operator, salesforce, "
                               "form, api or import."),
    legal_basis: str = typer.Option("consent", "--legal-basis", help="consent, contract, legitimate_interest or "
                                    "legal_obligation."),
    note: str | None = typer.Option(None, "--note", help="Proof or context kept with the record."),
) -> None:
    """Record consent given outside nurture (a call, Salesforce, a paper form); docs/compliance.md."""
    from sqlalchemy import select

    from ..compliance.consent import record_consent
    from ..errors import NotFoundError
    from ..store import audit
    from ..store.engine import write_tx
    from ..store.tables import lead

    wanted = [e.strip().lower() for e in emails]
    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        ids = {r.email: r.id for r in conn.execute(select(lead.c.email, lead.c.id).where(lead.c.email.in_(wanted)))}
        missing = [e for e in wanted if e not in ids]
        if missing:
            raise NotFoundError(f"{missing[0]}: no lead with this address")
        now = ws.clock.now()
        res = record_consent(conn, list(ids.values()), category, source=source, now=now, settings=ws.settings,
                             legal_basis=legal_basis, detail=note)
        audit.record(conn, at=now, user=ws.user, action="consent.record", entity="lead",
                     entity_id=",".join(str(i) for i in sorted(ids.values()))[:120],
                     after={"category": category, "source": source, "legal_basis": legal_basis})
    typer.echo(f"{category}: granted {res.granted}, confirmation sent {res.pending}, unchanged {res.unchanged}, "
               f"refused (withdrawn earlier) {res.refused}")


@app.command("unblock")
def unblock_cmd(
    ctx: typer.Context,
    emails: list[str] = typer.Argument(..., help="Erased addresses to accept again."),
) -> None:
    """Accept an erased address again (the person came back): imports, Salesforce pulls and signups stop
    refusing it. The erased data stays erased (docs/compliance.md)."""
    from ..compliance.erased import unblock
    from ..errors import NotFoundError
    from ..store import audit
    from ..store.engine import write_tx

    with state(ctx).workspace() as ws, write_tx(ws.engine) as conn:
        for email in emails:
            if not unblock(conn, email.strip().lower()):
                raise NotFoundError(f"{email.strip().lower()}: not an erased address")
        audit.record(conn, at=ws.clock.now(), user=ws.user, action="leads.unblock", entity="suppression",
                     after={"count": len(emails)})
    typer.echo(f"unblocked {len(emails)} erased address{'es' if len(emails) != 1 else ''}")
