"""What the sequence editor hands to other owners of a draft shares no mutable state with it: the undo history
(kept as JSON text so the cyclic GC has nothing to scan in it), the frozen copy a check worker thaws, and the
snapshot. Editing either side leaves the other as it was."""

from __future__ import annotations

from nurture_tui.console.sequence_draft import MAX_UNDO, SequenceDraft
from nurture_tui.sequences.codec import dump_definition
from nurture_tui.sequences.model import SequenceDef, Step
from nurture_tui.sequences.validate import Catalog, default_rule_parser

CATALOG = Catalog(templates={"t-1"}, segment_exists=None, parse_rule=default_rule_parser())


def program() -> SequenceDef:
    return SequenceDef.model_validate({"name": "copies", "steps": [
        {"id": "send-1", "send": {"template": "t-1"}},
        {"id": "opened", "wait_for": {"events": [{"kind": "open", "node": "send-1"}], "window": "3d"},
         "yes": [{"id": "score", "action": {"type": "adjust_score", "points": 5}}],
         "no": [{"id": "again", "send": {"template": "t-1"}, "goto": "opened"}]},
        {"id": "ab", "split": {"arms": [{"name": "a", "weight": 50, "steps": [{"id": "wait-a", "wait": {
            "duration": "1d"}}]}, {"name": "b", "weight": 50}]}},
        {"id": "done", "exit": {}},
    ]})


def test_the_loaded_definition_is_a_copy() -> None:
    defn = program()
    draft = SequenceDraft(defn, CATALOG)
    draft.rename((0,), "welcome")
    draft.steps_at(())[1].yes[0].action.points = 9  # type: ignore[index, union-attr]
    assert defn == program()


def test_a_thawed_copy_equals_the_draft_then_and_shares_nothing_with_it() -> None:
    draft = SequenceDraft(program(), CATALOG)
    frozen = draft.frozen()
    before = dump_definition(draft.defn)
    copy = SequenceDraft.thaw(frozen, CATALOG)
    assert copy.defn == draft.defn and copy.catalog is CATALOG and copy.revision == 0
    assert copy.problems() == draft.problems()

    draft.rename((0,), "welcome")  # the draft goes on: the copy is as it was frozen
    draft.move((1,), 1)
    draft.step((2, "yes", 0)).action.points = 1  # type: ignore[union-attr]
    assert dump_definition(copy.defn) == before
    assert dump_definition(SequenceDraft.thaw(frozen).defn) == before

    copy.delete((3,))  # and the other way round
    copy.step((1, "no", 0)).goto = None
    assert draft.find("done") is not None and draft.step((2, "no", 0)).goto == "opened"


def test_undo_history_is_not_shared_with_the_draft() -> None:
    draft = SequenceDraft(program(), CATALOG)
    original = dump_definition(draft.defn)
    draft.rename((0,), "welcome")  # rewrites the event node of `opened` too
    renamed = dump_definition(draft.defn)
    step = draft.step((1, "yes", 0))
    draft.replace((1, "yes", 0), Step.model_validate({"id": "score", "action": {"type": "adjust_score",
                                                                                    "points": 7}}))
    step.action.points = 100  # type: ignore[union-attr]  # the replaced step object, edited in place
    assert draft.undo()
    assert dump_definition(draft.defn) == renamed
    assert draft.step((1, "yes", 0)).action.points == 5  # type: ignore[union-attr]
    draft.step((1, "no", 0)).label = "changed behind the history's back"
    assert draft.undo()
    assert dump_definition(draft.defn) == original
    assert draft.redo()
    assert draft.step((1, "no", 0)).label == "changed behind the history's back"  # redo holds that object
    assert draft.redo()
    assert draft.step((1, "yes", 0)).action.points == 7  # type: ignore[union-attr]
    assert draft.revision == 6 and draft.changes == 2


def test_every_state_comes_back_on_undo_and_the_history_is_capped() -> None:
    draft = SequenceDraft(program(), CATALOG)
    states = [dump_definition(draft.defn)]
    for i in range(MAX_UNDO + 5):
        draft.move((0,), 1) if i % 2 == 0 else draft.move((1,), -1)
        states.append(dump_definition(draft.defn))
    undone = 0
    while draft.undo():
        undone += 1
        assert dump_definition(draft.defn) == states[-1 - undone]
    assert undone == MAX_UNDO
    for i in range(MAX_UNDO):
        assert draft.redo()
        assert dump_definition(draft.defn) == states[len(states) - 1 - MAX_UNDO + i + 1]
    assert not draft.redo()
