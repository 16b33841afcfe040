"""`nurture salesforce …`: the loopback emulator, sync status and sync errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from .common import echo_json, state

NAME = "salesforce"
app = typer.Typer(help="Salesforce: loopback emulator, sync status and errors.", no_args_is_help=True)


@app.command("emulator")
def emulator_cmd(
    ctx: typer.Context,
    port: int = typer.Option(8443, "--port", help="Port on 127.0.0.1 (0 = any free port)."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the demo org."),
    leads: int = typer.Option(500, "--leads", help="Leads in the demo org (0 = an empty org)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback by default)."),
    directory: Path | None = typer.Option(None, "--dir", help="Where to write the CA, JWT key and config snippet "
                                          "(default: <data dir>/sf-emulator)."),
) -> None:
    """Serve an emulated Salesforce org over HTTPS until Ctrl-C (REST, Bulk 2.0, login flows, faults)."""
    import time

    from ..errors import NurtureError
    from ..salesforce.emulator import Emulator, seed_org

    settings = state(ctx).settings()
    where = directory or settings.data_dir / "sf-emulator"
    try:
        emu = Emulator(host=host, port=port, directory=where)
        summary = seed_org(emu.org, leads=leads, seed=seed) if leads else None
        emu.start()
    except OSError as exc:
        raise NurtureError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from exc
    cfg = emu.client_settings("jwt")
    snippet = "\n".join([
        "[salesforce]", "enabled = true", 'auth = "jwt"', f'login_url = "{emu.url}"', f'ca_file = "{cfg["ca_file"]}"',
        f'username = "{cfg["username"]}"', f'consumer_key = "{cfg["consumer_key"]}"',
        f'private_key_file = "{cfg["private_key_file"]}"', ""])
    (where / "nurture-salesforce.toml").write_text(snippet)
    creds = emu.credentials()
    (where / "credentials.json").write_text(json.dumps(creds, indent=2) + "\n")
    typer.echo(f"Salesforce emulator on {emu.url}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo("  warning: not on loopback — the /_emulator/ admin endpoints need no credentials", err=True)
    if summary:
        typer.echo(f"  demo org: {summary.leads} leads, {summary.contacts} contacts, {summary.accounts} accounts, "
                   f"{summary.campaigns} campaigns, {summary.members} members, {summary.opportunities} opportunities")
    typer.echo(f"  config for `nurture sync` (also in {where / 'nurture-salesforce.toml'}):\n")
    typer.echo(snippet)
    typer.echo(_credentials_text(creds, where / "credentials.json"))
    typer.echo("  admin: POST /_emulator/faults {\"kind\": \"unavailable\", \"times\": 2} · GET /_emulator/stats\n"
               "Ctrl-C stops it.")
    try:
        while True:
            time.sleep(3600)  # clock-ok: a foreground server idling
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()


def _credentials_text(c: dict[str, str], path: Path) -> str:
    """What every login flow needs, for users' own scripts (simple-salesforce, jsforce, curl)."""
    token = c["password"] + c["security_token"]
    return "\n".join([
        f"  credentials for your own scripts (also in {path}):",
        f"    instance / login URL  {c['instance_url']}   (API versions: any vNN.0)",
        f"    username              {c['username']}",
        f"    password              {c['password']}",
        f"    security token        {c['security_token']}   (SOAP login and the OAuth password flow take "
        f"password+token: {token}; the OAuth flow also takes the password alone)",
        f"    consumer key          {c['consumer_key']}",
        f"    consumer secret       {c['consumer_secret']}",
        f"    JWT private key       {c['jwt_private_key_file']}   (JWT bearer: iss = consumer key, sub = username)",
        f"    session id            {c['session_id']}   (direct use: `Authorization: Bearer …`; Bulk API 1.0: "
        "`X-SFDC-Session: …`)",
        f"    CA certificate        {c['ca_file']}   (Python: requests session.verify + trust_env = False; "
        "Node: NODE_EXTRA_CA_CERTS)",
        "  login flows:",
        f"    SOAP login()          POST {c['soap_login_url']}   <username>, <password>password+token</password>",
        f"    OAuth password        POST {c['token_url']}   grant_type=password, client_id, client_secret, "
        "username, password",
        f"    OAuth JWT bearer      POST {c['token_url']}   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer, "
        "assertion (RS256)",
        f"    client credentials    POST {c['token_url']}   grant_type=client_credentials, HTTP Basic consumer "
        "key:secret",
        f"    jsforce               new jsforce.Connection({{loginUrl: '{c['login_url']}'}}).login(username, "
        "password+token)",
        f"    simple-salesforce     Salesforce(instance_url='{c['instance_url']}', session_id=<session id>, "
        "session=<requests.Session trusting the CA>)",
        ""])


