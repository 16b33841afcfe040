"""Pilot tests of the template editor, by keys alone: create with merge fields, preview for a chosen lead,
every problem at its line, fix and save, the saved version rendered by the engine's compose path; the
list's duplicate / delete / test send, versions and diffs, the unsaved-change guard, bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from textual import events
from textual.widgets import DataTable, Input, TextArea
from tui_support import T0, make_test_app, wait_for

from nurture_tui.mail.compose import SendRequest, compose_messages
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.store import tables as t
from nurture_tui.tui.screens.dialogs.confirm import ConfirmModal
from nurture_tui.tui.screens.dialogs.merge_fields import MergeFieldModal
from nurture_tui.tui.screens.dialogs.prompt import PromptModal
from nurture_tui.tui.screens.dialogs.template_versions import TemplateVersionsModal
from nurture_tui.tui.screens.template_editor import TemplateEditorScreen
from nurture_tui.tui.screens.templates import TemplatesScreen
from nurture_tui.tui.widgets.templates.preview import DraftPreviewView
from nurture_tui.tui.widgets.templates.problems import ProblemsPanel
from nurture_tui.workspace import Workspace

SIZE = (120, 36)


def _template(ws: Workspace, name: str) -> dict[str, Any] | None:
    with ws.engine.connect() as conn:
        row = conn.execute(select(t.template).where(t.template.c.name == name)).mappings().first()
        return dict(row) if row else None


def _versions(ws: Workspace, name: str) -> int:
    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(t.template_version).join(
            t.template, t.template.c.id == t.template_version.c.template_id).where(t.template.c.name == name))
            .scalar_one())


async def _templates(pilot: Any) -> TemplatesScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, TemplatesScreen)
                   and app.screen.query_one("#list", DataTable).row_count >= 2)
    return app.screen  # type: ignore[no-any-return]


async def _editor(pilot: Any) -> TemplateEditorScreen:
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, TemplateEditorScreen) and app.screen.opened)
    return app.screen  # type: ignore[no-any-return]


async def _settled(pilot: Any, editor: TemplateEditorScreen) -> None:
    """Wait until the preview and problems show the current draft."""
    await pilot.pause()
    await wait_for(pilot, lambda: editor.shown_generation == editor.generation)


def _preview_text(editor: TemplateEditorScreen) -> str:
    preview = editor.query_one(DraftPreviewView).preview
    assert preview is not None
    return "\n".join((preview.subject, preview.html_text, preview.text))


def _messages(app: Any) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_create_preview_for_a_lead_every_error_at_its_line_fix_and_the_engine_renders_it(
        seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _templates(pilot)
        await pilot.press("n")
        editor = await _editor(pilot)
        assert editor.query_one("#name", Input).has_focus
        await pilot.press(*"spring-promo", "tab", "tab", *"awareness", "tab")
        assert editor.query_one("#subject", TextArea).has_focus
        await pilot.press(*"Hi {{ lead.first_name }}", "enter")  # enter moves on to the HTML part
        assert editor.query_one("#html", TextArea).has_focus
        await pilot.press(*"<p>News for ", "ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, MergeFieldModal))
        await pilot.press(*"comp", "enter")  # the picker inserts the field with a default filter
        await wait_for(pilot, lambda: app.screen is editor)
        await pilot.press(*"</p>")
        assert editor.query_one("#html", TextArea).text == '<p>News for {{ lead.company | default("your team") }}</p>'

        # the preview renders for a lead chosen by email, with that lead's values
        await pilot.press("ctrl+l", *"lead0005@stark.example", "enter")
        await wait_for(pilot, lambda: editor.lead is not None and editor.lead.id == 5)
        await _settled(pilot, editor)
        assert "Hi Finn" in _preview_text(editor) and "News for Stark" in _preview_text(editor)
        assert editor.problems == []

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: _template(seeded_ws, "spring-promo") is not None)
        saved = _template(seeded_ws, "spring-promo")
        assert saved is not None and saved["version"] == 1 and saved["stage"] == "awareness"
        await wait_for(pilot, lambda: not editor.dirty())

        # an invalid version: two problems, each at its own line; nothing is stored
        await pilot.press("end", "enter", *"{{ lead.frist_name }}", "enter", *"{{ lead.__class__ }}", "ctrl+s")
        await wait_for(pilot, lambda: any(m.startswith("not saved: 2 problems") for m in _messages(app)))
        panel = editor.query_one("#problems", ProblemsPanel)
        assert [(p.part, p.line) for p in panel.problems] == [("html", 2), ("html", 3)]
        assert panel.problems[0].message == "unknown merge field lead.frist_name (did you mean lead.first_name?)"
        assert panel.problems[1].message == "access to '__class__' is not allowed"
        assert _template(seeded_ws, "spring-promo") == saved and _versions(seeded_ws, "spring-promo") == 1

        # fix them from the problems panel: enter puts the cursor on the line
        await pilot.press("tab", "tab")
        assert panel.has_focus
        await pilot.press("enter")
        html = editor.query_one("#html", TextArea)
        assert html.has_focus and html.cursor_location == (1, 0)
        await pilot.press("ctrl+k", *"{{ lead.last_name }}")
        await _settled(pilot, editor)
        assert [(p.part, p.line) for p in panel.problems] == [("html", 3)]
        await pilot.press("tab", "tab", "enter")
        assert html.has_focus and html.cursor_location == (2, 0)
        await pilot.press("ctrl+k", *"{{ owner.name }}")
        await _settled(pilot, editor)
        assert panel.problems == [] and "Fox" in _preview_text(editor)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: (_template(seeded_ws, "spring-promo") or {}).get("version") == 2)
        await wait_for(pilot, lambda: not editor.dirty())

    # the saved version renders through the engine's compose path, for a lead
    with seeded_ws.engine.connect() as conn:
        rows = compose_messages(conn, [SendRequest(7, "spring-promo", idempotency_key="t:1")], seeded_ws.settings, T0)
    assert rows[0]["status"] == "queued" and rows[0]["template_version"] == 2
    assert rows[0]["subject"] == "Hi Hana"
    assert "<p>News for Wonka</p>\nJones\nAlice Admin" in rows[0]["html"]
    assert _versions(seeded_ws, "spring-promo") == 2


async def test_edit_versions_diff_and_the_unsaved_change_guard(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _templates(pilot)
        await pilot.press("e")  # welcome-1, the first row
        editor = await _editor(pilot)
        assert editor.original_name == "welcome-1" and editor.query_one("#name", Input).disabled
        assert editor.query_one("#html", TextArea).has_focus
        for n, words in ((2, " See you soon."), (3, " Bye.")):
            await pilot.press("end", *words, "ctrl+s")
            await wait_for(pilot, lambda n=n: (_template(seeded_ws, "welcome-1") or {}).get("version") == n)
            await wait_for(pilot, lambda: not editor.dirty())

        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, TemplateVersionsModal))
        modal = app.screen
        await wait_for(pilot, lambda: "v2 → v3" in str(modal.query_one("#diff").render()))
        diff = str(modal.query_one("#diff").render())
        assert "--- v2 html" in diff and "+<p>Hi {{ lead.first_name }}, thanks for joining.</p> See you soon. Bye." \
            in diff
        await pilot.press("space", "down")  # v3 marked as the base, v2 highlighted: the diff the other way
        await wait_for(pilot, lambda: "v3 → v2" in str(modal.query_one("#diff").render()))
        assert "-<p>Hi {{ lead.first_name }}, thanks for joining.</p> See you soon. Bye." \
            in str(modal.query_one("#diff").render())
        await pilot.press("enter")  # load v2 back into the editor
        await wait_for(pilot, lambda: app.screen is editor and "Bye" not in editor.draft().html)
        assert "See you soon." in editor.draft().html and editor.dirty()

        editor.query_one("#preview-box").focus()
        await pilot.press("q")  # quitting asks too
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert "template welcome-1" in str(app.screen.query_one("#scope").render())
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is editor)
        await pilot.press("escape")  # unsaved: asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen is editor)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, TemplatesScreen))
    assert (_template(seeded_ws, "welcome-1") or {})["version"] == 3  # discarding wrote nothing


async def test_bad_input_is_a_one_line_message_and_a_10000_character_paste_does_not_hang(
        seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await _templates(pilot)
        await pilot.press("n")
        editor = await _editor(pilot)
        await pilot.press(*"welcome-1", "tab", "tab", "tab")  # a name that exists
        subject = editor.query_one("#subject", TextArea)
        subject.post_message(events.Paste("x" * 10_000))
        await pilot.press("enter", *"<p>hi</p>")
        await _settled(pilot, editor)
        problems = [str(p) for p in editor.problems]
        assert problems == ["subject: too long (10,000 characters; at most 500)"]
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: bool(_messages(app)))
        assert "not saved: 1 problem" in _messages(app)[0]
        editor.query_one("#subject", TextArea).load_text("Hello")
        await _settled(pilot, editor)
        await pilot.press("ctrl+s")  # the name is taken: refused in one line, nothing overwritten
        await wait_for(pilot, lambda: any("already exists" in m for m in _messages(app)))
        assert (_template(seeded_ws, "welcome-1") or {})["subject"] == "Welcome, {{ lead.first_name }}"
        await pilot.press("ctrl+l", *"nobody@nowhere", "enter")
        await wait_for(pilot, lambda: "no lead with email or id" in str(editor.query_one("#lead-problem").render()))
        assert editor.lead is None


async def test_duplicate_delete_and_a_refused_delete(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await _templates(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        await pilot.press("enter")  # the suggested name: welcome-1-copy
        await wait_for(pilot, lambda: screen.table.row_count == 3)
        assert _template(seeded_ws, "welcome-1-copy") is not None
        await pilot.press("d")  # welcome-1 is sent by the welcome sequence
        await wait_for(pilot, lambda: any("is sent by welcome (draft)" in m for m in _messages(app)))
        assert _template(seeded_ws, "welcome-1") is not None
        await pilot.press("down", "d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.table.row_count == 2)
        assert _template(seeded_ws, "welcome-1-copy") is None


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


async def test_test_send_from_the_editor_for_the_chosen_lead(seeded_ws: Workspace, sink: SmtpSink) -> None:
    seeded_ws.settings.mail.smtp_url = sink.url
    with seeded_ws.engine.connect() as conn:  # the seed's own sends: a test send adds nothing to them
        queued_before = conn.execute(select(func.count()).select_from(t.outbox)).scalar()
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _templates(pilot)
        await pilot.press("enter")
        editor = await _editor(pilot)
        await pilot.press("ctrl+l", *"12", "enter")
        await wait_for(pilot, lambda: editor.lead is not None)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        await pilot.press(*"not-an-address", "enter")
        assert isinstance(app.screen, PromptModal)  # refused in place
        app.screen.query_one(Input).value = "me@team.example"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(m.startswith("test sent to me@team.example") for m in _messages(app)))
    got = sink.messages[0].message()
    assert got["X-Nurture-Test"] == "yes" and got["Subject"] == "[TEST] Welcome, Cleo"
    with seeded_ws.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.outbox)).scalar() == queued_before
        audited = select(func.count()).select_from(t.audit).where(t.audit.c.action == "test_send")
        assert conn.execute(audited).scalar() == 1


async def test_test_send_to_the_seed_list(seeded_ws: Workspace, sink: SmtpSink) -> None:
    """The prompt is pre-filled with mail.seed_list; enter sends one marked test to each address."""
    seeded_ws.settings.mail.smtp_url = sink.url
    seeded_ws.settings.mail.seed_list = ["seed1@inbox.example", "seed2@inbox.example"]
    app = make_test_app(seeded_ws, initial_mode="templates")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _templates(pilot)
        await pilot.press("enter")
        await _editor(pilot)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptModal))
        assert app.screen.query_one(Input).value == "seed1@inbox.example, seed2@inbox.example"
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(m.startswith("test sent to seed1@inbox.example, seed2@inbox.example")
                                          for m in _messages(app)))
    assert sorted(m.rcpt_tos[0] for m in sink.messages) == ["seed1@inbox.example", "seed2@inbox.example"]
    assert all(m.message()["X-Nurture-Test"] == "yes" for m in sink.messages)


async def test_read_only_can_look_but_not_save(seeded_ws: Workspace) -> None:
    app = make_test_app(seeded_ws, initial_mode="templates", read_only=True)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await _templates(pilot)
        await pilot.press("e")
        editor = await _editor(pilot)
        assert editor.check_action("save", ()) is None and editor.check_action("test_send", ()) is None
        await pilot.press("end", *"!", "ctrl+s")
        await pilot.pause(0.3)
        assert (_template(seeded_ws, "welcome-1") or {})["version"] == 1
