"""Issue 20 item 2 (engine half): a reference broken behind nurture's back (a segment deleted in SQL) pauses
only the program that uses it, with a visible error; every other program keeps running: the entry sweep,
batches whose actions change leads (which re-check segment entry), branches, goals and exits."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from cli_support import run_cli
from sqlalchemy import delete, select, text

from nurture_tui.activity import ActivityEvent
from nurture_tui.clock import VirtualClock
from nurture_tui.console.sequences import SequencesConsole
from nurture_tui.console.session import ConsoleSession
from nurture_tui.engine.advance import run_due
from nurture_tui.engine.enroll import enroll_lead, entry_sweep
from nurture_tui.engine.events import record_events
from nurture_tui.engine.seeding import make_leads, publish_definition
from nurture_tui.segments.service import save_segment
from nurture_tui.sequences import service as seq_service
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import audit, enrollment, lead, segment, segment_member, sequence
from nurture_tui.workspace import Workspace

HEALTHY = {"name": "healthy", "entry": {"type": "segment", "rule": {"field": "country", "op": "eq", "value": "DE"}},
           "steps": [{"id": "t", "action": {"type": "update_field", "field": "title", "value": "Reached"}},
                     {"id": "w", "wait": {"duration": "1d"}},
                     {"id": "st", "action": {"type": "set_stage", "value": "consideration"}},
                     {"id": "w2", "wait": {"duration": "1d"}}]}
BROKEN_ENTRY = {"name": "from-segment", "entry": {"type": "segment", "segment": "germans"},
                "steps": [{"id": "w", "wait": {"duration": "1d"}}]}
BROKEN_BRANCH = {"name": "branchy", "steps": [
    {"id": "b", "branch": {"segment": "vips"}, "yes": [{"id": "y", "wait": {"duration": "1d"}}],
     "no": [{"id": "n", "wait": {"duration": "1d"}}]}]}
BROKEN_EXIT = {"name": "exity", "exit_when": [{"in_segment": "vips"}],
               "steps": [{"id": "w", "wait": {"duration": "1d"}}]}


def _tick(ws: Workspace) -> None:
    """What the scheduler's jobs do: the entry sweep, then batches until nothing is due."""
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        entry_sweep(conn, now, ws.settings)
    run_due(ws.engine, ws.clock.now, ws.settings, limit=100)


def _programs(ws: Workspace) -> dict[str, Any]:
    with ws.engine.connect() as conn:
        return {r.name: r for r in seq_service.list_sequences(conn)}


def _nodes(ws: Workspace, name: str) -> list[tuple[str | None, str]]:
    with ws.engine.connect() as conn:
        sid = conn.execute(select(sequence.c.id).where(sequence.c.name == name)).scalar_one()
        return [(r.node_id, r.status) for r in conn.execute(
            select(enrollment.c.node_id, enrollment.c.status).where(enrollment.c.sequence_id == sid)
            .order_by(enrollment.c.id))]


def _delete_segment_in_sql(ws: Workspace, name: str) -> None:
    with write_tx(ws.engine) as conn:
        sid = conn.execute(select(segment.c.id).where(segment.c.name == name)).scalar_one()
        conn.execute(delete(segment_member).where(segment_member.c.segment_id == sid))
        conn.execute(text("DELETE FROM segment WHERE id = :sid"), {"sid": sid})


@pytest.fixture
def world(workspace: Workspace, clock: VirtualClock) -> dict[str, Any]:
    now = clock.now()
    with write_tx(workspace.engine) as conn:
        save_segment(conn, "germans", {"field": "country", "op": "eq", "value": "DE"}, user="t", now=now)
        save_segment(conn, "vips", {"field": "industry", "op": "eq", "value": "VIP"}, user="t", now=now)
        for definition in (HEALTHY, BROKEN_ENTRY, BROKEN_BRANCH, BROKEN_EXIT):
            publish_definition(conn, definition, now)
        first = make_leads(conn, 2, now, country="DE")
        others = make_leads(conn, 2, now, country="FR")
        for lid in others:
            enroll_lead(conn, lid, "branchy", now)
            enroll_lead(conn, lid, "exity", now)
    return {"first": first, "others": others}


