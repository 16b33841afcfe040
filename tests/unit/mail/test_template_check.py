"""The editor's template model: every problem at its part and line (same rules as saving), a failed save
leaves the store as it was, drafts preview through the real compose path, versions diff, delete is refused
while a sequence sends the template, and test sends are marked and never counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mail_support import WELCOME_HTML, add_people, save_template
from sqlalchemy import func, insert, select

from nurture_tui.errors import NurtureError, ValidationError
from nurture_tui.mail import templates
from nurture_tui.mail.context import sample_context
from nurture_tui.mail.preview import draft_preview, lead_choice
from nurture_tui.mail.sink import SmtpSink
from nurture_tui.mail.templates import TemplateDraft, TemplateProblem, TemplateProblems, check_template
from nurture_tui.mail.testsend import address_problem, build_test_message, deliver, record_test_send
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import activity, audit, outbox, sequence, template, template_version


def _draft(**kw: object) -> TemplateDraft:
    base: dict[str, object] = {"name": "t", "subject": "Hi", "html": "<p>ok</p>"}
    return TemplateDraft(**(base | kw))  # type: ignore[arg-type]


def test_every_problem_is_listed_at_its_part_and_line() -> None:
    draft = _draft(
        subject="Hi {{ leed }}",
        html="<p>{{ lead.first_name }}</p>\n<p>{{ lead.frist_name }}</p>\n{{ lead.__class__ }}\n{{ lead.compny }}",
        text="ok\n{{ lead.email | nosuchfilter }}\n{% if lead.email is nosuchtest %}x{% endif %}",
    )
    found = [(p.part, p.line) for p in check_template(draft)]
    assert found == [("subject", 1), ("html", 2), ("html", 3), ("html", 4), ("text", 2), ("text", 3)]
    messages = [p.message for p in check_template(draft)]
    assert messages[1].startswith("unknown merge field lead.frist_name")
    assert messages[2] == "access to '__class__' is not allowed"
    assert "nosuchfilter" in messages[4] and "nosuchtest" in messages[5]
    assert str(check_template(draft)[1]).startswith("html line 2: unknown merge field lead.frist_name")


def test_a_syntax_error_stops_only_its_own_part() -> None:
    """Jinja stops parsing a part at its first syntax error: that one is reported, and every other part
    is still checked in full."""
    draft = _draft(subject="{{ lead.nope }}", html="<p>\n{% if %}\n{% endfor %}", text="{{ owner.nme }}\n{{ x.y }}")
    assert check_template(draft) == [
        TemplateProblem("subject", 1, check_template(draft)[0].message),
        TemplateProblem("html", 2, "Expected an expression, got 'end of statement block'"),
        TemplateProblem("text", 1, check_template(draft)[2].message),
        TemplateProblem("text", 2, check_template(draft)[3].message),
    ]


def test_fields_and_sizes_are_one_line_each() -> None:
    pasted = "x" * 10_000
    found = check_template(TemplateDraft(name=pasted, subject=pasted, html=" ", category="Not A Slug", stage=pasted))
    assert [p.part for p in found] == ["name", "category", "stage", "subject", "html"]
    assert all(len(str(p)) < 140 and "\n" not in str(p) for p in found)
    assert found[3].message == "too long (10,000 characters; at most 500)"
    assert found[4].message == "is empty"


@pytest.mark.parametrize("draft", [
    _draft(),
    _draft(html="{{ lead.__class__ }}"),
    _draft(subject="{{ leed }}"),
    _draft(html="{% if %}"),
    _draft(text="{{ lead.email | nosuchfilter }}"),
    _draft(name="bad name"),
    _draft(subject="s" * 501),
    _draft(html="{% for i in range(2) %}{{ loop.index }}{% endfor %}{{ lead.custom.plan }}"),
    _draft(html="<a href='{{ unsubscribe_url }}'>u</a>{{ recent.last_click_url | default('') }}"),
])
def test_the_checker_agrees_with_saving(draft: TemplateDraft) -> None:
    problems = check_template(draft)
    try:
        templates.validate(name=draft.name, subject=draft.subject, html=draft.html, text=draft.text,
                           category=draft.category, stage=draft.stage)
    except ValidationError as exc:
        assert problems, f"validate refused what the checker passes: {exc}"
    else:
        assert problems == []


def test_every_merge_field_snippet_is_valid() -> None:
    fields = templates.merge_fields()
    assert fields[0].snippet == '{{ lead.first_name | default("there") }}'
    html = "\n".join(f.snippet for f in fields)
    assert check_template(_draft(html=html, subject=fields[0].snippet)) == []
    assert not any("custom" in f.path for f in fields)


def test_save_draft_refuses_and_leaves_the_store_exactly_as_it_was(workspace, clock) -> None:
    now = clock.now()
    save_template(workspace, now)
    with workspace.engine.connect() as conn:
        before = conn.execute(select(template)).mappings().one()
        versions = conn.execute(select(func.count()).select_from(template_version)).scalar()
    bad = TemplateDraft("welcome", "{{ lead.nope }}", "<p>{{ lead.frist }}</p>\n{{ x }}")
    with pytest.raises(TemplateProblems) as err, write_tx(workspace.engine) as conn:
        templates.save_draft(conn, bad, original="welcome", base_version=1, user="u", now=now)
    assert [(p.part, p.line) for p in err.value.problems] == [("subject", 1), ("html", 1), ("html", 2)]
    assert "(and 2 more)" in str(err.value)
    clash = TemplateDraft("welcome", "New", "<p>new</p>")
    with pytest.raises(ValidationError, match="already exists"), write_tx(workspace.engine) as conn:
        templates.save_draft(conn, clash, original=None, base_version=None, user="u", now=now)
    with pytest.raises(ValidationError, match=r"saved elsewhere since you opened it \(v0 → v1\)"), \
            write_tx(workspace.engine) as conn:
        templates.save_draft(conn, clash, original="welcome", base_version=0, user="u", now=now)
    with workspace.engine.connect() as conn:
        assert conn.execute(select(template)).mappings().one() == before
        assert conn.execute(select(func.count()).select_from(template_version)).scalar() == versions
    with write_tx(workspace.engine) as conn:
        saved = templates.save_draft(conn, clash, original="welcome", base_version=1, user="u", now=now)
    assert (saved.version, saved.created, saved.changed) == (2, False, True)


def test_versions_and_diff(workspace, clock) -> None:
    now = clock.now()
    save_template(workspace, now)
    save_template(workspace, now, html=WELCOME_HTML.replace("the guide", "our guide"))
    with workspace.engine.connect() as conn:
        assert [v.number for v in templates.list_versions(conn, "welcome")] == [2, 1]
        diff = templates.diff_sources(templates.get_version(conn, "welcome", 1),
                                      templates.get_version(conn, "welcome", 2), "v1", "v2")
    assert "--- v1 html\n+++ v2 html\n" in diff
    assert "-<a href=\"https://example.com/guide?a=1&amp;b=2\">the guide</a>.</p>\n" in diff
    assert "+<a href=\"https://example.com/guide?a=1&amp;b=2\">our guide</a>.</p>\n" in diff
    assert "subject" not in diff


def test_delete_is_refused_while_a_sequence_sends_the_template(workspace, clock) -> None:
    now = clock.now()
    save_template(workspace, now, "welcome")
    save_template(workspace, now, "spare")
    defn = {"name": "onboard", "steps": [{"id": "a", "wait": {"duration": "1d"}},
                                         {"id": "b", "send": {"template": "welcome"}}]}
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(sequence).values(name="onboard", status="draft", draft=defn, created_at=now,
                                             updated_at=now))
    with write_tx(workspace.engine) as conn:
        assert templates.template_users(conn, "welcome") == ["onboard (draft)"]
        assert templates.template_users(conn, "spare") == []
    with pytest.raises(ValidationError, match=r"in use by onboard \(draft\); not deleted"), \
            write_tx(workspace.engine) as conn:
        templates.delete_template(conn, "welcome", user="u", now=now)
    with write_tx(workspace.engine) as conn:
        templates.delete_template(conn, "spare", user="u", now=now)
    with workspace.engine.connect() as conn:
        assert [t.name for t in templates.list_templates(conn)] == ["welcome"]
        assert conn.execute(select(audit.c.before).where(audit.c.action == "delete")).scalar_one()["name"] == "spare"


def test_a_draft_previews_for_a_lead_through_compose(workspace, clock) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    draft = TemplateDraft("draft-1", "Hi {{ lead.first_name | default('there') }}",
                          '<p>{{ owner.name }} for {{ account.name }}</p><p><a href="https://example.com/x">Read</a> '
                          '<a href="{{ unsubscribe_url }}">stop</a></p>')
    with workspace.engine.connect() as conn:
        bob = lead_choice(conn, "BOB@acme.test")
        assert lead_choice(conn, str(ids["bob"])) == bob and bob.label == "Bob Stone <bob@acme.test>"
        with pytest.raises(NurtureError, match="no lead with email or id 'nobody'"):
            lead_choice(conn, "nobody")
        out = draft_preview(conn, workspace.settings, draft, bob, now)
        bare = draft_preview(conn, workspace.settings, draft, lead_choice(conn, "bare@nowhere.test"), now)
        placeholder = draft_preview(conn, workspace.settings, draft, None, now)
        broken = draft_preview(conn, workspace.settings, TemplateDraft("", "{{ lead.nope }}", "x"), bob, now)
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0
    assert out.error is None, out.error
    assert out.subject == "Hi Bob" and "Ann Owner for Acme & Co" in out.html_text
    assert out.links == (("Read", "https://example.com/x"), ("stop", "[unsubscribe link]"))
    assert out.text_derived and "Ann Owner for Acme & Co" in out.text
    assert bare.subject == "Hi there"
    assert placeholder.subject == "Hi lead.first_name" and placeholder.lead is None
    assert not broken.rendered and [p.part for p in broken.problems] == ["name", "subject"]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as s:
        yield s


def test_a_test_send_is_marked_untracked_and_never_counted(workspace, clock, sink) -> None:
    now = clock.now()
    workspace.settings.mail.smtp_url = sink.url
    ids = add_people(workspace, now)
    compiled = templates.validate(name="welcome", subject="Hello {{ lead.first_name }}", html=WELCOME_HTML)
    assert address_problem("not an address") == "not an email address: 'not an address'"
    assert address_problem("x" * 300 + "@a.example").startswith("too long (310 characters")
    with workspace.engine.connect() as conn:
        message = build_test_message(conn, workspace.settings, compiled, to="me@team.example", lead_id=ids["bob"],
                                     now=now)
    deliver(workspace.settings.mail, message, now)
    with write_tx(workspace.engine) as conn:
        record_test_send(conn, template="welcome", version=None, message=message, lead_id=ids["bob"], user="u",
                         now=now)
    assert sink.wait_for(1)
    got = sink.messages[0].message()
    assert got["X-Nurture-Test"] == "yes" and got["Subject"] == "[TEST] Hello Bob" and got["To"] == "me@team.example"
    body = got.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Ann Owner" in body and "https://example.com/guide" in body and "/c/" not in body and "/o/" not in body
    assert "#test-message" in body  # the footer's links are inert
    with workspace.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(activity)).scalar() == 0
        assert conn.execute(select(audit.c.after).where(audit.c.action == "test_send")).scalar_one()["to"] \
            == "me@team.example"
    sink.fail("refused@team.example", 550, "no such user")
    with pytest.raises(NurtureError, match=r"test send to refused@team.example failed: 550 no such user"):
        deliver(workspace.settings.mail, message.__class__(**{**message.__dict__, "to": "refused@team.example"}), now)


def test_check_and_compile_builds_what_saving_would() -> None:
    """The editor's preview compiles each part once; the result matches what the cache compiles on save."""
    draft = _draft(subject="Hi {{ lead.first_name | default('there') }}",
                   html="<p>{{ owner.name }} at {{ account.name }}</p><a href='https://x.example'>x</a>")
    problems, compiled = templates.check_and_compile(draft)
    saved = templates.validate(name=draft.name, subject=draft.subject, html=draft.html)
    assert problems == [] and compiled is not None
    assert (compiled.roots, compiled.lead_fields, compiled.text_derived) == \
        (saved.roots, saved.lead_fields, saved.text_derived)
    ctx = templates.base_context() | sample_context()
    for part in ("subject", "html", "text"):
        assert templates.render(getattr(compiled, part), ctx) == templates.render(getattr(saved, part), ctx)
    # a bad name does not stop the preview; a bad part does
    assert templates.check_and_compile(_draft(name="no good"))[1] is not None
    assert templates.check_and_compile(_draft(text="{{ nope }}"))[1] is None
