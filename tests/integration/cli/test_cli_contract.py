"""The CLI contract (docs/architecture.md, "The CLI contract"): `--db` anywhere, exit 0/2, one-line errors,
never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import run_cli, run_subprocess
from sqlalchemy import inspect

from nurture_tui.cli import hoist_global_options
from nurture_tui.store.engine import make_engine
from nurture_tui.store.migrate import current_revision, head_revision


def test_init_creates_then_reports_up_to_date(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "init", "--db", db_url)
    assert code == 0 and "ready" in out and head_revision() in out
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        assert "lead" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    code, out, _ = run_cli(capsys, "--db", db_url, "init")
    assert code == 0 and "up to date" in out


def test_db_option_before_or_after_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    assert run_cli(capsys, "--db", f"sqlite:///{first}", "init")[0] == 0
    assert run_cli(capsys, "init", f"--db=sqlite:///{second}")[0] == 0
    assert first.exists() and second.exists()


def test_hoist_keeps_arguments_in_order() -> None:
    assert hoist_global_options(["leads", "import", "x.csv", "--db", "u", "--dry-run"]) == [
        "--db", "u", "leads", "import", "x.csv", "--dry-run"]
    assert hoist_global_options(["a", "--", "--db", "u"]) == ["a", "--", "--db", "u"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["init", "--db", "bogus://x"], "unsupported database"),
        (["init", "--db"], "--db needs a value"),
        (["no-such-command"], "No such command"),
        (["init", "--no-such-option"], "No such option"),
        (["--config", "/nonexistent/nurture.toml", "init"], "config file not found"),
    ],
)
def test_user_errors_exit_2_with_one_line(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_uninitialised_workspace_points_at_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nurture_tui.commands.common import CliState
    from nurture_tui.errors import NurtureError

    st = CliState(db_url=f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(NurtureError, match="run `nurture init` first"):
        st.workspace()


def test_unreachable_postgres_is_one_line_in_a_subprocess(tmp_path: Path) -> None:
    proc = run_subprocess(tmp_path, "init", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")


def test_subprocess_init_and_help(tmp_path: Path) -> None:
    proc = run_subprocess(tmp_path, "init", "--db", f"sqlite:///{tmp_path / 'w.db'}")
    assert proc.returncode == 0, proc.stderr
    proc = run_subprocess(tmp_path, "--help")
    assert proc.returncode == 0 and "init" in proc.stdout
    proc = run_subprocess(tmp_path, "nonsense")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
