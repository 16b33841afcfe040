"""Templates: sandbox, strict merge fields validated at save time with line numbers, escaping, cache."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, UndefinedError
from mail_support import WELCOME_HTML, save_template
from sqlalchemy import func, select

from nurture_tui.errors import ValidationError
from nurture_tui.mail import templates
from nurture_tui.mail.context import sample_context
from nurture_tui.store.tables import audit, template_version

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ lead.__class__ }}",
    "{{ lead['__class__'] }}",
    "{{ ''|attr('__class__') }}",
    "{{ sender.name.__class__.__base__.__subclasses__() }}",
    "{% set x = ''.__class__ %}{{ x }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self.__init__ }}",
    "{{ '{0.__class__}'.format(lead) }}",
    "{{ '{0.__class__}'.format_map(lead) }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ (lead|attr(unsubscribe_url)) }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_refused_at_save(source: str) -> None:
    with pytest.raises(ValidationError) as err:
        templates.validate(name="evil", subject="x", html=source)
    assert "template evil: html line 1" in str(err.value)


def test_sandbox_also_refuses_at_render_time() -> None:
    # Even a template that bypassed validation cannot reach internals: the sandbox raises.
    tpl = templates.HTML_ENV.from_string("{{ x.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        tpl.render(x="")
    tpl = templates.HTML_ENV.from_string("{{ (x|attr(y)) }}")
    with pytest.raises(SecurityError):
        tpl.render(x="", y="__class__")
    tpl = templates.HTML_ENV.from_string("{{ '{0.__class__}'.format(x) }}")
    with pytest.raises(SecurityError):
        tpl.render(x="")


def test_globals_like_range_are_allowed() -> None:
    c = templates.validate(name="g", subject="s", html="{% for i in range(2) %}{{ i }}{% endfor %}")
    assert c.html.render() == "01"


def test_loop_attributes_work_and_stay_sandboxed() -> None:
    c = templates.validate(name="l", subject="s", html="{% for i in 'ab' %}{{ loop.index }}{{ loop.last }}{% endfor %}")
    assert c.html.render() == "1False2True"
    with pytest.raises(SecurityError):
        templates.HTML_ENV.from_string("{% for i in 'a' %}{{ loop|attr(x) }}{% endfor %}").render(x="__init__")
    with pytest.raises(UndefinedError):
        templates.HTML_ENV.from_string("{% for i in 'a' %}{{ loop.nope }}{% endfor %}").render()


def test_unknown_merge_field_names_the_line() -> None:
    html = "<p>Hi</p>\n<p>ok {{ lead.first_name }}</p>\n<p>{{ lead.frist_name }}</p>"
    with pytest.raises(ValidationError) as err:
        templates.validate(name="t1", subject="s", html=html)
    assert str(err.value).startswith("template t1: html line 3: unknown merge field lead.frist_name")


def test_unknown_root_and_syntax_error_and_unknown_filter() -> None:
    with pytest.raises(ValidationError, match=r"template t: subject line 1: unknown merge field 'leed'"):
        templates.validate(name="t", subject="{{ leed.email }}", html="x")
    with pytest.raises(ValidationError, match=r"template t: html line 2: "):
        templates.validate(name="t", subject="s", html="ok\n{% if %}\n")
    with pytest.raises(ValidationError, match=r"template t: text line 1: .*nosuchfilter"):
        templates.validate(name="t", subject="s", html="x", text="{{ lead.email | nosuchfilter }}")


def test_locals_custom_fields_and_fallbacks_are_allowed() -> None:
    c = templates.validate(
        name="ok", subject="{{ lead.first_name | default('there') }}",
        html="{% for i in [1,2] %}{{ i }}{% endfor %}{% set who = lead.full_name %}{{ who }}"
             "{{ lead.custom.plan }}{{ recent.last_click_url }}{{ unsubscribe_url }}",
    )
    assert c.roots == {"lead", "recent", "unsubscribe_url"}
    ctx = sample_context()
    ctx["lead"]["first_name"] = None
    assert c.subject.render(ctx) == "there"


def test_html_is_escaped_text_and_subject_are_not() -> None:
    c = templates.validate(name="e", subject="{{ lead.company }}", html="<b>{{ lead.company }}</b>",
                           text="{{ lead.company }}")
    ctx = sample_context()
    ctx["lead"]["company"] = "<script>alert(1)</script> & Co"
    assert c.html.render(ctx) == "<b>&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</b>"
    assert c.text is not None and c.text.render(ctx) == "<script>alert(1)</script> & Co"
    assert c.subject.render(ctx) == "<script>alert(1)</script> & Co"


def test_none_renders_empty() -> None:
    c = templates.validate(name="n", subject="[{{ lead.title }}]", html="x")
    ctx = sample_context()
    ctx["lead"]["title"] = None
    assert c.subject.render(ctx) == "[]"


def test_one_line_strips_every_line_break() -> None:
    assert templates.one_line("Hi\r\nBcc: x@y\u2028z\x00\t!") == "Hi Bcc: x@y z !"


def test_upsert_versions_and_audit(workspace, clock) -> None:
    now = clock.now()
    tid = save_template(workspace, now)
    assert save_template(workspace, now) == tid  # unchanged: no new version
    save_template(workspace, now, html=WELCOME_HTML + "<p>PS</p>")
    with workspace.engine.connect() as conn:
        src = templates.get_source(conn, "welcome")
        assert src["version"] == 2
        assert conn.execute(select(func.count()).select_from(template_version)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(audit)).scalar() == 2
        infos = templates.list_templates(conn)
    assert [i.name for i in infos] == ["welcome"]


def test_upsert_invalid_writes_nothing(workspace, clock) -> None:
    with pytest.raises(ValidationError):
        save_template(workspace, clock.now(), html="{{ lead.nope }}")
    with workspace.engine.connect() as conn:
        assert templates.list_templates(conn) == []


def test_cache_compiles_once_per_version(workspace, clock) -> None:
    now = clock.now()
    save_template(workspace, now)
    cache = templates.TemplateCache()
    with workspace.engine.connect() as conn:
        a = cache.get(conn, "welcome")
        b = cache.get(conn, "welcome")
    assert a is b and len(cache) == 1
    save_template(workspace, now, subject="New {{ lead.email }}")
    with workspace.engine.connect() as conn:
        c = cache.get(conn, "welcome")
        assert c is not a and c.version == 2
        assert cache.get_many(conn, ["welcome", "missing"]).keys() == {"welcome"}
