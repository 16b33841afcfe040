"""Fixtures shared by the mail integration tests: a real SMTP sink and a workspace sending to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nurture_tui.mail.dispatch import close_dispatcher
from nurture_tui.mail.sink import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


@pytest.fixture
def ws(workspace, sink):
    workspace.settings.mail.smtp_url = sink.url
    workspace.settings.mail.rate_per_second = 1000
    yield workspace
    close_dispatcher(workspace)
