"""The live demo runtime, headless: real scheduler, real SMTP sink (aiosmtpd), simulated recipients."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import func, select

from nurture_tui.demo.generate import build_demo
from nurture_tui.demo.live import DEMO_SEGMENTS, REACTIONS, DemoRuntime, EngagementSimulator, prepare
from nurture_tui.store.tables import activity, lead, outbox, segment, sequence
from nurture_tui.workspace import Workspace

TUESDAY_1PM = datetime(2026, 3, 3, 13, 0, tzinfo=UTC)  # inside every sample send window


def _wait(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def _engagement(ws: Workspace, since: datetime) -> dict[str, int]:
    with ws.engine.connect() as conn:
        rows = conn.execute(select(activity.c.kind, func.count()).where(activity.c.at >= since)
                            .group_by(activity.c.kind)).all()
    return {kind: int(n) for kind, n in rows}


def test_prepare_applies_every_sample_and_is_idempotent(workspace: Workspace) -> None:
    build_demo(workspace, leads=120, seed=2, activities=100)
    first = prepare(workspace)
    assert first.skipped == {} and len(first.sequences) >= 5
    again = prepare(workspace)
    assert again.sequences == first.sequences
    with workspace.engine.connect() as conn:
        names = set(conn.execute(select(segment.c.name)).scalars())
        published = conn.execute(select(func.count()).select_from(sequence)
                                 .where(sequence.c.current_version_id.is_not(None))).scalar_one()
    assert set(DEMO_SEGMENTS) <= names and published == len(first.sequences)


def test_runtime_sends_to_the_sink_and_engagement_comes_back(workspace: Workspace) -> None:
    workspace.clock.set(TUESDAY_1PM)  # type: ignore[attr-defined]
    build_demo(workspace, leads=300, seed=1)
    started = workspace.clock.now()
    runtime = DemoRuntime(workspace, speed=3600.0, start_at=TUESDAY_1PM)
    runtime.start()
    try:
        assert runtime.ws.settings.mail.smtp_url == runtime.sink.url
        assert _wait(lambda: runtime.sink.count > 0, 30), "no mail reached the SMTP sink"
        assert _wait(lambda: _engagement(workspace, started).get("open", 0) > 0, 30), "no opens came back"
        assert workspace.clock.now() > started  # the virtual clock runs
        # the demo syncs with its emulated org: one pass links every demo lead to a Salesforce record
        from nurture_tui.salesforce.sync import run_sync

        assert runtime.org is not None and workspace.settings.salesforce.enabled
        report = run_sync(workspace)
        assert report.ok, report.error
        with workspace.engine.connect() as conn:
            unlinked = conn.execute(select(func.count()).select_from(lead).where(lead.c.sf_id.is_(None))).scalar_one()
        assert unlinked == 0
    finally:
        runtime.stop()
    assert runtime.org is None  # stopped with the runtime
    with workspace.engine.connect() as conn:
        sent = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.status == "sent")).scalar_one()
    kinds = _engagement(workspace, started)
    # Every message reached the sink once: the send lease is real time, so the demo's fast virtual clock
    # never makes an in-flight message look abandoned (which once delivered messages twice).
    ids = [m.message()["Message-ID"] for m in runtime.sink.messages]
    assert len(ids) == len(set(ids)) == runtime.sink.count
    assert sent > 0 and runtime.sink.count > 0
    assert kinds.get("sent", 0) > 0 and kinds.get("open", 0) > 0
    assert runtime.state()["role"] == "stopped" and runtime.simulator is not None
    assert runtime.simulator.recorded >= kinds["open"]
    assert workspace.clock is not runtime.clock  # the workspace gets its own clock back


def test_simulated_reactions_depend_on_persona(workspace: Workspace) -> None:
    build_demo(workspace, leads=20, seed=1, activities=0)
    sim = EngagementSimulator(workspace, seed=5)

    class Row:
        def __init__(self, i: int, persona: str) -> None:
            self.id, self.lead_id, self.persona = i, 1, persona
            self.template_id = self.sequence_id = self.node_id = None
            self.category, self.sent_at = "marketing", TUESDAY_1PM

    def rate(persona: str, kind: str) -> float:
        hits = sum(any(e.kind == kind and not e.bot for e in sim.reactions(Row(i, persona)))
                   for i in range(3000))
        return hits / 3000

    assert REACTIONS["economic_buyer"][0] < REACTIONS["practitioner"][0]
    assert rate("economic_buyer", "open") < rate("technical_evaluator", "open") < rate("practitioner", "open")
    assert rate("economic_buyer", "click") < rate("practitioner", "click")
    events = [e for i in range(200) for e in sim.reactions(Row(i, "practitioner"))]
    assert all(e.at > TUESDAY_1PM for e in events)
    assert any(e.bot for e in events)
