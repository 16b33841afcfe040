"""`nurture bench tracking --json` (`--db postgresql://…`): the tracking app under a burst of opens and clicks.

1. A fresh workspace (a temporary SQLite file, or a fresh schema in the given PostgreSQL database, dropped
   afterwards) with `--leads` leads, one sent message each and the default scoring rules.
2. `nurture daemon --http 127.0.0.1:PORT` in a subprocess: the scheduler (engine) and the tracking app, as
   deployed.
3. This process is the load generator: `--clients` (64) keep-alive HTTP/1.1 connections on loopback, each
   sending requests back to back for `--seconds` (≤ 30): 60 % open pixels, 35 % clicks (valid tokens of
   random messages), 5 % page views (the landing site's beacon `GET /v/<visit token>.gif?u=<page>`).
4. The daemon is stopped (SIGTERM) and the stored activity rows are counted: `recorded` must equal `sent`
   (requests answered 2xx/3xx).

Reference, same run and same load: a bare Starlette app (`reference_app`, under the same uvicorn in its
own process) that verifies the same token and inserts the same `activity` row with `sqlite3` into a copy
of the workspace, one `BEGIN IMMEDIATE` transaction per request — the per-request design, minus nurture.

`ratio` = requests_per_s / reference_requests_per_s. Targets: ≥ 1,500 requests/s, p99 ≤ 50 ms, 0 errors,
recorded = sent, ratio ≥ 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ..workspace import Workspace

NAME = "tracking"
SECRET = "bench-tracking-secret-key-0123456789abcdef"
API_TOKEN = "bench-tracking-events-token-0123456789abcdef"
UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari"
TRACKED = ("open", "click", "page_view")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env.update({"NURTURE_CONFIG": str(data_dir / "absent.toml"), "NURTURE_DATA_DIR": str(data_dir),
                "NURTURE_MAIL__SECRET_KEY": SECRET, "NURTURE_MAIL__EVENTS_API_TOKEN": API_TOKEN})
    return env


def _workspace(url: str, data_dir: Path) -> Workspace:
    from ..config import load_settings
    from ..workspace import Workspace

    return Workspace.open(load_settings(None, url, data_dir=data_dir), create=True)


def seed(ws: Workspace, n: int) -> list[tuple[int, str]]:
    """n leads with one message each, sent an hour ago; returns (lead id, message_ref)."""
    from sqlalchemy import insert, select

    from ..store.engine import write_tx
    from ..store.tables import lead, outbox

    now = datetime.now(UTC)  # clock-ok: the daemon runs on the system clock
    with write_tx(ws.engine) as conn:
        conn.execute(insert(lead), [{"email": f"lead{i}@bench.test", "created_at": now, "updated_at": now}
                                    for i in range(n)])
        ids = list(conn.execute(select(lead.c.id).order_by(lead.c.id)).scalars())
        conn.execute(insert(outbox), [{
            "idempotency_key": f"bench:{lid}", "lead_id": lid, "to_email": f"lead{i}@bench.test", "status": "sent",
            "message_ref": f"bench-{lid}", "sent_at": now - timedelta(hours=1), "created_at": now, "headers": {},
        } for i, lid in enumerate(ids)])
    return [(lid, f"bench-{lid}") for lid in ids]


def _requests(messages: list[tuple[int, str]], count: int, seed_: int) -> list[bytes]:
    """`count` raw HTTP/1.1 requests in the 60/35/5 mix."""
    from ..mail.tokens import TokenSigner

    signer = TokenSigner(SECRET)
    expires = datetime.now(UTC) + timedelta(days=30)  # clock-ok: token expiry for the run
    rnd = random.Random(seed_)
    out = []
    for _ in range(count):
        lid, ref = rnd.choice(messages)
        roll = rnd.random()
        if roll < 0.60:
            path = f"/o/{signer.sign('open', lid, ref, expires)}.gif"
            out.append(f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {UA}\r\n\r\n".encode())
        elif roll < 0.95:
            url = "https://example.com/pricing" if rnd.random() < 0.3 else f"https://example.com/guide?l={lid}"
            path = f"/c/{signer.sign('click', lid, ref, expires, url)}"
            out.append(f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {UA}\r\n\r\n".encode())
        else:  # the landing site's page-view beacon, with the visit token the click brought along
            path = f"/v/{signer.sign('visit', lid, ref, expires)}.gif?u=https%3A%2F%2Fexample.com%2Fpricing"
            out.append(f"GET {path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: {UA}\r\n\r\n".encode())
    return out


_KIND_OF = {b"GET /o": "open", b"GET /c": "click", b"GET /v": "page_view"}


async def _client(port: int, reqs: list[bytes], stop_at: float, lat: list[float], codes: dict[int, int],
                  by_kind: dict[str, list[float]]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.perf_counter() < stop_at:
            req = reqs[i % len(reqs)]
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            took = time.perf_counter() - t0
            lat.append(took)
            by_kind[_KIND_OF.get(req[:6], "other")].append(took)
            codes[status] = codes.get(status, 0) + 1
    except (OSError, asyncio.IncompleteReadError):
        codes[-1] = codes.get(-1, 0) + 1
    finally:
        writer.close()


def load(port: int, reqs: list[bytes], clients: int, seconds: float) -> dict[str, Any]:
    """Run the load; returns requests/s, latency percentiles, status counts."""
    from .common import percentile

    lat: list[float] = []
    codes: dict[int, int] = {}
    by_kind: dict[str, list[float]] = {"open": [], "click": [], "page_view": [], "other": []}

    async def main() -> float:
        stop_at = time.perf_counter() + seconds
        share = len(reqs) // clients
        t0 = time.perf_counter()
        await asyncio.gather(*(_client(port, reqs[k * share:(k + 1) * share], stop_at, lat, codes, by_kind)
                               for k in range(clients)))
        return time.perf_counter() - t0

    cpu0 = time.process_time()
    wall = asyncio.run(main())
    cpu = time.process_time() - cpu0
    ok = sum(n for code, n in codes.items() if 200 <= code < 400)
    ms = [x * 1000 for x in lat]
    return {"requests_per_s": round(len(lat) / wall, 1), "p50_ms": round(percentile(ms, 50), 2),
            "p99_ms": round(percentile(ms, 99), 2), "errors": sum(codes.values()) - ok, "sent": ok,
            "p99_ms_by_kind": {k: round(percentile([x * 1000 for x in v], 99), 2) for k, v in by_kind.items() if v},
            "codes": {str(k): v for k, v in sorted(codes.items())}, "load_generator_cpu": round(cpu / wall, 2)}


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout  # clock-ok: start-up bound
    while time.monotonic() < deadline:  # clock-ok
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
                if sock.recv(100).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not come up")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _count(url: str) -> tuple[int, int]:
    """Tracked activity rows stored, and rows whose effects were left unapplied (0 after a clean stop)."""
    from sqlalchemy import func, select

    from ..store.engine import make_engine
    from ..store.tables import activity, activity_pending

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(activity).where(activity.c.kind.in_(TRACKED)))
            pending = conn.execute(select(func.count()).select_from(activity_pending))
            return int(stored.scalar_one()), int(pending.scalar_one())
    finally:
        engine.dispose()


def _writer_stats(log: Path) -> dict[str, Any]:
    """The daemon's `tracking writer closed` log line (hits, batches, mean batch)."""
    for line in log.read_text(errors="replace").splitlines():
        if '"tracking writer closed"' in line:
            return dict(json.loads(line))
    return {}


