"""`nurture bench concurrent-consoles`: several consoles, the daemon and the tracking app on one SQLite
workspace at once (issue 20 item 12).

- the daemon (`nurture daemon --http`, a subprocess) leads: ticks a program whose steps come due all through
  the run, dispatches to a loopback SMTP sink, runs its other jobs;
- `--consoles` console processes (roles admin, operator and reps) write through the console layer, as the
  TUI's bulk "adjust score" does (`console.leads.adjust_score`), one write every `--think` seconds;
- `--clients` tracking clients hammer the tracking app: opens and clicks with valid tokens of real
  messages, and events API posts.

It checks that no "database is locked" (or any other error) reaches a console, an HTTP request or a daemon
job, and that every write landed: each console's acknowledged writes are in the audit log, each accepted
open, click and event is an activity row. The reference, measured in the same run first: one console
writing alone. The ratio is the p99 latency of a console write under load over the p99 alone.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

NAME = "concurrent-consoles"
ROLES = ("admin", "operator", "rep", "rep", "rep")
LOCKED = "database is locked"


# -- one console process ------------------------------------------------------------------------------

def console_main(db_url: str, config: str, name: str, role: str, seconds: float, think: float, seed: int) -> None:
    """A console writing through the console layer until `seconds` pass; prints one JSON line."""
    os.environ["NURTURE_USER__NAME"] = name
    os.environ["NURTURE_USER__ROLE"] = role
    from ..config import load_settings
    from ..console.facade import Console
    from ..workspace import Workspace

    ws = Workspace.open(load_settings(config, db_url))
    console = Console.open(ws)
    rnd = random.Random(seed)
    with ws.engine.connect() as conn:
        from sqlalchemy import select

        from ..store.tables import lead

        ids = list(conn.execute(select(lead.c.id)).scalars())
    latencies: list[float] = []
    errors: list[str] = []
    ok = 0
    deadline = time.monotonic() + seconds  # clock-ok: a benchmark's run time
    while time.monotonic() < deadline:  # clock-ok
        lead_id = rnd.choice(ids)
        t0 = time.perf_counter()
        try:
            console.leads.adjust_score([lead_id], 1, f"bench {name} {ok}")
            ok += 1
        except Exception as exc:  # what would reach the user: counted, never hidden
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        latencies.append(time.perf_counter() - t0)
        time.sleep(think * rnd.uniform(0.5, 1.5))
    console.close()
    ws.close()
    print(json.dumps({"name": name, "ok": ok, "errors": errors, "latencies": latencies}))


# -- the scenario -------------------------------------------------------------------------------------

@dataclass
class HttpTally:
    ok: int = 0
    status_5xx: int = 0
    other: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    events_recorded: int = 0
    hits_recorded: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(db_url: str, config: Path, leads: int, enrollments: int, seconds: float) -> None:
    """Leads, a template, a send→wait program with `enrollments` steps due all through the run, and some
    sent messages for the tracking clients from the start."""
    from sqlalchemy import insert, select, update

    from ..config import load_settings
    from ..engine.seeding import make_leads, publish_definition
    from ..mail.compose import SendRequest, compose_outbox_rows
    from ..mail.templates import upsert_template
    from ..store.engine import write_tx
    from ..store.tables import enrollment, outbox
    from ..workspace import Workspace

    ws = Workspace.open(load_settings(config, db_url), create=True)
    rnd = random.Random(11)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        upsert_template(conn, name="welcome", subject="Hello {{ lead.first_name }}",
                        html='<p>Hi {{ lead.first_name }}, <a href="https://example.com/guide">the guide</a></p>',
                        user="bench", now=now)
        vid = publish_definition(conn, {"name": "bench-drip", "steps": [
            {"id": "s1", "send": {"template": "welcome"}}, {"id": "w1", "wait": {"duration": "30d"}}]}, now)
        ids: list[int] = []
        for start in range(0, leads, 5000):
            ids += make_leads(conn, min(5000, leads - start), now, company="Acme")
        from ..store.tables import sequence_version

        sid = conn.execute(select(sequence_version.c.sequence_id).where(sequence_version.c.id == vid)).scalar_one()
        rows = []
        for lid in rnd.sample(ids, min(enrollments, len(ids))):
            due = now + timedelta(seconds=rnd.uniform(0, seconds))
            rows.append({"lead_id": lid, "sequence_id": sid, "version_id": vid, "node_id": "s1", "status": "active",
                         "due_at": due, "entered_at": now, "node_entered_at": now, "steps": 0, "path": []})
        conn.execute(insert(enrollment), rows)
        sends = [SendRequest(lid, "welcome", None, None, None, "s0", f"seed:{lid}") for lid in ids[:500]]
        conn.execute(insert(outbox), compose_outbox_rows(conn, sends, ws.settings, now))
        conn.execute(update(outbox).where(outbox.c.idempotency_key.like("seed:%"))
                     .values(status="sent", sent_at=now - timedelta(hours=1)))
    ws.close()


def _tracking_client(base: str, secret: str, token: str, targets: list[tuple[int, str]], lead_ids: list[int],
                     deadline: float, tally: HttpTally, seed: int) -> None:
    import httpx

    from ..mail.tokens import TokenSigner

    signer = TokenSigner(secret)
    rnd = random.Random(seed)
    with httpx.Client(base_url=base, timeout=60) as http:
        while time.monotonic() < deadline:  # clock-ok: a benchmark's run time
            kind = rnd.choice(("open", "click", "event"))
            lead_id, ref = rnd.choice(targets)
            exp = datetime.now(UTC) + timedelta(days=30)  # clock-ok: token expiry for a live server
            try:
                if kind == "open":
                    r = http.get(f"/o/{signer.sign('open', lead_id, ref, exp)}.gif", headers={"user-agent": "bench"})
                elif kind == "click":
                    r = http.get(f"/c/{signer.sign('click', lead_id, ref, exp, 'https://example.com/guide')}",
                                 headers={"user-agent": "bench"})
                else:
                    body = {"events": [{"lead_id": rnd.choice(lead_ids), "kind": "page_view",
                                        "url": "https://example.com/docs"}]}
                    r = http.post("/api/events", json=body, headers={"authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                with tally.lock:
                    tally.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            with tally.lock:
                if r.status_code in (200, 302, 202):
                    tally.ok += 1
                    if kind == "event":
                        tally.events_recorded += int(r.json()["recorded"])
                    else:
                        tally.hits_recorded += 1
                elif r.status_code >= 500:
                    tally.status_5xx += 1
                    tally.errors.append(f"{kind}: HTTP {r.status_code}: {r.text[:200]}")
                else:
                    tally.other[r.status_code] = tally.other.get(r.status_code, 0) + 1


#: argv of one console process: (db url, config file, name, role, seconds, think, seed) → command line. The
#: default writes through the console layer; a caller may drive the real TUI instead (the test suite runs
#: the app under Textual's Pilot), as long as the process prints the same JSON line.
ConsoleCommand = Callable[[str, str, str, str, float, float, int], list[str]]


def console_layer_command(db_url: str, config: str, name: str, role: str, seconds: float, think: float,
                          seed: int) -> list[str]:
    return [sys.executable, "-m", "nurture_tui.bench.concurrent_consoles", db_url, config, name, role,
            str(seconds), str(think), str(seed)]


def pilot_console_command(db_url: str, config: str, name: str, role: str, seconds: float, _think: float,
                          _seed: int) -> list[str]:
    """A real TUI, headless under Pilot, pressing the keys of the bulk "adjust score" (a fresh process; the
    core never imports Textual, so the TUI side lives in `tui/bench_console_probe.py`)."""
    return [sys.executable, "-m", "nurture_tui.tui.bench_console_probe", db_url, config, name, role, str(seconds)]


def _run_consoles(db_url: str, config: Path, n: int, seconds: float, think: float, tag: str,
                  env: dict[str, str], command: ConsoleCommand = console_layer_command) -> list[dict[str, Any]]:
    procs = [subprocess.Popen(
        command(db_url, str(config), f"{tag}{i}", ROLES[i % len(ROLES)], seconds, think, i),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=seconds + 240)
        if p.returncode != 0:
            raise RuntimeError(f"console process failed: {stderr.strip().splitlines()[-1:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def run_scenario(seconds: float = 60.0, consoles: int = 5, clients: int = 16, leads: int = 5000,
                 enrollments: int = 20_000, think: float = 0.05, reference_seconds: float = 5.0,
                 workdir: Path | None = None, console_command: ConsoleCommand = console_layer_command,
                 ) -> dict[str, Any]:
    """Run the whole scenario; returns the figures (raises nothing for a failed check: see `problems`)."""
    from sqlalchemy import func, select

    from ..config import load_settings
    from ..configfile import ensure_secrets
    from ..mail.sink import SmtpSink
    from ..store.tables import activity, audit, lead, outbox
    from ..workspace import Workspace
    from .common import percentile

    tmp_ctx = tempfile.TemporaryDirectory(prefix="nurture-bench-consoles-") if workdir is None else None
    root = Path(tmp_ctx.name) if tmp_ctx is not None else workdir
    assert root is not None
    try:
        db_url = f"sqlite:///{root / 'workspace.db'}"
        config = root / "config.toml"
        ensure_secrets(config)
        # every process of the run reads its secrets from this file (not from NURTURE_MAIL__* variables)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_MAIL__")}
        env["NURTURE_CONFIG"] = str(config)
        mail = tomllib.loads(config.read_text())["mail"]
        secret, token = mail["secret_key"], mail["events_api_token"]
        settings = load_settings(config, db_url, mail={**mail})
        _seed(db_url, config, leads, enrollments, seconds)

        reference = _run_consoles(db_url, config, 1, reference_seconds, think, "ref", env, console_command)

        with SmtpSink(keep=100) as sink, Workspace.open(settings) as ws:
            with ws.engine.connect() as conn:
                targets = [(r.lead_id, r.message_ref) for r in conn.execute(
                    select(outbox.c.lead_id, outbox.c.message_ref).where(outbox.c.message_ref.is_not(None)))]
                lead_ids = list(conn.execute(select(lead.c.id)).scalars())
                acts_before = conn.execute(select(func.count()).select_from(activity).where(
                    activity.c.kind.in_(("open", "click", "page_view")))).scalar_one()
            port = _free_port()
            daemon_env = dict(env, NURTURE_MAIL__SMTP_URL=sink.url, NURTURE_MAIL__RATE_PER_SECOND="500")
            daemon = subprocess.Popen(
                [sys.executable, "-m", "nurture_tui", "--db", db_url, "--config", str(config), "daemon",
                 "--http", f"127.0.0.1:{port}"], env=daemon_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
            log_lines: list[str] = []
            reader = threading.Thread(target=lambda: log_lines.extend(iter(daemon.stderr.readline, "")),  # type: ignore[union-attr]
                                      daemon=True)
            reader.start()
            try:
                _wait_http(f"http://127.0.0.1:{port}/healthz", daemon)
                tally = HttpTally()
                deadline = time.monotonic() + seconds  # clock-ok: a benchmark's run time
                threads = [threading.Thread(target=_tracking_client, args=(
                    f"http://127.0.0.1:{port}", secret, token, targets, lead_ids, deadline, tally, i), daemon=True)
                    for i in range(clients)]
                for t in threads:
                    t.start()
                results = _run_consoles(db_url, config, consoles, seconds, think, "console", env,
                                        console_command)
                for t in threads:
                    t.join(timeout=120)
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=60)
                finally:
                    if daemon.poll() is None:
                        daemon.kill()
                reader.join(timeout=10)
            with ws.engine.connect() as conn:
                landed = {r.user: int(r.n) for r in conn.execute(
                    select(audit.c.user, func.count().label("n")).where(audit.c.action == "lead.adjust_score")
                    .group_by(audit.c.user))}
                acts_after = conn.execute(select(func.count()).select_from(activity).where(
                    activity.c.kind.in_(("open", "click", "page_view")))).scalar_one()
                sent = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.status == "sent")
                                    ).scalar_one()
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()

    daemon_errors = [ln.strip()[:300] for ln in log_lines
                     if '"level": "error"' in ln or LOCKED in ln or "Traceback" in ln]
    console_errors = [e for r in results for e in r["errors"]]
    lat = [x * 1000 for r in results for x in r["latencies"]]
    ref_lat = [x * 1000 for r in reference for x in r["latencies"]]
    writes_ok = sum(r["ok"] for r in results)
    lost_writes = sum(max(0, r["ok"] - landed.get(r["name"], 0)) for r in results)
    lost_hits = (tally.hits_recorded + tally.events_recorded) - (acts_after - acts_before)
    problems = []
    if console_errors:
        problems.append(f"{len(console_errors)} console errors, e.g. {console_errors[0]}")
    if tally.status_5xx or tally.errors:
        problems.append(f"{tally.status_5xx} HTTP 5xx / {len(tally.errors)} request errors, e.g. "
                        f"{(tally.errors or [''])[0]}")
    if daemon_errors:
        problems.append(f"{len(daemon_errors)} daemon errors, e.g. {daemon_errors[0]}")
    if lost_writes:
        problems.append(f"{lost_writes} acknowledged console writes are not in the audit log")
    if tally.other or not tally.ok:
        problems.append(f"tracking requests refused: {tally.other} ({tally.ok} accepted)")
    if lost_hits > 0:
        problems.append(f"{lost_hits} accepted tracking requests left no activity row")
    p99 = percentile(lat, 99)
    ref_p99 = percentile(ref_lat, 99)
    return {
        "scenario": NAME,
        "seconds": seconds,
        "consoles": consoles,
        "tracking_clients": clients,
        "console_writes": writes_ok,
        "console_writes_per_s": round(writes_ok / seconds, 1),
        "console_write_p50_ms": round(percentile(lat, 50), 1),
        "console_write_p99_ms": round(p99, 1),
        "console_write_max_ms": round(max(lat, default=0.0), 1),
        "http_requests_ok": tally.ok,
        "http_per_s": round(tally.ok / seconds, 1),
        "http_other_status": tally.other,
        "messages_sent": sent,
        "locked_errors": sum(LOCKED in e for e in console_errors + tally.errors + daemon_errors),
        "console_errors": len(console_errors),
        "http_5xx": tally.status_5xx,
        "daemon_errors": len(daemon_errors),
        "lost_writes": lost_writes,
        "lost_tracking": max(0, lost_hits),
        "reference_write_p50_ms": round(percentile(ref_lat, 50), 1),
        "reference_write_p99_ms": round(ref_p99, 1),
        "p99_vs_reference": round(p99 / ref_p99, 2) if ref_p99 else None,
        "problems": problems,
    }


def _wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout  # clock-ok: start-up timeout
    while time.monotonic() < deadline:  # clock-ok
        if proc.poll() is not None:
            raise RuntimeError("the daemon exited at start")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}: the daemon did not answer")


def command(
    seconds: float = typer.Option(60.0, "--seconds", min=5.0, help="How long everything runs at once."),
    consoles: int = typer.Option(5, "--consoles", min=1, max=20, help="Console processes writing."),
    clients: int = typer.Option(16, "--clients", min=0, max=64, help="Tracking clients (threads)."),
    leads: int = typer.Option(5000, "--leads", min=100, help="Leads in the workspace."),
    enrollments: int = typer.Option(20_000, "--enrollments", min=0, help="Program steps coming due in the run."),
    pilot: bool = typer.Option(False, "--pilot", help="The consoles are real TUIs under Pilot (else console-layer "
                                                      "writers, many more writes a second)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Consoles, the daemon and the tracking app on one SQLite workspace: no lock error reaches anyone and
    every write lands. Exits 1 when a check fails."""
    from .common import record

    result = run_scenario(seconds=seconds, consoles=consoles, clients=clients, leads=leads,
                          enrollments=enrollments,
                          console_command=pilot_console_command if pilot else console_layer_command)
    result["consoles_kind"] = "tui-pilot" if pilot else "console-layer"
    record(result, as_json=json_)
    if result["problems"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    a = sys.argv[1:]
    console_main(a[0], a[1], a[2], a[3], float(a[4]), float(a[5]), int(a[6]))
