"""compose_outbox_rows (the stored, personalised render) and finalize (tracking, compliance headers at send
time): rendering, CR/LF safety, failures per row."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default

import pytest
from mail_support import add_lead, add_people, save_template
from sqlalchemy import insert, select

from nurture_tui.mail.compose import (
    PREFERENCES_MARK,
    UNSUBSCRIBE_MARK,
    Composer,
    SendRequest,
    compose_messages,
    compose_outbox_rows,
    finalize,
)
from nurture_tui.mail.htmltext import html_to_text
from nurture_tui.mail.message import build_message
from nurture_tui.mail.tokens import TokenSigner
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import outbox


def _compose(ws, sends, now):
    """Messages as the dispatcher would send them at `now` (both stages)."""
    with ws.engine.connect() as conn:
        return compose_messages(conn, sends, ws.settings, now)


def _stored(ws, sends, now):
    with ws.engine.connect() as conn:
        return compose_outbox_rows(conn, sends, ws.settings, now)


def test_rows_are_rendered_tracked_and_compliant(workspace, clock) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    save_template(workspace, now)
    rows = _compose(workspace, [SendRequest(ids["bob"], "welcome", None, 7, None, "s1", "7:s1:0"),
                                SendRequest(ids["bare"], "welcome", "newsletter", 8, None, "s1", "8:s1:0")], now)
    assert len(rows) == 2
    bob, bare = rows
    assert bob["status"] == "queued" and bob["subject"] == "Hello Bob" and bare["subject"] == "Hello there"
    assert "Ann Owner at Acme &amp; Co" in bob["html"] and "your company" in bare["html"]
    assert bare["category"] == "newsletter" and bob["category"] == "marketing"
    base = workspace.settings.mail.base_url
    # the body link is replaced by a signed click URL whose token carries the original target
    hrefs = re.findall(r'href="([^"]+)"', bob["html"])
    click = [h for h in hrefs if h.startswith(base + "/c/")]
    assert len(click) == 1 and "example.com" not in bob["html"].split("<hr>")[0]
    data = TokenSigner(workspace.settings.mail.secret_key.get_secret_value()).verify(click[0].rsplit("/", 1)[1], now)
    assert data.url == "https://example.com/guide?a=1&b=2" and data.lead_id == ids["bob"]
    assert data.message_ref == bob["message_ref"]
    # open pixel, footer with postal address, unsubscribe link, text derived from the html
    assert f'{base}/o/' in bob["html"] and workspace.settings.mail.postal_address in bob["html"]
    assert "Unsubscribe" in bob["html"] and f"{base}/u/" in bob["text"]
    assert "Hi Bob," in bob["text"] and "the guide (" + base + "/c/" in bob["text"]
    h = bob["headers"]
    assert h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<mailto:unsubscribe@example\.com\?subject=unsubscribe%20[^>]+>, <" + re.escape(base)
                        + r"/u/[^>]+>", h["List-Unsubscribe"])
    assert h["Message-ID"] == bob["message_id"] == f"<{bob['message_ref']}@example.com>"
    assert bob["idempotency_key"] == "7:s1:0" and bob["next_try_at"] == now


def test_outbox_stores_the_personalised_render_and_send_time_finalises_it(workspace, clock) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    save_template(workspace, now, "u", subject="Hi {{ lead.first_name }}",
                  html='<p>Hi {{ lead.first_name }}</p><a href="https://example.com/x">x</a>'
                       '<a href="{{ unsubscribe_url }}">leave</a> <a href="{{ preferences_url }}">prefs</a>')
    stored = _stored(workspace, [SendRequest(ids["bob"], "u", idempotency_key="u1")], now)[0]
    # stored: the merge fields rendered, no tokens, no footer, no transport headers
    assert stored["html"] == (f'<p>Hi Bob</p><a href="https://example.com/x">x</a><a href="{UNSUBSCRIBE_MARK}">'
                              f'leave</a> <a href="{PREFERENCES_MARK}">prefs</a>')
    assert stored["headers"] == {"To": "Bob Stone <bob@acme.test>"}  # the name; no transport headers yet
    assert "/c/" not in stored["text"] and stored["message_ref"]
    with write_tx(workspace.engine) as conn:  # rows insert as they are
        conn.execute(insert(outbox), [stored])
        assert len(conn.execute(select(outbox.c.id)).all()) == 1
    # finalised a day later: tokens expire token_ttl_days after the send, the marks become signed URLs
    later = now + timedelta(days=1)
    sent = finalize(stored, Composer(workspace.settings.mail, later))
    base = workspace.settings.mail.base_url
    signer = TokenSigner(workspace.settings.mail.secret_key.get_secret_value())
    unsub = re.search(r'href="(' + re.escape(base) + r'/u/[^"#]+)">leave', sent["html"]).group(1)
    data = signer.verify(unsub.rsplit("/", 1)[1], later, kind="unsubscribe")
    assert data.expires == later + timedelta(days=workspace.settings.mail.token_ttl_days)
    assert f'href="{unsub}#preferences">prefs' in sent["html"] and "__nurture_" not in sent["html"] + sent["text"]
    click = re.search(r'href="(' + re.escape(base) + r'/c/[^"]+)">x<', sent["html"]).group(1)
    assert signer.verify(click.rsplit("/", 1)[1], later, kind="click").url == "https://example.com/x"
    assert sent["headers"]["List-Unsubscribe"].endswith(f"<{unsub}>") and f"{base}/o/" in sent["html"]


def test_rows_queued_outside_compose_are_sent_as_stored(workspace) -> None:
    row = {"lead_id": 1, "category": "transactional", "to_email": "rep@x.test", "subject": "Lead reached s1",
           "html": "", "text": "Visit https://example.com/crm", "headers": {}, "message_ref": None}
    assert finalize(row, Composer(workspace.settings.mail, workspace.clock.now())) == {
        "subject": "Lead reached s1", "html": "", "text": "Visit https://example.com/crm", "headers": {}}


def test_compose_loads_only_the_lead_fields_templates_read(workspace, clock) -> None:
    from nurture_tui.mail.templates import compile_template

    def fields(html: str) -> frozenset[str] | None:
        return compile_template(id=1, name="t", version=1, category="marketing", stage=None, subject="s",
                                html=html, text=None).lead_fields

    assert fields("{{ lead.first_name }} {{ lead['company'] }}") == {"first_name", "company"}
    assert fields("{% macro m(x) %}{{ x.email }}{% endmacro %}{{ m(lead) }}") is None  # lead as a whole
    now = clock.now()
    ids = add_people(workspace, now)
    save_template(workspace, now, "f", subject="{{ lead.full_name }}", html="{{ lead.custom.plan | default('-') }}")
    row = _stored(workspace, [SendRequest(ids["bob"], "f", idempotency_key="f1")], now)[0]
    assert row["status"] == "queued" and row["html"] == "-" and row["subject"].startswith("Bob")


def test_same_key_same_message_ref_and_transactional_has_no_unsubscribe(workspace, clock) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    save_template(workspace, now, "receipt", subject="Receipt", html="<p>Thanks</p>", category="transactional")
    a = _compose(workspace, [SendRequest(ids["bob"], "receipt", idempotency_key="k1")], now)[0]
    b = _compose(workspace, [SendRequest(ids["bob"], "receipt", idempotency_key="k1")], now)[0]
    assert a["message_ref"] == b["message_ref"]
    assert "List-Unsubscribe" not in a["headers"] and "Unsubscribe" not in a["html"]


def test_header_injection_through_merge_values_is_impossible(workspace, clock) -> None:
    now = clock.now()
    evil = add_lead(workspace, "eve@evil.test", now, first_name="Eve\r\nBcc: victim@else.test\r\nX-Evil: 1")
    save_template(workspace, now, subject="Hi {{ lead.first_name }}\n{{ lead.first_name }}")
    row = _compose(workspace, [SendRequest(evil, "welcome", idempotency_key="e1")], now)[0]
    assert "\r" not in row["subject"] and "\n" not in row["subject"]
    parsed = message_from_bytes(build_message(row, now), policy=default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    once = "Eve Bcc: victim@else.test X-Evil: 1"
    assert str(parsed["Subject"]) == f"Hi {once} {once}"
    with pytest.raises(ValueError, match="line break"):
        build_message({**row, "headers": {**row["headers"], "From": "a@b.test\r\nBcc: x@y.test"}}, now)


def test_bad_recipient_missing_template_and_render_errors_become_failed_rows(workspace, clock) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    crlf = add_lead(workspace, "a@b.test\r\nbcc: c@d.test", now)
    save_template(workspace, now, "div", subject="x", html="{{ 1 // (lead.employees or 0) }}")
    rows = _compose(workspace, [
        SendRequest(ids["bob"], "nope", idempotency_key="1"),
        SendRequest(crlf, "div", idempotency_key="2"),
        SendRequest(ids["bob"], "div", idempotency_key="3"),
        SendRequest(999_999, "div", idempotency_key="4"),  # vanished lead: no row
    ], now)
    assert [r["status"] for r in rows] == ["failed"] * 3
    assert "template 'nope' not found" in rows[0]["last_error"]
    assert "invalid recipient" in rows[1]["last_error"] and "\n" not in rows[1]["to_email"]
    assert "render error" in rows[2]["last_error"]


def test_recent_activity_context(workspace, clock) -> None:
    from nurture_tui.store.tables import activity

    now = clock.now()
    ids = add_people(workspace, now)
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(activity), [
            {"lead_id": ids["bob"], "kind": "click", "at": now.replace(hour=h), "url": f"https://x.test/{u}", "bot": b}
            for h, u, b in ((1, "old", False), (2, "new", False), (3, "bot", True))
        ])
    save_template(workspace, now, "r", subject="{{ recent.last_click_url | default('none') }}", html="x")
    rows = _compose(workspace, [SendRequest(ids["bob"], "r", idempotency_key="1"),
                                SendRequest(ids["bare"], "r", idempotency_key="2")], now)
    assert [r["subject"] for r in rows] == ["https://x.test/new", "none"]


@pytest.mark.parametrize(("html", "text"), [
    ("<p>Hello&nbsp;<b>you</b></p><p>Two<br>lines</p>", "Hello\xa0you\n\nTwo\nlines\n"),
    ('<ul><li>a</li><li><a href="https://x.test/?q=1&amp;r=2">x</a></li></ul>', "- a\n- x (https://x.test/?q=1&r=2)\n"),
    ("<html><head><style>p{}</style></head><body>Hi</body></html>", "Hi\n"),
])
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_message_bytes_parse_back(workspace, clock) -> None:
    now = clock.now()
    lid = add_lead(workspace, "zoe@x.test", now, first_name="Zoë", company="Ünïcode & Co")
    save_template(workspace, now, subject="Grüße {{ lead.first_name }} " + "long " * 60,
                  html="<p>{{ lead.company }}</p>\n<p>.leading dot and = sign " + "x" * 200 + "</p>")
    row = _compose(workspace, [SendRequest(lid, "welcome", idempotency_key="z")], now)[0]
    raw = build_message(row, now)
    assert raw.isascii() and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = message_from_bytes(raw, policy=default)
    assert str(msg["Subject"]) == row["subject"] and row["subject"].startswith("Grüße Zoë long")
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert html.replace("\r\n", "\n") == row["html"] and text.replace("\r\n", "\n") == row["text"]
    plain_only = message_from_bytes(build_message({**row, "html": ""}, now), policy=default)
    assert plain_only.get_content_type() == "text/plain"


def test_text_template_derived_from_html_source() -> None:
    from nurture_tui.mail.htmltext import html_template_to_text

    src = ('<p>Hi {{ lead.first_name | default("there") }},</p>{% if lead.stage == "decision" %}'
           '<p><a href="https://x.test/demo?a=1&amp;b=2">Book a demo</a></p>{% endif %}'
           '<ul>{% for i in [1, 2] %}<li>{{ i }} &lt;{{ "<b>" }}&gt;</li>{% endfor %}</ul>')
    assert html_template_to_text(src) == (
        'Hi {{ lead.first_name | default("there") }},\n\n{% if lead.stage == "decision" %}Book a demo '
        '(https://x.test/demo?a=1&b=2)\n\n{% endif %}{% for i in [1, 2] %}\n- {{ i }} <{{ "<b>" }}>{% endfor %}\n')


def test_set_macro_and_globals_render_through_compose(workspace, clock) -> None:
    now = clock.now()
    ids = add_people(workspace, now)
    save_template(workspace, now, "m", subject="{% set n = lead.first_name %}{{ n }}{{ range(2)|list|length }}",
                  html="{% macro b(x) %}<b>{{ x }}</b>{% endmacro %}{% set n = lead.first_name %}{{ b(n) }}"
                       "{% for i in range(2) %}{{ loop.index }}{% endfor %}")
    row = _compose(workspace, [SendRequest(ids["bob"], "m", idempotency_key="m1")], now)[0]
    assert row["subject"] == "Bob2" and "\n<b>Bob</b>12\n</td>" in row["html"]  # inside the layout's card


def test_missing_custom_fields_read_as_none(workspace, clock) -> None:
    now = clock.now()
    a = add_lead(workspace, "a@x.test", now, custom={"plan": "pro"})
    b = add_lead(workspace, "b@x.test", now)
    save_template(workspace, now, "c", subject="{{ lead.custom.plan | default('free') }}/{{ lead.custom['seats'] }}",
                  html="x")
    rows = _compose(workspace, [SendRequest(a, "c", idempotency_key="a"), SendRequest(b, "c", idempotency_key="b")],
                    now)
    assert [r["subject"] for r in rows] == ["pro/", "free/"]
