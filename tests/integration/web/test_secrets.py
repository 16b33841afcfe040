"""Issue 20 item 1: default or empty secrets are refused by the daemon and the web app; `nurture init`
writes fresh secrets into a 0600 config; a token must name an existing message of its lead."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cli_support import run_cli
from pydantic import SecretStr
from sqlalchemy import insert, select

from nurture_tui.config import DEV_EVENTS_TOKEN, DEV_SECRET_KEY, load_settings, secret_problems
from nurture_tui.configfile import ensure_secrets
from nurture_tui.errors import NurtureError
from nurture_tui.mail.tokens import TokenSigner
from nurture_tui.store.tables import activity, lead, outbox, subscription
from nurture_tui.web.app import create_app
from nurture_tui.web.server import WebServer
from nurture_tui.workspace import Workspace


def _env_without_secrets(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_MAIL__")}
    env["NURTURE_CONFIG"] = str(tmp_path / "config.toml")
    return env


def test_secret_problems_names_each_bad_value() -> None:
    mail = load_settings(None, "sqlite://").mail.model_copy(update={
        "secret_key": SecretStr(DEV_SECRET_KEY), "events_api_token": SecretStr(" ")})
    assert secret_problems(mail) == ["mail.secret_key is the built-in development value",
                                     "mail.events_api_token is empty"]
    mail = mail.model_copy(update={"secret_key": SecretStr("short"),
                                   "events_api_token": SecretStr(DEV_EVENTS_TOKEN)})
    assert secret_problems(mail) == ["mail.secret_key is shorter than 16 characters",
                                     "mail.events_api_token is the built-in development value"]
    mail = mail.model_copy(update={"secret_key": SecretStr("x" * 16), "events_api_token": SecretStr("y" * 40)})
    assert secret_problems(mail) == []


def test_the_web_app_refuses_the_built_in_secrets(workspace: Workspace) -> None:
    workspace.settings.mail.secret_key = SecretStr(DEV_SECRET_KEY)
    with pytest.raises(NurtureError, match=r"web app: mail\.secret_key is the built-in development value; "
                                           r"run `nurture init`"):
        create_app(workspace)
    workspace.settings.mail.secret_key = SecretStr("")
    with pytest.raises(NurtureError, match=r"mail\.secret_key is empty"):
        WebServer(workspace, "127.0.0.1", 0)


def test_daemon_refuses_default_secrets_in_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    env = _env_without_secrets(tmp_path)
    nurture = str(Path(sys.executable).parent / "nurture")
    assert subprocess.run([nurture, "--db", db, "init"], env=env, capture_output=True, text=True,
                          timeout=60).returncode == 0
    (tmp_path / "config.toml").unlink()  # as if the config had been lost: the built-in defaults again
    proc = subprocess.run([nurture, "--db", db, "daemon", "--http", "127.0.0.1:0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: daemon: mail.secret_key is the built-in development value; "
                               "mail.events_api_token is the built-in development value; run `nurture init`")
    assert "NURTURE_MAIL__SECRET_KEY" in lines[0]


def test_init_writes_fresh_secrets_mode_0600_and_the_daemon_starts(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    env = _env_without_secrets(tmp_path)
    cfg = tmp_path / "config.toml"
    cfg.write_text('[user]\nrole = "operator"\n\n[mail]\nfrom_email = "m@example.org"\n')
    cfg.chmod(0o644)
    nurture = str(Path(sys.executable).parent / "nurture")
    init = subprocess.run([nurture, "--db", db, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert init.returncode == 0, init.stderr
    assert f"config {cfg}: fresh mail.secret_key and mail.events_api_token (mode 0600)" in init.stdout
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    doc = tomllib.loads(cfg.read_text())
    assert doc["user"]["role"] == "operator" and doc["mail"]["from_email"] == "m@example.org"  # kept
    key, token = doc["mail"]["secret_key"], doc["mail"]["events_api_token"]
    assert len(key) >= 40 and len(token) >= 40 and key != token
    # a second init keeps them; another workspace's init gets different ones
    again = subprocess.run([nurture, "--db", db, "init"], env=env, capture_output=True, text=True, timeout=60)
    assert "config " not in again.stdout and tomllib.loads(cfg.read_text())["mail"]["secret_key"] == key
    other = tmp_path / "other.toml"
    assert ensure_secrets(other).written == ["secret_key", "events_api_token"]
    assert tomllib.loads(other.read_text())["mail"]["secret_key"] != key
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
    # the daemon starts with them (and stops cleanly)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([nurture, "--db", db, "daemon", "--http", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import time

        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.3)
            if (tmp_path / "w.db").exists():
                with Workspace.open(load_settings(cfg, db)) as ws, ws.engine.connect() as conn:
                    from nurture_tui.store.tables import lease

                    if conn.execute(select(lease.c.holder)).first() is not None:
                        break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]


def test_init_refuses_an_unusable_secret_line_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[mail]\nsecret_key = "{DEV_SECRET_KEY}"\n')
    monkeypatch.delenv("NURTURE_MAIL__SECRET_KEY")
    code, _out, err = run_cli(capsys, "--config", str(cfg), "--db", f"sqlite:///{tmp_path / 'w.db'}", "init")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {cfg}: mail.secret_key is set to an unusable value")


def _seed(ws: Workspace) -> dict[str, int]:
    now = ws.clock.now()
    with ws.engine.begin() as conn:
        ids = {}
        for name in ("ann", "bob"):
            ids[name] = conn.execute(insert(lead).values(email=f"{name}@example.com", created_at=now)
                                     .returning(lead.c.id)).scalar_one()
        conn.execute(insert(outbox).values(
            idempotency_key="k-ann", lead_id=ids["ann"], to_email="ann@example.com", status="sent",
            message_ref="ref-ann", sent_at=now - timedelta(hours=1), created_at=now, headers={}))
    return ids


@pytest.mark.parametrize("ack", ["journal", "commit"])
def test_a_token_for_an_unknown_message_is_refused(workspace: Workspace, ack: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A token whose message does not exist or is another lead's records nothing. With `tracking_ack =
    "commit"` the open or click is refused (400); with "journal" (the default) it was answered from the
    verified token before any lookup — the pixel, or the redirect to the URL the signature covers — and the
    writer drops it. Unsubscribes always look the message up first and refuse it."""
    monkeypatch.setattr(workspace.settings.mail, "tracking_ack", ack)
    ids = _seed(workspace)
    signer = TokenSigner(workspace.settings.mail.secret_key.get_secret_value())
    later = workspace.clock.now() + timedelta(days=30)
    with WebServer(workspace, "127.0.0.1", 0) as srv, httpx.Client(base_url=srv.url, timeout=10) as http:
        # bob has no message "ref-x"; ann's message is not bob's
        for lead_id, ref in ((ids["bob"], "ref-x"), (ids["bob"], "ref-ann"), (ids["ann"], "ref-x")):
            unsub = signer.sign("unsubscribe", lead_id, ref, later)
            assert http.post(f"/u/{unsub}", data={"action": "unsubscribe"}).status_code == 400
            assert http.post(f"/u/{unsub}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
            assert http.get(f"/u/{unsub}").status_code == 400
            click = signer.sign("click", lead_id, ref, later, "https://signed.example/")
            resp = http.get(f"/c/{click}", follow_redirects=False)
            pixel = http.get(f"/o/{signer.sign('open', lead_id, ref, later)}.gif")
            if ack == "commit":
                assert resp.status_code == 400 and "location" not in resp.headers
                assert pixel.status_code == 400
            else:
                assert resp.status_code == 302 and resp.headers["location"] == "https://signed.example/"
                assert pixel.status_code == 200
        # the genuine token still works
        ok = signer.sign("click", ids["ann"], "ref-ann", later, "https://example.com/a")
        resp = http.get(f"/c/{ok}", follow_redirects=False)
        assert resp.status_code == 302 and resp.headers["location"] == "https://example.com/a"
    with workspace.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(activity.c.kind, activity.c.lead_id))]
        assert kinds == ["click"]
        assert conn.execute(select(subscription)).first() is None  # nobody was unsubscribed


def test_mail_dispatch_refuses_default_secrets_too(tmp_path: Path) -> None:
    """It signs the tracking links that go out in mail: a public secret would make them forgeable."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    env = _env_without_secrets(tmp_path)
    nurture = str(Path(sys.executable).parent / "nurture")
    assert subprocess.run([nurture, "--db", db, "init"], env=env, capture_output=True, timeout=60).returncode == 0
    (tmp_path / "config.toml").unlink()
    proc = subprocess.run([nurture, "--db", db, "mail", "dispatch", "--once"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.startswith("error: mail dispatch: mail.secret_key is the built-in")
