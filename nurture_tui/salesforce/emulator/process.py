"""Run the emulator in its own process (benchmarks, the demo): it gets its own interpreter and CPU, as a real
org would, and the parent talks to it only over HTTPS (admin endpoints under /_emulator/).

The child is `python -m nurture_tui.salesforce.emulator.process '<json options>'`: it prints one JSON line
(URL and client settings) when it is serving, and stops when its stdin closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

AUTHS = ("jwt", "password", "soap", "client_credentials")


def main(argv: list[str]) -> None:
    from .seed import seed_org
    from .server import Emulator

    options = json.loads(argv[0])
    seed = options.pop("seed", None)
    emu = Emulator(**{**options, "directory": Path(options["directory"])})
    summary = seed_org(emu.org, **seed) if seed is not None else None
    emu.start()
    info = {"url": emu.url, "settings": {a: emu.client_settings(a) for a in AUTHS},
            "seed": summary.__dict__ if summary else None}
    sys.stdout.write(json.dumps(info, default=str) + "\n")
    sys.stdout.flush()
    sys.stdin.read()  # returns when the parent closes the pipe (or dies)
    emu.stop()


class EmulatorProcess:
    def __init__(self, directory: Path, *, seed: dict[str, Any] | None = None, **options: Any) -> None:
        self.options: dict[str, Any] = {"directory": str(directory), **options}
        if seed is not None:
            self.options["seed"] = seed
        self._proc: subprocess.Popen[str] | None = None
        self.info: dict[str, Any] = {}

    def start(self) -> EmulatorProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "nurture_tui.salesforce.emulator.process", json.dumps(self.options)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self.stop()
            raise RuntimeError("the Salesforce emulator process did not start")
        self.info = json.loads(line)
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.terminate()
            self._proc.wait(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return str(self.info["url"])

    def client_settings(self, auth: str = "jwt") -> dict[str, Any]:
        return dict(self.info["settings"][auth])

    def _session(self) -> requests.Session:
        s = requests.Session()
        s.trust_env = False
        s.verify = str(self.client_settings()["ca_file"])
        return s

    def admin(self, action: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self._session()
        if payload is None and action == "stats":
            r = s.get(f"{self.url}/_emulator/stats")
        else:
            r = s.post(f"{self.url}/_emulator/{action}", data=json.dumps(payload or {}))
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def token(self) -> str:
        """A session token from a real client-credentials login."""
        cfg = self.client_settings("client_credentials")
        r = self._session().post(f"{self.url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                                 auth=(cfg["consumer_key"], cfg["consumer_secret"]))
        r.raise_for_status()
        return str(r.json()["access_token"])


if __name__ == "__main__":
    main(sys.argv[1:])