def test_a_segment_deleted_in_sql_pauses_only_its_programs(workspace: Workspace, clock: VirtualClock,
                                                           world: dict[str, Any],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ws = workspace
    _delete_segment_in_sql(ws, "germans")
    _delete_segment_in_sql(ws, "vips")
    _tick(ws)
    progs = _programs(ws)
    # the healthy program entered both Germans and ran its lead-changing action (which re-checks segment
    # entry of every program, the broken one included)
    assert _nodes(ws, "healthy") == [("w", "waiting"), ("w", "waiting")]
    assert progs["healthy"].status == "active" and progs["healthy"].error is None
    for name, missing in (("from-segment", "germans"), ("branchy", "vips"), ("exity", "vips")):
        assert progs[name].status == "paused", name
        assert f"no saved segment named {missing!r}" in (progs[name].error or ""), (name, progs[name].error)
    assert _nodes(ws, "from-segment") == []
    assert _nodes(ws, "branchy") == [("b", "active"), ("b", "active")]  # left where they were
    # later ticks: the healthy program goes on, the paused ones stay put
    clock.advance(timedelta(days=1, minutes=1))
    with write_tx(ws.engine) as conn:
        late = make_leads(conn, 1, clock.now(), country="DE")[0]
    _tick(ws)
    assert _nodes(ws, "healthy") == [("w2", "waiting"), ("w2", "waiting"), ("w", "waiting")]
    with ws.engine.connect() as conn:
        assert conn.execute(select(lead.c.title).where(lead.c.id == late)).scalar() == "Reached"
        pauses = conn.execute(select(audit.c.user, audit.c.entity_id).where(audit.c.action == "pause")).all()
    assert sorted(u for u, _ in pauses) == ["engine"] * 3  # paused once each, not on every tick
    # an event for a lead in a broken program is still recorded (goals and exits isolated too)
    with write_tx(ws.engine) as conn:
        ids = record_events(conn, [ActivityEvent(world["others"][0], "page_view", clock.now(),
                                                 url="https://x.test/")], clock.now(), ws.settings)
    assert len(ids) == 1

    # visible: CLI list / show and the console's sequence list
    code, out, _ = run_cli(capsys, "--db", ws.settings.db_url, "sequences", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert rows["branchy"]["status"] == "paused" and "'vips'" in rows["branchy"]["error"]
    assert rows["healthy"]["error"] is None
    code, out, _ = run_cli(capsys, "--db", ws.settings.db_url, "sequences", "show", "from-segment")
    assert code == 0 and "status:        paused" in out and "no saved segment named 'germans'" in out
    assert "nurture sequences resume from-segment" in out
    code, out, _ = run_cli(capsys, "--db", ws.settings.db_url, "sequences", "list")
    assert "  error: rule.in_segment: no saved segment named 'germans'" in out.splitlines()
    console = SequencesConsole(ConsoleSession.open(ws))
    shown = {s.name: s for s in console.all()}
    assert shown["exity"].status == "paused" and "'vips'" in (shown["exity"].error or "")

    # resuming clears the error; a reference still broken pauses it again at the next sweep
    with write_tx(ws.engine) as conn:
        seq_service.resume(conn, "from-segment", user="t", now=clock.now())
    assert _programs(ws)["from-segment"].error is None
    _tick(ws)
    assert _programs(ws)["from-segment"].status == "paused"
    # fixed (the segment exists again) and resumed: it runs
    with write_tx(ws.engine) as conn:
        save_segment(conn, "germans", {"field": "country", "op": "eq", "value": "DE"}, user="t", now=clock.now())
        seq_service.resume(conn, "from-segment", user="t", now=clock.now())
    _tick(ws)
    assert _programs(ws)["from-segment"].status == "active"
    assert len(_nodes(ws, "from-segment")) == 3
