"""Issue 20 item 14: `nurture mail sink --maildir DIR` with an existing empty directory makes it a Maildir;
anything that cannot be one is refused at start in one line, never answered with a 5xx per message."""

from __future__ import annotations

import mailbox
import shutil
import smtplib
from pathlib import Path

import pytest

from nurture_tui.cli import main
from nurture_tui.errors import ValidationError
from nurture_tui.mail.sink import SmtpSink, open_maildir

MSG = b"From: a@x.test\r\nTo: b@x.test\r\nSubject: hi\r\n\r\nhello\r\n"


def _send(sink: SmtpSink) -> None:
    with smtplib.SMTP(sink.host, sink.port, timeout=10) as smtp:
        smtp.sendmail("a@x.test", ["b@x.test"], MSG)


def test_existing_empty_directory_becomes_a_maildir(tmp_path: Path) -> None:
    box = tmp_path / "box"
    box.mkdir()
    with SmtpSink(maildir=box) as sink:
        _send(sink)  # raised SMTPDataError(500, FileNotFoundError) before the fix
        assert sink.wait_for(1)
    assert all((box / d).is_dir() for d in ("cur", "new", "tmp"))
    got = list(mailbox.Maildir(str(box), create=False))
    assert len(got) == 1 and got[0]["Subject"] == "hi"
    assert list((box / "tmp").iterdir()) == []  # the start-up write probe left nothing behind


def test_missing_directory_and_existing_maildir_are_used(tmp_path: Path) -> None:
    new = tmp_path / "a" / "b" / "box"
    with SmtpSink(maildir=new) as sink:
        _send(sink)
    existing = tmp_path / "md"
    mailbox.Maildir(str(existing), create=True).add(MSG)
    with SmtpSink(maildir=existing) as sink:
        _send(sink)
    assert len(list(mailbox.Maildir(str(new), create=False))) == 1
    assert len(list(mailbox.Maildir(str(existing), create=False))) == 2


@pytest.mark.parametrize("setup, says", [
    (lambda p: p.write_text("x"), "not a directory"),
    (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), "is not a Maildir (it holds notes.txt)"),
    (lambda p: (p.mkdir(), (p / "new").write_text("x")), "is not a Maildir (it holds new)"),
])
def test_what_cannot_be_a_maildir_is_refused_at_start(tmp_path: Path, setup, says: str) -> None:
    target = tmp_path / "target"
    setup(target)
    with pytest.raises(ValidationError) as err:
        open_maildir(target)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_at_start_in_one_line(tmp_path: Path, capsys) -> None:
    target = tmp_path / "full"
    target.mkdir()
    (target / "README").write_text("not mail")
    with pytest.raises(SystemExit) as exc:
        main(["mail", "sink", "--port", "0", "--maildir", str(target)])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {target}: ") and "not a Maildir" in err
    assert "Traceback" not in err and "listening" not in err


def test_a_maildir_write_failing_later_is_a_temporary_failure_not_a_bounce(tmp_path: Path) -> None:
    box = tmp_path / "box"
    with SmtpSink(maildir=box) as sink:
        shutil.rmtree(box)  # the directory disappears under a running sink
        with pytest.raises(smtplib.SMTPDataError) as exc:
            _send(sink)
        assert exc.value.smtp_code == 451  # the dispatcher retries a 4xx; a 5xx would suppress the lead
