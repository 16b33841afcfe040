from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from nurture_tui.clock import SystemClock, VirtualClock
from nurture_tui.config import load_settings
from nurture_tui.errors import NurtureError


def test_virtual_clock_frozen_set_and_advance() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = VirtualClock(start)
    assert clock.now() == start
    clock.advance(timedelta(hours=2))
    assert clock.now() == start + timedelta(hours=2)
    clock.set(datetime(2027, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2027
    with pytest.raises(ValueError):
        clock.set(datetime(2027, 1, 1))


def test_virtual_clock_speed_runs_faster_than_real_time() -> None:
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC), speed=3600)
    t0 = clock.now()
    time.sleep(0.05)
    assert clock.now() - t0 >= timedelta(seconds=150)  # 0.05 s real x 3600


def test_system_clock_is_aware() -> None:
    assert SystemClock().now().tzinfo is not None


def test_config_precedence_toml_env_and_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NURTURE_MAIL__SECRET_KEY")  # the suite's test secret would win over the file
    cfg = tmp_path / "config.toml"
    cfg.write_text('db_url = "sqlite:///from-toml.db"\n[user]\nname = "ana"\nrole = "rep"\n'
                   '[mail]\nrate_per_second = 7\nsecret_key = "s3cret"\n')
    s = load_settings(cfg)
    assert s.db_url == "sqlite:///from-toml.db"
    assert s.user.name == "ana" and s.user.role == "rep"
    assert s.mail.rate_per_second == 7
    assert s.mail.secret_key.get_secret_value() == "s3cret" and "s3cret" not in repr(s)
    monkeypatch.setenv("NURTURE_MAIL__RATE_PER_SECOND", "9")
    assert load_settings(cfg).mail.rate_per_second == 9
    assert load_settings(cfg, "sqlite:///cli.db").db_url == "sqlite:///cli.db"


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(NurtureError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[user]\nrole = "pirate"\n')
    with pytest.raises(NurtureError, match="invalid configuration"):
        load_settings(bad)
