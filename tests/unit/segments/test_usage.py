"""Who uses a segment (other segments, sequence drafts, live published versions), and the delete, rename and
duplicate rules built on it — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, insert, select, update

from nurture_tui.errors import ValidationError
from nurture_tui.segments import service
from nurture_tui.segments.usage import SequenceRef
from nurture_tui.sequences import service as sequences
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import audit, enrollment, lead, segment, segment_member, sequence
from nurture_tui.workspace import Workspace

WELCOME = """\
name: welcome
entry: {type: segment, segment: Hot}
goal: {in_segment: Hot}
exit_when:
  - {field: score, ge: 90}
  - {any: [{field: stage, eq: customer}, {in_segment: hot}]}
steps:
  - id: check
    branch: {segment: Hot}
    yes:
      - id: deep
        branch: {rule: {all: [{field: score, ge: 1}, {in_segment: HOT}]}}
        no:
          - id: wait
            wait: {duration: 1d}
  - id: done
    exit: {reason: finished}
"""
# The same sequence, no longer using Hot anywhere.
WELCOME_WITHOUT = WELCOME.replace("entry: {type: segment, segment: Hot}", "entry: {type: manual}") \
    .replace("goal: {in_segment: Hot}", "goal: {field: stage, eq: customer}") \
    .replace("{in_segment: hot}", "{field: score, ge: 99}") \
    .replace("branch: {segment: Hot}", "branch: {segment: Other}") \
    .replace("{in_segment: HOT}", "{field: score, ge: 2}")
# Only the entry uses Hot.
WELCOME_ENTRY_ONLY = WELCOME_WITHOUT.replace("entry: {type: manual}", "entry: {type: segment, segment: hot}")


def _seg(conn: Connection, ws: Workspace, name: str, rule: Any, **kw: Any) -> service.SegmentInfo:
    return service.save_segment(conn, name, rule, user="ann", now=ws.clock.now(), **kw)


def _apply(ws: Workspace, text: str) -> None:
    with write_tx(ws.engine) as conn:
        sequences.apply_text(conn, text, "welcome.yaml", user="ann", now=ws.clock.now())


def _publish(ws: Workspace, name: str = "welcome") -> int:
    with write_tx(ws.engine) as conn:
        return sequences.publish(conn, name, user="ann", now=ws.clock.now())


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    """Hot; Other; Warm uses Hot; Warmer uses Warm (so only indirectly Hot)."""
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(lead), [{"email": f"l{i}@x.io", "score": float(i * 10)} for i in range(6)])
        _seg(conn, workspace, "Hot", {"field": "score", "ge": 30}, materialize=True)
        _seg(conn, workspace, "Other", {"field": "score", "lt": 5})
        _seg(conn, workspace, "Warm", {"any": [{"in_segment": "hot"}, {"field": "score", "eq": 10}]},
             materialize=True)
        _seg(conn, workspace, "Warmer", {"all": [{"in_segment": "Warm"}]})
    return workspace


def _users(ws: Workspace, name: str) -> service.SegmentUsers:
    with ws.engine.connect() as conn:
        return service.segment_users(conn, name)


def test_users_are_direct_segments_drafts_and_published_versions_with_places(ws: Workspace) -> None:
    assert _users(ws, "Hot") == service.SegmentUsers(segment="Hot", segments=("Warm",))
    _apply(ws, WELCOME)
    _publish(ws)
    _apply(ws, WELCOME_ENTRY_ONLY)
    users = _users(ws, "hot")
    published = tuple(SequenceRef("welcome", 1, True, p, n) for p, n in [
        ("entry", None), ("goal", None), ("exit_when[1]", None), ("branch check", "check"),
        ("branch deep rule", "deep")])
    assert users.segments == ("Warm",)
    assert users.sequences == (*published, SequenceRef("welcome", None, False, "entry"))
    assert users.published == published and users.drafts == (SequenceRef("welcome", None, False, "entry"),)
    assert users.describe() == ("segment Warm, sequence welcome (published v1: entry, goal, exit_when[1], "
                                "branch check, branch deep rule; draft: entry)")
    assert _users(ws, "Warmer").empty and _users(ws, "Warm").segments == ("Warmer",)
    assert [(r.label, r.place) for r in _users(ws, "Other").sequences] == [("draft", "branch check")]
    _apply(ws, "name: by-rule\nentry: {type: segment, rule: {none: [{in_segment: Hot}]}}\n"
               "steps:\n  - {id: pause, wait: {duration: 1d}}\n")
    assert [(r.sequence, r.label, r.place) for r in _users(ws, "Hot").sequences][:1] == \
        [("by-rule", "draft", "entry rule")]


def test_an_older_version_counts_while_enrollments_still_run_on_it(ws: Workspace) -> None:
    _apply(ws, WELCOME)
    v1 = _publish(ws)
    _apply(ws, WELCOME_WITHOUT)
    _publish(ws)
    assert _users(ws, "Hot").sequences == ()  # v1 is history: nothing runs on it
    with write_tx(ws.engine) as conn:
        sid = conn.execute(select(sequence.c.id)).scalar_one()
        lid = conn.execute(select(lead.c.id).limit(1)).scalar_one()
        conn.execute(insert(enrollment).values(lead_id=lid, sequence_id=sid, version_id=v1, node_id="check",
                                               status="waiting", entered_at=ws.clock.now()))
    users = _users(ws, "Hot")
    assert {(r.label, r.current) for r in users.sequences} == {("published v1", False)}
    with write_tx(ws.engine) as conn:
        conn.execute(update(enrollment).values(status="done"))
    assert _users(ws, "Hot").sequences == ()


def test_delete_is_refused_with_every_user_on_one_line(ws: Workspace) -> None:
    _apply(ws, WELCOME)
    _publish(ws)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn, pytest.raises(ValidationError) as err:
        service.delete_segment(conn, "hot", user="ann", now=now)
    assert str(err.value) == ("segment 'Hot': still used by segment Warm, sequence welcome (published v1: entry, goal, "
                              "exit_when[1], branch check, branch deep rule; draft: entry, goal, exit_when[1], "
                              "branch check, branch deep rule)")
    assert "\n" not in str(err.value)
    # A draft alone is a user too (deleting would leave the draft unpublishable).
    _apply(ws, WELCOME_ENTRY_ONLY)
    _publish(ws)
    _apply(ws, WELCOME_WITHOUT)
    with write_tx(ws.engine) as conn:
        service.save_segment(conn, "Warm", {"field": "score", "eq": 10}, user="ann", now=now)
        with pytest.raises(ValidationError, match=r"^segment 'Hot': still used by sequence welcome "
                                                  r"\(published v2: entry\)$"):
            service.delete_segment(conn, "Hot", user="ann", now=now)
    _publish(ws)
    with write_tx(ws.engine) as conn:
        hot_id = service.get_segment(conn, "Hot").id
        service.delete_segment(conn, "Hot", user="ann", now=now)
        assert service.find_segment(conn, "Hot") is None
        assert conn.execute(select(segment_member).where(segment_member.c.segment_id == hot_id)).first() is None


def test_rename_rewrites_segments_and_drafts_in_one_audited_transaction(ws: Workspace) -> None:
    _apply(ws, WELCOME)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        warm_id = service.get_segment(conn, "Warm").id
        before_members = {r[0] for r in conn.execute(select(segment_member.c.lead_id)
                                                     .where(segment_member.c.segment_id == warm_id))}
        result = service.rename_segment(conn, "hot", "Hot leads", user="bob", now=now)
    assert result == service.RenameResult("Hot", "Hot leads", ("Warm",), ("welcome",))
    assert _users(ws, "Hot").empty
    users = _users(ws, "Hot leads")
    assert users.segments == ("Warm",) and len(users.drafts) == 5 and not users.published
    with ws.engine.connect() as conn:
        warm = service.get_segment(conn, "Warm")
        assert warm.rule.to_data() == {"any": [{"in_segment": "Hot leads"},
                                               {"field": "score", "op": "eq", "value": 10}]}
        assert sequences.check_draft(conn, "welcome") == []  # the draft is valid against the store
        draft = sequences.draft_definition(conn, "welcome")
        assert (draft.entry.segment, draft.goal, draft.steps[0].branch and draft.steps[0].branch.segment) == \
            ("Hot leads", {"in_segment": "Hot leads"}, "Hot leads")
        assert draft.exit_when[0] == {"field": "score", "ge": 90}  # untouched rules keep their shape
        members = {r[0] for r in conn.execute(select(segment_member.c.lead_id)
                                              .where(segment_member.c.segment_id == warm.id))}
        assert members == before_members and service.get_segment(conn, "Hot leads").materialized
        trail = conn.execute(select(audit.c.user, audit.c.action, audit.c.entity, audit.c.before, audit.c.after)
                             .where(audit.c.action.in_(["segment.rename", "segment.update"]), audit.c.user == "bob")
                             .order_by(audit.c.id)).all()
    assert [(t.action, t.entity) for t in trail] == [("segment.update", "segment"), ("segment.rename", "sequence"),
                                                     ("segment.rename", "segment")]
    assert trail[-1].before == {"name": "Hot"}
    assert trail[-1].after == {"name": "Hot leads", "segments": ["Warm"], "sequences": ["welcome"]}
    # The renamed draft publishes (its references resolve), and from then on the version holds the name.
    _publish(ws)
    assert {r.label for r in _users(ws, "Hot leads").sequences} == {"published v1", "draft"}


def test_rename_is_refused_while_a_published_version_uses_it(ws: Workspace) -> None:
    _apply(ws, WELCOME_ENTRY_ONLY)
    _publish(ws)
    now = ws.clock.now()
    with write_tx(ws.engine) as conn, pytest.raises(ValidationError) as err:
        service.rename_segment(conn, "Hot", "Scorching", user="bob", now=now)
    assert str(err.value) == ("segment 'Hot': cannot rename: published sequence versions use it (sequence welcome "
                              "(published v1: entry)); publish drafts that no longer use it first")
    with ws.engine.connect() as conn:  # nothing half-written
        assert service.find_segment(conn, "Scorching") is None
        assert service.get_segment(conn, "Warm").rule.to_data()["any"][0] == {"in_segment": "hot"}
    _apply(ws, WELCOME_WITHOUT)
    _publish(ws)
    with write_tx(ws.engine) as conn:
        assert service.rename_segment(conn, "Hot", "Scorching", user="bob", now=now).sequences == ()


@pytest.mark.parametrize(("new", "message"), [
    ("warm", "new name: a segment named 'Warm' already exists"),
    ("  ", "new name: a segment name is 1–120 characters, got ''"),
    ("x" * 121, "new name: a segment name is 1–120 characters"),
    ("Hot", "new name: segment 'Hot' already has that name"),
])
def test_rename_validates_the_new_name(ws: Workspace, new: str, message: str) -> None:
    with write_tx(ws.engine) as conn, pytest.raises(ValidationError, match=f"^{message}"):
        service.rename_segment(conn, "Hot", new, user="bob", now=ws.clock.now())


def test_rename_changing_only_case_is_allowed(ws: Workspace) -> None:
    with write_tx(ws.engine) as conn:
        service.rename_segment(conn, "Hot", "HOT", user="bob", now=ws.clock.now())
        assert service.get_segment(conn, "hot").name == "HOT"
        assert service.get_segment(conn, "Warm").rule.to_data()["any"][0] == {"in_segment": "HOT"}


def test_duplicate_copies_rule_description_and_hot_switch(ws: Workspace) -> None:
    now = ws.clock.now()
    with write_tx(ws.engine) as conn:
        service.save_segment(conn, "Warm", {"any": [{"in_segment": "Hot"}]}, user="ann", now=now,
                             description="warm ones")
        copy = service.duplicate_segment(conn, "warm", "Warm copy", user="cy", now=now)
        warm = service.get_segment(conn, "Warm")
        assert (copy.rule, copy.description, copy.materialized, copy.cached_count) == \
            (warm.rule, "warm ones", True, warm.cached_count)
        assert copy.id != warm.id and service.segment_users(conn, "Hot").segments == ("Warm", "Warm copy")
        with pytest.raises(ValidationError, match=r"^new name: a segment named 'Hot' already exists$"):
            service.duplicate_segment(conn, "Warm", "hot", user="cy", now=now)
        action = conn.execute(select(audit.c.action).where(audit.c.user == "cy")).scalars().all()
    assert action == ["segment.create"]
    with ws.engine.connect() as conn:
        assert conn.execute(select(segment.c.name).order_by(segment.c.name)).scalars().all() == \
            ["Hot", "Other", "Warm", "Warm copy", "Warmer"]
