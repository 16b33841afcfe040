"""`nurture bench sync`: a full pull of an emulated org and a push of N changed leads, through the real sync
(unchanged simple-salesforce over HTTPS to the loopback emulator), against a reference in the same run: the
same emulator endpoints driven with plain `requests` (no simple-salesforce, no store, no sync layer)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import typer

NAME = "sync"


def _session(emu: Any) -> Any:
    import requests

    s = requests.Session()
    s.trust_env = False
    s.verify = str(emu.client_settings()["ca_file"])
    return s


def _reference_pull(emu: Any, token: str, soql: str) -> int:
    """Bulk 2.0 query with plain requests: create, poll, page through CSV results, parse the rows."""
    s = _session(emu)
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = f"{emu.url}/services/data/v59.0/jobs/query"
    job = s.post(base, headers=h, data=json.dumps({"operation": "query", "query": soql})).json()
    s.get(f"{base}/{job['id']}", headers=h).raise_for_status()
    rows, locator = 0, ""
    while True:
        params: dict[str, Any] = {"maxRecords": 50000, **({"locator": locator} if locator else {})}
        r = s.get(f"{base}/{job['id']}/results", headers=h, params=params)
        rows += sum(1 for _ in csv.reader(io.StringIO(r.text))) - 1
        locator = r.headers.get("Sforce-Locator", "null")
        if locator == "null":
            return rows


def _reference_push(emu: Any, token: str, ids: list[str]) -> int:
    """Bulk 2.0 update with plain requests: create, upload CSV, close, poll, read failures."""
    s = _session(emu)
    h = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    base = f"{emu.url}/services/data/v59.0/jobs/ingest"
    job = s.post(base, headers=h, data=json.dumps({"operation": "update", "object": "Lead", "contentType": "CSV",
                                                    "lineEnding": "LF", "columnDelimiter": "COMMA"})).json()
    body = "Id,Nurture_Score__c\n" + "".join(f"{i},{n % 97}.5\n" for n, i in enumerate(ids))
    s.put(f"{base}/{job['id']}/batches", headers={**h, "Content-Type": "text/csv"}, data=body.encode())
    s.patch(f"{base}/{job['id']}", headers=h, data=json.dumps({"state": "UploadComplete"}))
    info = s.get(f"{base}/{job['id']}", headers=h).json()
    s.get(f"{base}/{job['id']}/failedResults", headers=h)
    return int(info["numberRecordsProcessed"])


def command(
    records: int = typer.Option(100_000, "--records", help="Leads in the emulated org (pulled, then pushed)."),
    seed: int = typer.Option(7, "--seed"),
    only: str = typer.Option("all", "--only", help="all, pull_push, continuous_push or create."),
    create_records: int | None = typer.Option(None, "--create-records",
                                              help="create: new local leads to create (default: --records)."),
    create_linked: int = typer.Option(5000, "--create-linked",
                                      help="create: local copies of org leads, linked by the email look-up."),
    cp_leads: int = typer.Option(20_000, "--continuous-leads", help="continuous_push: leads whose scores change."),
    cp_changes: int = typer.Option(100_000, "--continuous-changes", help="continuous_push: score changes."),
    cp_interval: float = typer.Option(30.0, "--push-interval", help="continuous_push: the push interval (s)."),
    cp_seconds: float = typer.Option(60.0, "--change-seconds", help="continuous_push: the changes arrive over this."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Full pull and a push of N changed leads against the loopback emulator; then `continuous_push`: score
    changes arriving while the push runs every push interval (lag, API calls per 200 records); then `create`:
    a backlog of local leads created (or linked) in Salesforce by one sync (rows/s, API calls per 200)."""
    if only not in ("all", "pull_push", "continuous_push", "create"):
        raise typer.BadParameter("expected all, pull_push, continuous_push or create", param_hint="--only")
    from sqlalchemy import insert, select

    from ..clock import SystemClock
    from ..config import SalesforceSettings, load_settings
    from ..salesforce.emulator.process import EmulatorProcess
    from ..salesforce.mapping import PULL_FIELDS
    from ..salesforce.sync import run_sync
    from ..store.engine import make_engine, write_tx
    from ..store.models import metadata
    from ..store.tables import lead, sf_outbox
    from ..workspace import Workspace
    from .common import record

    with tempfile.TemporaryDirectory(prefix="nurture-bench-sync-") as tmp, \
            EmulatorProcess(Path(tmp) / "emulator", seed={"leads": records, "seed": seed, "contacts": 0,
                                                          "members": 0}) as emu:
        settings = load_settings(None, f"sqlite:///{tmp}/bench.db", data_dir=Path(tmp))
        settings.salesforce = SalesforceSettings(**emu.client_settings("jwt"))
        engine = make_engine(settings.db_url)
        metadata.create_all(engine)
        ws = Workspace(settings=settings, engine=engine, clock=SystemClock())

        import simple_salesforce.api
        import simple_salesforce.bulk2  # noqa: F401 - import cost is start-up, not sync throughput

        emu.admin("reset-stats")
        start, cpu = time.perf_counter(), time.process_time()
        pulled = run_sync(ws, pull=True, push=False, full=True)
        pull_s, pull_cpu = time.perf_counter() - start, time.process_time() - cpu
        if pulled.error:
            raise SystemExit(f"pull failed: {pulled.error}")
        pull_rows = sum(o.fetched for o in pulled.pulled.values())
        pull_calls = emu.admin("stats")["api_calls"]
        continuous: dict[str, Any] | None = None
        if only == "create":
            from . import sync_create

            created = sync_create.run(ws, emu, _session(emu), records=create_records or records,
                                      linked=create_linked)
            engine.dispose()
            record({"scenario": "sync", "records": records, "only": only, "create": created,
                    "reference": "≤ 1 API call per 200 records (issue 19)"}, as_json=as_json, echo=typer.echo)
            return
        if only not in ("pull_push", "create"):
            from . import sync_continuous

            continuous = sync_continuous.run(ws, emu, _session(emu), leads=cp_leads, changes=cp_changes,
                                             interval=cp_interval, change_seconds=cp_seconds, seed=seed)
            if only == "continuous_push":
                engine.dispose()
                record({"scenario": "sync", "records": records, "only": only, "continuous_push": continuous,
                        "reference": "the pushes' own interval (lag) and distinct records pushed (calls)"},
                       as_json=as_json, echo=typer.echo)
                return

        token = emu.token()
        soql = f"SELECT {', '.join(PULL_FIELDS['Lead'])} FROM Lead ORDER BY SystemModstamp, Id"
        start = time.perf_counter()
        ref_rows = _reference_pull(emu, token, soql)
        ref_pull_s = time.perf_counter() - start

        now = ws.clock.now()
        with engine.connect() as conn:
            ids = [r.id for r in conn.execute(select(lead.c.id).where(lead.c.sf_type == "Lead"))]
        with write_tx(engine) as conn:
            conn.execute(insert(sf_outbox), [{"sobject": "Lead", "op": "update", "lead_id": i, "status": "pending",
                                              "payload": {"score": float(i % 97) + 0.5, "stage": "consideration"},
                                              "attempts": 0, "created_at": now} for i in ids])
        emu.admin("reset-stats")
        start, cpu = time.perf_counter(), time.process_time()
        pushed = run_sync(ws, pull=False, push=True)
        push_s, push_cpu = time.perf_counter() - start, time.process_time() - cpu
        if pushed.error or pushed.pushed is None:
            raise SystemExit(f"push failed: {pushed.error}")
        push_calls = emu.admin("stats")["api_calls"]
        sent = pushed.pushed.sent

        with engine.connect() as conn:
            sf_ids = [str(r.sf_id) for r in conn.execute(select(lead.c.sf_id).where(lead.c.sf_type == "Lead"))]
        start = time.perf_counter()
        ref_pushed = _reference_push(emu, token, sf_ids)
        ref_push_s = time.perf_counter() - start
        create: dict[str, Any] | None = None
        if only == "all":
            from . import sync_create

            create = sync_create.run(ws, emu, _session(emu), records=create_records or records, linked=create_linked)
        engine.dispose()

    pull_rate = pull_rows / pull_s
    push_rate = sent / push_s
    ref_pull_rate = ref_rows / ref_pull_s
    ref_push_rate = ref_pushed / ref_push_s
    result = {
        "scenario": "sync", "records": records,
        "pull_rows_per_s": round(pull_rate), "push_rows_per_s": round(push_rate),
        "api_calls_per_200": round(push_calls / max(1, sent / 200), 4),
        "pull_rows": pull_rows, "pull_seconds": round(pull_s, 3), "pull_client_cpu_seconds": round(pull_cpu, 3),
        "pull_api_calls": pull_calls,
        "push_rows": sent, "push_seconds": round(push_s, 3), "push_client_cpu_seconds": round(push_cpu, 3),
        "push_api_calls": push_calls,
        "reference_pull_rows_per_s": round(ref_pull_rate), "reference_push_rows_per_s": round(ref_push_rate),
        "pull_ratio_vs_reference": round(pull_rate / ref_pull_rate, 3),
        "push_ratio_vs_reference": round(push_rate / ref_push_rate, 3),
        "reference": "plain requests to the same emulator Bulk 2.0 endpoints, no simple-salesforce/store/sync",
        "emulator": "separate process on loopback HTTPS",
        "targets": {"pull_rows_per_s": 20000, "push_rows_per_s": 10000, "api_calls_per_200": 1,
                    "create_api_calls_per_200": 1},
        "continuous_push": continuous,
        "create": create,
        "create_rows_per_s": (create or {}).get("create_rows_per_s"),
        "create_api_calls_per_200": (create or {}).get("create_api_calls_per_200"),
    }
    record(result, as_json=as_json, echo=typer.echo)
