"""Store side: apply/export round trips, publish/versions/diff/audit, migration, pause/resume, list, cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from seq_support import SAMPLES, add_lead
from sqlalchemy import delete, func, insert, select

from nurture_tui.errors import NotFoundError, NurtureError, ValidationError
from nurture_tui.sequences import service
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.sequences.problems import ProblemsError
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import audit, enrollment, segment, sequence, sequence_version, template, template_version
from nurture_tui.workspace import Workspace

BASE = """\
name: demo-seq
description: test
steps:
  - id: hello
    send: {template: demo-hello}
  - id: opened
    wait_for: {events: [{kind: open, node: hello}], window: 2d}
    no:
      - id: nudge
        send: {template: demo-nudge}
  - id: pause
    wait: {duration: 3d}
  - id: done
    exit: {reason: finished}
templates:
  - {name: demo-hello, subject: 'Hi {{ lead.first_name | default("there") }}', html: '<p>Hello</p>'}
  - {name: demo-nudge, subject: 'Still there?', html: '<p>Nudge</p>'}
"""


def apply(ws: Workspace, text: str, name: str = "demo.yaml") -> service.ApplyResult:
    with write_tx(ws.engine) as conn:
        return service.apply_text(conn, text, name, user="tester", now=ws.clock.now())


def publish(ws: Workspace, name: str = "demo-seq", migrate: bool = False) -> service.PublishResult:
    with write_tx(ws.engine) as conn:
        return service.publish_report(conn, name, user="tester", now=ws.clock.now(), migrate=migrate)


def test_apply_creates_draft_and_templates_then_is_idempotent(workspace: Workspace) -> None:
    first = apply(workspace, BASE)
    assert first.created and first.changed and first.templates == ("demo-hello", "demo-nudge")
    second = apply(workspace, BASE)
    assert not second.created and not second.changed and second.templates == ()
    with workspace.engine.connect() as conn:
        row = conn.execute(select(sequence).where(sequence.c.name == "demo-seq")).mappings().one()
        assert row["status"] == "draft" and row["current_version_id"] is None
        assert SequenceDef.model_validate(row["draft"]).steps[0].id == "hello"
        assert conn.execute(select(func.count()).select_from(template_version)).scalar_one() == 2


def test_apply_updates_templates_with_a_new_version(workspace: Workspace) -> None:
    apply(workspace, BASE)
    res = apply(workspace, BASE.replace("'Still there?'", "'Still with us?'"))
    assert res.templates == ("demo-nudge",) and res.changed  # inline templates are part of the draft
    with workspace.engine.connect() as conn:
        version = conn.execute(select(template.c.version).where(template.c.name == "demo-nudge")).scalar_one()
    assert version == 2


def test_apply_with_problems_writes_nothing(workspace: Workspace) -> None:
    bad = BASE.replace("duration: 3d", "duration: 0d")
    with pytest.raises(ProblemsError) as exc:
        apply(workspace, bad)
    assert exc.value.lines == ["demo.yaml: steps.pause.wait: duration must be > 0 (line 12)"]
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sequence)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(template)).scalar_one() == 0


def test_failure_in_a_later_file_rolls_back_earlier_ones(workspace: Workspace, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("demo-seq", "other").replace("demo-hello}", "missing-template}"))
    with pytest.raises(ProblemsError), write_tx(workspace.engine) as conn:
        for f in (good, bad):
            service.apply_file(conn, f, user="t", now=workspace.clock.now())
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sequence)).scalar_one() == 0


def test_every_sample_round_trips_as_a_fixed_point_and_publishes(samples_ws: Workspace, tmp_path: Path) -> None:
    """apply → export → apply changes nothing, export is stable, and the draft publishes (one workspace
    for the whole library: samples refer to each other, as they do in the demo)."""
    ws = samples_ws
    for path in SAMPLES:
        with write_tx(ws.engine) as conn:
            first = service.apply_file(conn, path, user="t", now=ws.clock.now())
            exported = service.export(conn, first.name)
        out = tmp_path / "elsewhere" / path.name  # no templates/ directory next to it: stored ones are used
        out.parent.mkdir(exist_ok=True)
        out.write_text(exported)
        with write_tx(ws.engine) as conn:
            draft_before = service.get_row(conn, first.name)["draft"]
            again = service.apply_file(conn, out, user="t", now=ws.clock.now())
            assert not again.changed and again.templates == (), path.name
            assert service.get_row(conn, first.name)["draft"] == draft_before, path.name
            assert service.export(conn, first.name) == exported, path.name
            vid = service.publish(conn, first.name, user="t", now=ws.clock.now())
            compiled = service.load_version(conn, vid)
        assert compiled.definition.name == first.name and compiled.start is not None
    with ws.engine.connect() as conn:
        assert {s.name for s in service.list_sequences(conn) if s.status == "active"} == {
            "welcome", "consideration-nurture", "cold-lead-reengagement", "decision-stage", "customer-renewal",
            "abm-named-accounts"}


def test_publish_freezes_a_version_with_checksum_and_audits_the_diff(workspace: Workspace) -> None:
    apply(workspace, BASE)
    v1 = publish(workspace)
    assert v1.created and v1.number == 1
    with workspace.engine.connect() as conn:
        row = conn.execute(select(sequence_version).where(sequence_version.c.id == v1.version_id)).mappings().one()
        seq = conn.execute(select(sequence).where(sequence.c.name == "demo-seq")).mappings().one()
    canonical = json.dumps(row["definition"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert row["checksum"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert seq["current_version_id"] == v1.version_id and seq["status"] == "active"

    again = publish(workspace)
    assert not again.created and again.version_id == v1.version_id

    edited = BASE.replace("window: 2d", "window: 3d").replace(
        "  - id: done\n", "  - id: extra\n    send: {template: demo-hello}\n  - id: done\n"
    ).replace("      - id: nudge\n        send: {template: demo-nudge}\n", "      - id: tagit\n"
              "        action: {type: add_tag, tag: quiet}\n")
    apply(workspace, edited)
    v2 = publish(workspace)
    assert v2.created and v2.number == 2
    assert v2.diff.added == ["tagit", "extra"]
    assert v2.diff.removed == ["nudge"]
    assert set(v2.diff.changed) == {"opened", "pause"}  # window changed; pause now leads to `extra`
    with workspace.engine.connect() as conn:
        last = conn.execute(select(audit).where(audit.c.entity == "sequence", audit.c.action == "publish")
                            .order_by(audit.c.id.desc())).mappings().first()
        assert last is not None
        assert last["after"]["diff"]["removed"] == ["nudge"] and last["before"]["version"] == 1
        assert [v.number for v in service.versions(conn, "demo-seq")] == [1, 2]
        assert service.diff(conn, "demo-seq", 1, 2).removed == ["nudge"]
        assert service.diff(conn, "demo-seq").empty  # draft == current version
        v1_yaml = service.export(conn, "demo-seq", version=1)
    assert "demo-nudge" in v1_yaml and "tagit" not in v1_yaml


def test_publish_revalidates_against_the_store(workspace: Workspace) -> None:
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(segment).values(name="vips", rule={"field": "score", "ge": 10}))
    apply(workspace, BASE.replace("description: test", "entry: {type: segment, segment: vips}"))
    with write_tx(workspace.engine) as conn:
        conn.execute(delete(segment))
    with pytest.raises(ProblemsError) as exc:
        publish(workspace)
    assert exc.value.lines == ["sequence demo-seq: entry.segment: unknown segment 'vips'"]


def _enroll(conn, lead_id: int, seq_id: int, version_id: int, node: str, status: str = "waiting") -> int:  # type: ignore[no-untyped-def]
    return int(conn.execute(insert(enrollment).values(
        lead_id=lead_id, sequence_id=seq_id, version_id=version_id, node_id=node, status=status, path=[],
    )).inserted_primary_key[0])


def test_publish_migrate_moves_waiting_enrollments_by_node_id(workspace: Workspace) -> None:
    apply(workspace, BASE)
    v1 = publish(workspace)
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        sid = service.get_row(conn, "demo-seq")["id"]
        leads = [add_lead(conn, f"l{i}@example.com", now) for i in range(5)]
        keep_node = _enroll(conn, leads[0], sid, v1.version_id, "pause")  # wait → still a wait: moves
        removed = _enroll(conn, leads[1], sid, v1.version_id, "nudge")  # removed in v2: stays
        kind = _enroll(conn, leads[2], sid, v1.version_id, "opened")  # wait_for → wait in v2: stays
        active = _enroll(conn, leads[3], sid, v1.version_id, "pause", status="active")  # not waiting: stays
        done = _enroll(conn, leads[4], sid, v1.version_id, "done", status="done")
    edited = (BASE.replace("      - id: nudge\n        send: {template: demo-nudge}\n",
                           "      - id: nudge2\n        send: {template: demo-nudge}\n")
              .replace("    wait_for: {events: [{kind: open, node: hello}], window: 2d}\n    no:\n"
                       "      - id: nudge2\n        send: {template: demo-nudge}\n",
                       "    wait: {duration: 2d}\n"))
    apply(workspace, edited)
    v2 = publish(workspace, migrate=True)
    assert v2.migration is not None
    assert (v2.migration.moved, v2.migration.stayed) == (1, 2)
    assert v2.migration.stayed_by_reason == {"node removed": 1, "node kind changed": 1}
    with workspace.engine.connect() as conn:
        versions = dict(conn.execute(select(enrollment.c.id, enrollment.c.version_id)).all())
        last = conn.execute(select(audit.c.after).where(audit.c.action == "publish")
                            .order_by(audit.c.id.desc())).scalars().first()
    assert versions[keep_node] == v2.version_id
    assert versions[removed] == versions[kind] == versions[active] == versions[done] == v1.version_id
    assert last["migration"] == {"moved": 1, "stayed": 2,
                                 "stayed_by_reason": {"node removed": 1, "node kind changed": 1}}


def test_publish_without_migrate_leaves_enrollments_on_their_version(workspace: Workspace) -> None:
    apply(workspace, BASE)
    v1 = publish(workspace)
    with write_tx(workspace.engine) as conn:
        sid = service.get_row(conn, "demo-seq")["id"]
        eid = _enroll(conn, add_lead(conn, "x@example.com", workspace.clock.now()), sid, v1.version_id, "pause")
    apply(workspace, BASE.replace("window: 2d", "window: 5d"))
    v2 = publish(workspace)
    assert v2.migration is None and v2.number == 2
    with workspace.engine.connect() as conn:
        assert conn.execute(select(enrollment.c.version_id).where(enrollment.c.id == eid)).scalar_one() == v1.version_id
        summary = {s.name: s for s in service.list_sequences(conn)}["demo-seq"]
    assert summary.enrolled == {"waiting": 1} and summary.version == 2 and not summary.draft_changed


def test_pause_resume_and_list(workspace: Workspace) -> None:
    apply(workspace, BASE)
    with write_tx(workspace.engine) as conn, pytest.raises(NurtureError, match="never been published"):
        service.resume(conn, "demo-seq", user="t", now=workspace.clock.now())
    with workspace.engine.connect() as conn:
        [s] = service.list_sequences(conn)
    assert (s.status, s.version, s.draft_changed, s.enrolled) == ("draft", None, True, {})
    publish(workspace)
    with write_tx(workspace.engine) as conn:
        assert service.pause(conn, "demo-seq", user="t", now=workspace.clock.now()) == "active"
    apply(workspace, BASE.replace("window: 2d", "window: 4d"))
    with workspace.engine.connect() as conn:
        [s] = service.list_sequences(conn)
    assert (s.status, s.version, s.draft_changed) == ("paused", 1, True)
    publish(workspace)  # publishing keeps a paused sequence paused
    with write_tx(workspace.engine) as conn:
        assert service.get_row(conn, "demo-seq")["status"] == "paused"
        assert service.resume(conn, "demo-seq", user="t", now=workspace.clock.now()) == "paused"
        assert service.get_row(conn, "demo-seq")["status"] == "active"
        actions = [r.action for r in conn.execute(select(audit.c.action).where(audit.c.entity == "sequence"))]
    assert actions.count("pause") == 1 and actions.count("resume") == 1


def test_unknown_sequence_is_a_clear_error(workspace: Workspace) -> None:
    with workspace.engine.connect() as conn, pytest.raises(NotFoundError, match="sequence 'nope' not found"):
        service.export(conn, "nope")


def test_load_version_is_cached_and_immutable(workspace: Workspace) -> None:
    apply(workspace, BASE)
    v1 = publish(workspace)
    service.clear_cache()
    with workspace.engine.connect() as conn:
        a = service.load_version(conn, v1.version_id)
        b = service.load_version(conn, v1.version_id)
        assert a is b
        assert a.successor("opened", "yes") == "pause" and a.successor("opened", "no") == "nudge"
        with pytest.raises(NotFoundError):
            service.load_version(conn, 999_999)


def test_save_draft_from_an_edited_definition(workspace: Workspace) -> None:
    apply(workspace, BASE)
    with write_tx(workspace.engine) as conn:
        defn = service.draft_definition(conn, "demo-seq")
        defn.steps[2].wait.duration = "5d"  # type: ignore[union-attr]
        res = service.save_draft(conn, defn, user="editor", now=workspace.clock.now())
        assert res.changed and not res.created
        assert service.draft_definition(conn, "demo-seq").steps[2].wait.duration == "5d"  # type: ignore[union-attr]
        defn.steps[2].wait.duration = "0s"  # type: ignore[union-attr]
        with pytest.raises(ProblemsError) as exc:
            service.save_draft(conn, defn, user="editor", now=workspace.clock.now())
    assert exc.value.lines[0].startswith("sequence demo-seq: steps.pause.wait: duration must be > 0")


def test_duplicate_copies_the_draft_under_a_new_name(workspace: Workspace) -> None:
    apply(workspace, BASE)
    with write_tx(workspace.engine) as conn:
        result = service.duplicate_sequence(conn, "demo-seq", "demo-copy", user="tester", now=workspace.clock.now())
        assert result.created
        with pytest.raises(ValidationError, match="exists already"):
            service.duplicate_sequence(conn, "demo-seq", "DEMO-copy", user="tester", now=workspace.clock.now())
    with workspace.engine.connect() as conn:
        copy = service.draft_definition(conn, "demo-copy")
        assert copy.name == "demo-copy"
        assert copy.steps == service.draft_definition(conn, "demo-seq").steps


def test_delete_is_refused_while_used_and_allowed_when_never_used(workspace: Workspace) -> None:
    apply(workspace, BASE)
    now = workspace.clock.now()
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(segment).values(name="in demo", rule={"in_sequence": "demo-seq"}))
    with write_tx(workspace.engine) as conn, pytest.raises(ValidationError, match="still used by segment in demo"):
        service.delete_sequence(conn, "demo-seq", user="tester", now=now)
    with write_tx(workspace.engine) as conn:
        conn.execute(segment.delete())
        service.delete_sequence(conn, "demo-seq", user="tester", now=now)
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sequence)).scalar_one() == 0
        assert conn.execute(select(audit.c.action).where(audit.c.entity == "sequence")
                            .order_by(audit.c.id.desc())).scalar() == "delete"


def test_delete_is_refused_while_leads_are_enrolled(samples_ws: Workspace) -> None:
    from nurture_tui.engine.enroll import enroll_lead

    apply(samples_ws, BASE)
    publish(samples_ws)
    now = samples_ws.clock.now()
    with write_tx(samples_ws.engine) as conn:
        lead_id = add_lead(conn, "enrolled@example.com", now)
        enroll_lead(conn, lead_id, "demo-seq", now)
    with write_tx(samples_ws.engine) as conn, pytest.raises(ValidationError, match="1 leads are enrolled"):
        service.delete_sequence(conn, "demo-seq", user="tester", now=now)


def test_the_editor_may_store_a_draft_with_problems_but_not_publish_it(workspace: Workspace) -> None:
    apply(workspace, BASE)
    now = workspace.clock.now()
    with workspace.engine.connect() as conn:
        defn = service.draft_definition(conn, "demo-seq")
    broken = SequenceDef.model_validate({**defn.to_json(), "steps": [
        {**defn.steps[0].model_dump(exclude_none=True), "goto": "nowhere"}, *[s.model_dump(exclude_none=True)
                                                                             for s in defn.steps[1:]]]})
    with write_tx(workspace.engine) as conn, pytest.raises(ProblemsError):
        service.save_draft(conn, broken, user="tester", now=now)  # a file-like save refuses it
    with write_tx(workspace.engine) as conn:
        service.save_draft(conn, broken, user="tester", now=now, allow_problems=True)
    with workspace.engine.connect() as conn:
        assert service.draft_definition(conn, "demo-seq").steps[0].goto == "nowhere"
    with write_tx(workspace.engine) as conn, pytest.raises(ProblemsError):
        service.publish_report(conn, "demo-seq", user="tester", now=now)
