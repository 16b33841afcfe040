"""`nurture sync` and `nurture salesforce status|errors` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nurture_tui.cli import main
from nurture_tui.salesforce.emulator import Emulator, seed_org


def test_sync_command(emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed_org(emulator.org, leads=40, seed=5)
    db = f"sqlite:///{tmp_path / 'w.db'}"
    cfg = emulator.client_settings("jwt")
    config = tmp_path / "nurture.toml"
    config.write_text("[salesforce]\nenabled = true\nauth = \"jwt\"\n" + "".join(
        f'{k} = "{cfg[k]}"\n' for k in ("login_url", "ca_file", "username", "consumer_key", "private_key_file")))
    main(["init", "--db", db])
    capsys.readouterr()
    main(["salesforce", "status", "--db", db, "--config", str(config)])
    assert "last two-way sync: never" in capsys.readouterr().out
    main(["sync", "--json", "--db", db, "--config", str(config)])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["pulled"]["Lead"]["inserted"] == 40 and report["open_errors"] == 0
    main(["salesforce", "status", "--json", "--db", db, "--config", str(config)])
    status = json.loads(capsys.readouterr().out)
    assert {s["sobject"] for s in status["objects"]} >= {"Lead", "Lead.deleted", "Opportunity"}
    last = status["last_full_sync"]  # persisted (sync_state), so a restarted daemon keeps its schedule
    assert last["ok"] is True and last["started_at"] and last["api_calls"] == report["api_calls"]
    main(["salesforce", "status", "--db", db, "--config", str(config)])
    text = capsys.readouterr().out
    assert f"last two-way sync: {last['started_at'][:10]}" in text and ", ok" in text
    main(["salesforce", "errors", "--db", db])
    assert "no open sync errors" in capsys.readouterr().out


def test_sync_disabled_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    main(["init", "--db", db])
    with pytest.raises(SystemExit) as exc:
        main(["sync", "--db", db])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "salesforce.enabled" in err[0]


def test_emulator_command_serves_until_stopped(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys

    import requests

    def ctrl_c_reaches_it() -> None:
        # The child inherits the signal mask and an ignored SIGINT from the test process; after the rest of
        # the suite (xdist, servers run in-process) either may be set, and Ctrl-C must reach the command.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    nurture = Path(sys.executable).parent / "nurture"
    proc = subprocess.Popen([str(nurture), "--db", f"sqlite:///{tmp_path / 'w.db'}", "salesforce", "emulator",
                             "--port", "0", "--leads", "20", "--dir", str(tmp_path / "emu")],
                            stdout=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_it)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Salesforce emulator on https://127.0.0.1:")
        url = first.split(" on ")[1].strip()
        session = requests.Session()
        session.trust_env = False
        session.verify = str(tmp_path / "emu" / "tls" / "ca.pem")
        assert session.get(f"{url}/_emulator/stats").json()["api_calls"] == 0
        assert (tmp_path / "emu" / "nurture-salesforce.toml").read_text().startswith("[salesforce]")
        creds = json.loads((tmp_path / "emu" / "credentials.json").read_text())  # every login flow's credentials
        assert creds["instance_url"] == url and creds["security_token"] and creds["consumer_secret"]
        assert session.get(f"{url}/services/data/v59.0/limits/", headers={
            "Authorization": f"Bearer {creds['session_id']}"}).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode in (0, 130)
