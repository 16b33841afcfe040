"""Publishing an edited program, by keyboard alone: a published program with leads in flight at its
nodes (seeded through the store), an edit in the editor (a node moved, a branch condition changed), the
publish dialog's YAML diff (unified, then side by side) and in-flight table, publish with migration — and
the leads are where the dialog said they would be, which the live counters (`c`, `v` per version) show."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from sqlalchemy import func, insert, select
from textual.widgets import Input
from tui_support import T0, make_test_app, wait_for

from nurture_tui.console.sequence_diff import YamlDiff
from nurture_tui.sequences.model import SequenceDef
from nurture_tui.sequences.service import apply_text, get_row, publish_report
from nurture_tui.store import tables as t
from nurture_tui.store.engine import write_tx
from nurture_tui.tui.screens.dialogs.node_form import NodeForm
from nurture_tui.tui.screens.dialogs.sequence_publish import PublishModal
from nurture_tui.tui.screens.sequence_editor import SequenceEditorScreen
from nurture_tui.tui.widgets.sequences.yaml_diff import YamlDiffView
from nurture_tui.workspace import Workspace

SIZE = (120, 40)
PROGRAM = """\
name: fit-check
steps:
  - id: intro
    send: {template: welcome-1}
  - id: settle
    wait: {duration: 2d}
  - id: fit
    branch:
      rule: {field: score, ge: 50}
    yes:
      - id: hot
        action: {type: adjust_score, points: 10}
    no:
      - id: nudge
        send: {template: welcome-2}