@app.command("status")
def status_cmd(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Watermarks per object, the last two-way sync, pending pushes and open sync errors."""
    from sqlalchemy import func, select

    from ..salesforce.sync import last_full_sync
    from ..store.tables import lead, sf_lead_sync, sf_outbox, sync_error, sync_state

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        states = [dict(r._mapping) for r in conn.execute(select(sync_state).order_by(sync_state.c.sobject))
                  if not r.sobject.startswith("_")]
        ls = sf_lead_sync.c
        dirty, oldest = conn.execute(select(func.count(), func.min(ls.dirty_since)).where(
            ls.dirty_since.is_not(None))).one()
        unsynced = conn.execute(select(func.count()).select_from(lead).where(
            lead.c.sf_id.is_(None), lead.c.status.is_distinct_from("Merged"),
            lead.c.status.is_distinct_from("Deleted"))).scalar() or 0
        outbox: dict[str, int] = {str(k): int(v) for k, v in conn.execute(
            select(sf_outbox.c.status, func.count()).group_by(sf_outbox.c.status)).all()}
        errors = conn.execute(select(func.count()).select_from(sync_error)
                              .where(sync_error.c.resolved_at.is_(None))).scalar() or 0
        last = last_full_sync(conn)
    last_json = None if last is None else {
        "started_at": last["started_at"], "ok": last.get("ok"), "error": last.get("error"),
        "full": last.get("full"), "api_calls": last.get("api_calls"), "ended_at": last.get("ended_at")}
    if as_json:
        echo_json({"objects": states, "last_full_sync": last_json, "outbox": outbox, "open_errors": errors,
                   "changed_leads": int(dirty or 0),
                   "oldest_change_age_s": round(time.time() - float(oldest), 1) if oldest else None,  # clock-ok
                   "leads_without_salesforce_id": int(unsynced)})
        return
    for s in states:
        typer.echo(f"{s['sobject']:<24} watermark {s['watermark'] or '-'}  last run {s['last_run_at'] or '-'}  "
                   f"{s['status']}")
    if last is None:
        typer.echo("last two-way sync: never")
    else:
        how = "ok" if last.get("ok") else f"failed: {last.get('error')}"
        typer.echo(f"last two-way sync: {last['started_at']:%Y-%m-%d %H:%M:%S} UTC"
                   f"{' (--full)' if last.get('full') else ''}, {how}")
    typer.echo(f"outbox: {', '.join(f'{k} {v}' for k, v in sorted(outbox.items())) or 'empty'}")
    age = f", oldest {time.time() - float(oldest):.0f} s ago" if oldest else ""  # clock-ok: trigger-stamped
    typer.echo(f"leads with changes to push: {int(dirty or 0)}{age}; not in Salesforce yet: {unsynced}")
    typer.echo(f"open sync errors: {errors}")


@app.command("errors")
def errors_cmd(ctx: typer.Context, limit: int = typer.Option(50, "--limit"),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Open sync errors with the Salesforce code and message (retry them with `nurture sync --retry-errors`)."""
    from sqlalchemy import select

    from ..store.tables import sync_error

    with state(ctx).workspace() as ws, ws.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(sync_error).where(sync_error.c.resolved_at.is_(None)).order_by(sync_error.c.id).limit(limit))]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        typer.echo(f"#{r['id']} {r['direction']} {r['sobject']} {r['record_id'] or '-'} {r['code']}: "
                   f"{r['message']} (attempts {r['attempts']})")
    if not rows:
        typer.echo("no open sync errors")
