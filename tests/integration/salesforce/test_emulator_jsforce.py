"""Unchanged jsforce (Node; tests/node, installed by `.ci/run`) against the emulator: SOAP login (whose request
body node sends chunked) and the OAuth username-password flow, then a query, an update and Bulk 2.0 jobs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nurture_tui.salesforce.emulator import Emulator

NODE_DIR = Path(__file__).resolve().parents[2] / "node"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the jsforce test needs Node.js (`.ci/run` installs tests/node)")
    if not (NODE_DIR / "node_modules" / "jsforce" / "package.json").exists():
        pytest.skip("jsforce is not installed in tests/node (run `npm ci` there; `.ci/run` does when the npm "
                    "registry is reachable)")
    return node


@pytest.mark.parametrize("flow", ["soap", "oauth2-password"])
def test_jsforce_logs_in_queries_updates_and_runs_bulk2_jobs(emulator: Emulator, flow: str) -> None:
    node = _node()
    lead = emulator.org.create("Lead", {"LastName": "Node", "Company": "Acme", "Email": "node@example.com"})
    account = emulator.org.create("Account", {"Name": "Acme"})
    emulator.org.create("Contact", {"LastName": "Amy", "AccountId": account})
    emulator.org.insert_trusted("Lead", [{"LastName": f"P{i}", "Company": "Paged"} for i in range(2100)])
    creds = emulator.credentials()
    cfg = {"loginUrl": creds["login_url"], "version": creds["api_version"], "flow": flow,
           "username": creds["username"], "password": creds["password"], "securityToken": creds["security_token"],
           "consumerKey": creds["consumer_key"], "consumerSecret": creds["consumer_secret"],
           "email": "node@example.com"}
    env = {**os.environ, "SF_EMULATOR": json.dumps(cfg), "NODE_EXTRA_CA_CERTS": creds["ca_file"]}
    proc = subprocess.run([node, str(NODE_DIR / "jsforce_smoke.js")], env=env, capture_output=True, text=True,
                          timeout=60, cwd=NODE_DIR)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["instanceUrl"] == emulator.url and out["userId"] == emulator.integration_user_id
    assert out["queried"] == {"totalSize": 1, "lastName": "Node", "ownerType": "Name"}
    assert out["update"] == {"id": lead, "success": True, "errors": []}
    assert out["titleAfter"] == "Updated by jsforce" == emulator.org.records["Lead"][lead]["Title"]
    assert out["bulkIngest"]["successful"] == 2
    assert [e.split(":")[0] for e in out["bulkIngest"]["failed"]] == ["REQUIRED_FIELD_MISSING"]
    assert [(r["LastName"], r["Email"]) for r in out["bulkQuery"]] == [("Bulk One", "bulk1@example.com"),
                                                                       ("Bulk Two", "bulk2@example.com")]
    assert [(r["Company"], r["n"]) for r in out["grouped"]] == [("Acme", 1), ("JsBulk", 2), ("Paged", 2100)]
    assert out["identity"] == {"userId": emulator.integration_user_id, "username": emulator.username}
    assert out["leadStatuses"][0] == "Open - Not Contacted" and "Closed - Converted" in out["leadStatuses"]
    assert out["collections"] == [True, True] and out["upsert"] is True
    assert out["paged"] == {"fetched": 2100, "totalSize": 2100}  # two pages: queryMore through nextRecordsUrl
    assert out["queryAll"] == [True]
    assert out["nested"] == [["Acme", 1]]
    assert out["convertLead"] == [[True, True, None, []], [False, False, None, ["INVALID_STATUS"]]]
    assert out["bulk1"] == {"load": [[True, True, []], [False, False, ["REQUIRED_FIELD_MISSING"]]],
                            "query": [["V1 One", True]]}
    assert out["loggedOut"] is True and list(emulator.auth.sessions) == [creds["session_id"]]  # jsforce's ended
    routes = emulator.stats.snapshot()["by_route"]
    assert routes.get("PUT /services/data/v59.0/jobs/ingest/{id}/batches") == 1
    assert routes.get("POST /services/data/v59.0/jobs/query") == 1