"""
#: (node, status, leads) in flight on v1
IN_FLIGHT = [("intro", "active", 3), ("settle", "waiting", 8), ("nudge", "waiting", 4)]


def published_with_leads(ws: Workspace) -> None:
    with write_tx(ws.engine) as conn:
        apply_text(conn, PROGRAM, "fit-check.yaml", user="alice", now=T0)
        version_id = publish_report(conn, "fit-check", user="alice", now=T0).version_id
        seq_id = get_row(conn, "fit-check")["id"]
        rows, lead_id = [], 40
        for node, status, n in IN_FLIGHT:
            for _ in range(n):
                rows.append({"lead_id": lead_id, "sequence_id": seq_id, "version_id": version_id, "node_id": node,
                             "status": status, "due_at": T0 + timedelta(hours=1), "entered_at": T0 - timedelta(days=3),
                             "node_entered_at": T0 - timedelta(days=1)})
                lead_id += 1
        conn.execute(insert(t.enrollment), rows)
        conn.execute(insert(t.node_counter), [  # (the engine's cumulative counters: here is counted live)
            {"version_id": version_id, "node_id": node, "entered": entered, "left": left, "no": no}
            for node, entered, left, no in (("intro", 15, 12, 0), ("settle", 12, 4, 0), ("fit", 4, 4, 4),
                                            ("nudge", 4, 0, 0))])


def test_yaml_diff_unified_and_side_by_side() -> None:
    old = SequenceDef.model_validate({"name": "x", "steps": [{"id": "a", "wait": {"duration": "1d"}},
                                                             {"id": "b", "wait": {"duration": "2d"}}]})
    new = SequenceDef.model_validate({"name": "x", "steps": [{"id": "b", "wait": {"duration": "2d"}},
                                                             {"id": "a", "wait": {"duration": "3d"}}]})
    diff = YamlDiff.of(old, new)
    unified = [(u.tag, u.text) for u in diff.unified()]
    assert unified[0] == ("@", "@@ -1,6 +1,6 @@")
    assert ("-", "  wait: {duration: 1d}") in unified and ("+", "  wait: {duration: 3d}") in unified
    assert diff.counts() == (len([u for u in unified if u[0] == "+"]), len([u for u in unified if u[0] == "-"]))
    rows = diff.side_by_side()
    assert rows[0].tag == "hunk"
    assert {r.tag for r in rows[1:]} <= {"equal", "replace", "insert", "delete"}
    assert [r.old for r in rows[1:] if r.old is not None] == diff.old  # every line, once, in order
    assert [r.new for r in rows[1:] if r.new is not None] == diff.new
    assert YamlDiff.of(old, old).same and YamlDiff.of(old, old).unified() == []
    assert all(u.tag == "+" for u in YamlDiff.of(None, new).unified()[1:])  # nothing published: all new


def test_live_counters_console_call(seeded_ws: Workspace) -> None:
    """`SequenceLive.counts`: the engine's counters with "here" counted from the enrollments; a version that
    is not live (or not there) falls back to the sum; an unpublished program has no versions."""
    from nurture_tui.console.facade import Console
    from nurture_tui.console.sequence_live import SequenceLive

    published_with_leads(seeded_ws)
    console = Console.open(seeded_ws)
    try:
        live = SequenceLive(console.session)
        summed = live.counts("fit-check")
        assert summed.versions == [1] and summed.version is None and summed.scope == "v1"
        assert {n: (c.waiting, c.entered, c.no) for n, c in summed.counts.items()} == {
            "intro": (3, 15, 0), "settle": (8, 12, 0), "fit": (0, 4, 4), "nudge": (4, 4, 0)}
        assert live.counts("fit-check", 1).version == 1
        assert live.counts("fit-check", 7).version is None  # no such live version: the sum
        with write_tx(seeded_ws.engine) as conn:
            apply_text(conn, PROGRAM.replace("fit-check", "unpublished"), "u.yaml", user="alice", now=T0)
        assert live.counts("unpublished").versions == [] and live.counts("unpublished").scope == "not published"
    finally:
        console.close()


async def test_edit_a_published_program_see_the_diff_publish_with_migration(seeded_ws: Workspace) -> None:
    published_with_leads(seeded_ws)
    app = make_test_app(seeded_ws, initial_mode="sequences")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(getattr(app.screen, "rows", None)))
        await app.push_screen(SequenceEditorScreen("fit-check"))
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen) and app.screen.draft is not None)
        editor = app.screen
        await wait_for(pilot, lambda: editor.checked_revision == editor.draft.revision)

        await pilot.press("down", "down", "shift+up")  # settle before intro
        await wait_for(pilot, lambda: [s.id for s in editor.draft.defn.steps] == ["settle", "intro", "fit"])
        await pilot.press("J", "e")  # the next branch: fit; its form
        await wait_for(pilot, lambda: isinstance(app.screen, NodeForm))
        await pilot.press("enter")  # from the id to the condition
        assert isinstance(app.focused, Input) and app.focused.value == "{field: score, ge: 50}"
        await pilot.press("end", "ctrl+u", *"score>=80", "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen))
        branch = editor.draft.defn.steps[2].branch
        assert branch is not None and branch.rule == {"all": [{"field": "score", "op": "ge", "value": 80}]}

        await pilot.press("P")  # saves, then the dialog
        await wait_for(pilot, lambda: isinstance(app.screen, PublishModal))
        modal = app.screen
        preview = modal.preview
        assert "fit" in preview.diff.changed and not preview.problems
        lines = [(u.tag, u.text) for u in preview.lines.unified()]
        assert ("-", "    rule: {field: score, ge: 50}") in lines
        assert ("+", "      - {field: score, op: ge, value: 80}") in lines, lines
        assert ("+", "- id: settle") in lines
        view = modal.query_one("#diff", YamlDiffView)
        assert "+       - {field: score, op: ge, value: 80}" in str(view.render())
        await pilot.press("s")  # side by side
        assert view.side_by_side and "side by side" in str(modal.query_one("#diff-heading").render())
        console = Console(width=110, record=True)
        console.print(view.renderable_now())
        shown = console.export_text()
        assert "published" in shown and "draft" in shown
        # the changed line on one row, both sides; the moved step on its side only
        assert any("rule: {field: score, ge: 50}" in line and "~" in line for line in shown.splitlines())
        assert any(line.strip().startswith(">  - id: settle") for line in shown.splitlines())
        shown_flights = {f.node_id: (f.waiting, f.active, f.moves) for f in preview.in_flight}
        assert shown_flights == {"intro": (0, 3, True), "settle": (8, 0, True), "nudge": (4, 0, True)}

        await pilot.press("m")  # publish and migrate
        await wait_for(pilot, lambda: isinstance(app.screen, SequenceEditorScreen) and editor.state.version == 2)
        with seeded_ws.engine.connect() as conn:
            seq_id = get_row(conn, "fit-check")["id"]
            where = dict(((v, n), c) for v, n, c in conn.execute(
                select(t.sequence_version.c.number, t.enrollment.c.node_id, func.count())
                .join(t.sequence_version, t.sequence_version.c.id == t.enrollment.c.version_id)
                .where(t.enrollment.c.sequence_id == seq_id)
                .group_by(t.sequence_version.c.number, t.enrollment.c.node_id)))
        expected = {}
        for node, (waiting, active, moves) in shown_flights.items():
            if waiting:
                expected[(2 if moves else 1, node)] = waiting
            if active:
                expected[(1, node)] = active
        assert where == expected == {(1, "intro"): 3, (2, "settle"): 8, (2, "nudge"): 4}

        # the live counters: summed over v1 (leads pinned) and v2, then per version with `v`
        cursor = editor.seq_tree.cursor_key
        await pilot.press("c")
        await wait_for(pilot, lambda: editor.live is not None)
        live = editor.live
        assert live.versions == [1, 2] and live.version is None and live.scope == "v1+v2"
        assert live.counts["settle"].waiting == 8 and live.counts["intro"].waiting == 3
        assert live.counts["fit"].no == 4 and live.counts["intro"].entered == 15
        label = str(editor.seq_tree.nodes_by_key[((0,), False)].label)
        assert "8 here · 12 in" in label
        assert "counters v1+v2" in str(editor.query_one("#name").render())
        assert editor.seq_tree.cursor_key == cursor  # relabelled in place
        await pilot.press("v")
        await wait_for(pilot, lambda: editor.live is not None and editor.live.version == 1)
        assert editor.live.counts["settle"].waiting == 0 and editor.live.counts["intro"].waiting == 3
        await pilot.press("v")
        await wait_for(pilot, lambda: editor.live is not None and editor.live.version == 2)
        assert editor.live.counts["settle"].waiting == 8 and "intro" not in editor.live.counts
        assert "[no leads yet]" in str(editor.seq_tree.nodes_by_key[((1,), False)].label)
        await pilot.press("c")
        assert editor.live is None and "here" not in str(editor.seq_tree.nodes_by_key[((0,), False)].label)
