"""Fixtures: the Salesforce emulator on a free loopback port (real HTTPS), and workspaces wired to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from nurture_tui.config import SalesforceSettings
from nurture_tui.salesforce.emulator import Emulator, seed_org
from nurture_tui.workspace import Workspace


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """An empty org (just the integration user) served over HTTPS on 127.0.0.1:<free port>."""
    emu = Emulator(directory=tmp_path / "emulator").start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def seeded(emulator: Emulator) -> Emulator:
    seed_org(emulator.org, leads=300, seed=3)
    return emulator


@pytest.fixture
def sf_ws(workspace: Workspace, emulator: Emulator) -> Workspace:
    """A workspace (SQLite and PostgreSQL) whose Salesforce settings point at the emulator.

    Client credentials keep the many logins cheap; every flow (JWT first) is covered in test_sf_wire.py."""
    workspace.settings.salesforce = SalesforceSettings(**emulator.client_settings("client_credentials"))
    return workspace