# -- the reference: a bare Starlette app, sqlite3, one transaction per request ------------------------

def reference_app(db_path: str) -> Any:
    import threading
    from sqlite3 import connect

    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    from ..mail.tokens import TokenSigner

    signer = TokenSigner(SECRET)
    local = threading.local()
    sql = ("INSERT INTO activity (lead_id, kind, at, outbox_id, url, bot, meta) "
           "VALUES (?, ?, ?, (SELECT id FROM outbox WHERE message_ref = ?), ?, 0, ?)")

    def insert(lead_id: int, kind: str, ref: str | None, url: str | None, meta: str) -> None:
        db = getattr(local, "db", None)
        if db is None:
            db = local.db = connect(db_path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        db.execute("BEGIN IMMEDIATE")
        db.execute(sql, (lead_id, kind, datetime.now(UTC).isoformat(sep=" "), ref, url, meta))  # clock-ok
        db.execute("COMMIT")

    async def hit(request: Request) -> Response:
        kind = {"o": "open", "c": "click", "v": "visit"}[request.url.path[1]]
        try:
            data = signer.verify(request.path_params["token"].removesuffix(".gif"), datetime.now(UTC), kind=kind)
        except ValueError:
            return PlainTextResponse("invalid link", status_code=400)
        meta = json.dumps({"ua": request.headers.get("user-agent", "")[:300], "ip": "127.0.0.1"})
        if kind == "visit":
            await run_in_threadpool(insert, data.lead_id, "page_view", None, request.query_params["u"], meta)
        else:
            await run_in_threadpool(insert, data.lead_id, kind, data.message_ref, data.url or None, meta)
        if kind == "click":
            return RedirectResponse(data.url, status_code=302)
        return Response(b"GIF89a", media_type="image/gif")

    return Starlette(routes=[Route("/o/{token}", hit), Route("/c/{token}", hit), Route("/v/{token}", hit),
                             Route("/healthz", lambda r: PlainTextResponse("ok"))])


def serve_reference(db_path: str, port: int) -> None:
    import uvicorn

    uvicorn.run(reference_app(db_path), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="off", server_header=False)


# -- the command ---------------------------------------------------------------------------------------

def _pg_schema(url: str) -> tuple[str, str]:
    from sqlalchemy import text

    from ..store.engine import make_engine

    schema = f"bench_tracking_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    sep = "&" if "?" in url else "?"
    return schema, f"{url}{sep}options=-csearch_path%3D{schema}"


def _drop_schema(url: str, schema: str) -> None:
    from sqlalchemy import text

    from ..store.engine import make_engine

    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def command(
    ctx: typer.Context,
    clients: int = typer.Option(64, "--clients", min=1, max=256, help="Concurrent keep-alive connections."),
    seconds: float = typer.Option(15.0, "--seconds", min=1.0, max=30.0, help="Load duration (≤ 30 s)."),
    leads: int = typer.Option(2000, "--leads", min=10, help="Leads (one sent message each)."),
    effects: str = typer.Option("auto", "--effects", help="mail.tracking_effects for the server: auto (deferred "
                                "on PostgreSQL only), deferred (effects applied just after the answered "
                                "transaction) or inline (in it)."),
    ack: str = typer.Option("journal", "--ack", help="mail.tracking_ack for the server: journal (answered once "
                            "the hit is in the fsync'd journal, committed just after) or commit (answered "
                            "once committed)."),
    writer: str = typer.Option("auto", "--writer", help="mail.tracking_writer for the server: auto (a writer "
                               "process under the daemon), process or thread (in the web process)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Opens, clicks and page views from 64 keep-alive clients against the tracking app (engine running)."""
    from ..commands.common import state
    from .common import record

    # `nurture --db postgresql://… bench tracking` (the CLI hoists --db): a fresh schema there, dropped
    # after; otherwise a temporary SQLite file
    if effects not in ("auto", "inline", "deferred"):
        raise typer.BadParameter("auto, inline or deferred", param_hint="--effects")
    if ack not in ("journal", "commit"):
        raise typer.BadParameter("journal or commit", param_hint="--ack")
    if writer not in ("auto", "process", "thread"):
        raise typer.BadParameter("auto, process or thread", param_hint="--writer")
    given = state(ctx).db_url
    db = given if given and given.startswith("postgresql") else None
    nurture = str(Path(sys.executable).parent / "nurture")
    with tempfile.TemporaryDirectory(prefix="nurture-bench-tracking-") as tmp:
        data_dir = Path(tmp)
        schema = None
        if db:
            schema, url = _pg_schema(db)
        else:
            url = f"sqlite:///{data_dir / 'bench.db'}"
        try:
            ws = _workspace(url, data_dir)
            try:
                messages = seed(ws, leads)
            finally:
                ws.close()
            reqs = _requests(messages, 200_000, 21)
            # the reference's own copy of the same workspace (SQLite, as the issue asks)
            ref_db = data_dir / "reference.db"
            ref_ws = _workspace(f"sqlite:///{ref_db}", data_dir)
            try:
                seed(ref_ws, leads)
            finally:
                ref_ws.close()

            port = _free_port()
            proc = subprocess.Popen([nurture, "--db", url, "daemon", "--http", f"127.0.0.1:{port}"],
                                    env={**_env(data_dir), "NURTURE_MAIL__TRACKING_EFFECTS": effects,
                                         "NURTURE_MAIL__TRACKING_ACK": ack, "NURTURE_MAIL__TRACKING_WRITER": writer},
                                    stdout=subprocess.DEVNULL,
                                    stderr=open(data_dir / "daemon.log", "wb"))  # noqa: SIM115
            try:
                _wait_ready(port, proc)
                load_avg = os.getloadavg()[0]  # the machine is shared: how busy it was going in
                ours = load(port, reqs, clients, seconds)
            finally:
                _stop(proc)
            recorded, pending = _count(url)
            stats = _writer_stats(data_dir / "daemon.log")

            ref_port = _free_port()
            ref = subprocess.Popen([sys.executable, "-c", "import sys; from nurture_tui.bench.tracking import "
                                    f"serve_reference as s; s(sys.argv[1], {ref_port})", str(ref_db)],
                                   env=_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                _wait_ready(ref_port, ref)
                theirs = load(ref_port, reqs, clients, seconds)
            finally:
                _stop(ref)
        finally:
            if schema and db:
                _drop_schema(db, schema)
    result = {
        "scenario": NAME,
        "db": "postgresql" if db else "sqlite",
        "ack": ack,
        "effects": effects if effects != "auto" else ("deferred" if db else "inline"),
        "writer": "process" if writer == "auto" and ack == "journal" else writer if ack == "journal" else "thread",
        "clients": clients,
        "seconds": seconds,
        "load_avg_1m_before": round(load_avg, 2),
        "requests_per_s": ours["requests_per_s"],
        "p50_ms": ours["p50_ms"],
        "p99_ms": ours["p99_ms"],
        "errors": ours["errors"],
        "sent": ours["sent"],
        "recorded": recorded,
        "effects_pending_after_stop": pending,
        "p99_ms_by_kind": ours["p99_ms_by_kind"],
        "status_codes": ours["codes"],
        "load_generator_cpu": ours["load_generator_cpu"],
        "writer_batches": stats.get("batches"),
        "writer_mean_batch": stats.get("mean_batch"),
        "journal_flushes": stats.get("journal_flushes"),
        "answers_paced": stats.get("answers_paced"),
        "commit_lag_p99_ms": stats.get("lag_p99_ms"),
        "commit_lag_max_ms": stats.get("lag_max_ms"),
        "reference_requests_per_s": theirs["requests_per_s"],
        "reference_p50_ms": theirs["p50_ms"],
        "reference_p99_ms": theirs["p99_ms"],
        "reference_errors": theirs["errors"],
        "reference_load_generator_cpu": theirs["load_generator_cpu"],
        "reference_p99_ms_by_kind": theirs["p99_ms_by_kind"],
        "ratio": round(ours["requests_per_s"] / theirs["requests_per_s"], 2) if theirs["requests_per_s"] else None,
    }
    record(result, as_json=json_)
