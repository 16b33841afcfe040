"""Every validation rule, each with a broken file and the exact line it must produce."""

from __future__ import annotations

import textwrap

import pytest
from seq_support import add_segment

from nurture_tui.sequences.service import check_text
from nurture_tui.store.engine import write_tx
from nurture_tui.workspace import Workspace

TEMPLATES = """
templates:
  - {name: t1, subject: 'Hi {{ lead.first_name | default("there") }}', html: '<p>Hello</p>'}
  - {name: t2, subject: Second, html: '<p>Again</p>'}
"""


def lines(body: str, name: str = "t.yaml", conn=None) -> list[str]:  # type: ignore[no-untyped-def]
    text = textwrap.dedent(body).strip("\n") + "\n" + TEMPLATES
    return check_text(conn, text, name).lines()


def test_valid_file_has_no_problems() -> None:
    assert lines("""
        name: ok
        steps:
          - id: hello
            send: {template: t1}
          - id: opened
            wait_for: {events: [{kind: open, node: hello}], window: 2d}
            no:
              - id: again
                send: {template: t2}
          - id: loop-wait
            wait: {duration: 1d}
            goto: hello
        """) == []


def test_issue_example_zero_wait_in_fast_track() -> None:
    out = lines("""
        name: welcome
        steps:
          - id: fast_track
            wait_for: {events: [{kind: click}], window: 3d}
            yes:
              - id: tailored
                send: {template: t1}
              - id: pause
                wait: {duration: 0d}
        """, "welcome.yaml")
    assert out == ["welcome.yaml: steps.fast_track.yes[1].wait: duration must be > 0 (line 9)"]


CASES = [
    ("unknown template", """
        name: x
        steps:
          - id: hello
            send: {template: nope}
        """, "t.yaml: steps.hello.send: unknown template 'nope' (not in templates:, the templates directory or "
             "the store) (line 4)"),
    ("branch without children", """
        name: x
        steps:
          - id: b
            branch: {rule: {field: score, ge: 10}}
        """, "t.yaml: steps.b: branch needs a non-empty yes or no list (with both empty it decides nothing) (line 3)"),
    ("wait_for with empty lists", """
        name: x
        steps:
          - id: w
            wait_for: {events: [{kind: open}], window: 1d}
            yes: []
        """, "t.yaml: steps.w: wait_for needs a non-empty yes or no list (with both empty it decides nothing) "
             "(line 3)"),
    ("yes on a send", """
        name: x
        steps:
          - id: s
            send: {template: t1}
            yes:
              - {id: y, exit: {}}
        """, "t.yaml: steps.s: only wait_for and branch steps have yes/no lists (this is a send step) (line 3)"),
    ("step after exit", """
        name: x
        steps:
          - id: stop
            exit: {}
          - id: after
            send: {template: t1}
        """, "t.yaml: steps.after: unreachable: follows an exit (steps.stop) (line 5)"),
    ("nested step after goto", """
        name: x
        steps:
          - id: top
            send: {template: t1}
          - id: b
            branch: {rule: {field: score, ge: 10}}
            yes:
              - {id: jump, wait: {duration: 1d}, goto: top}
              - {id: never, send: {template: t2}}
        """, "t.yaml: steps.b.yes[1]: unreachable: follows goto top (steps.b.yes[0]) (line 9)"),
    ("goto into nowhere", """
        name: x
        steps:
          - id: s
            send: {template: t1}
            goto: nowhere
        """, "t.yaml: steps.s.goto: unknown step id 'nowhere' (line 5)"),
    ("unreachable by graph (all arms exit)", """
        name: x
        steps:
          - id: ab
            split:
              arms:
                - {name: a, weight: 50, steps: [{id: xa, exit: {}}]}
                - {name: b, weight: 50, steps: [{id: xb, exit: {}}]}
          - id: orphan
            send: {template: t1}
        """, "t.yaml: steps.orphan: unreachable: no path from the first step leads here (line 8)"),
    ("split weights", """
        name: x
        steps:
          - id: ab
            split:
              arms:
                - {name: a, weight: 60, steps: [{id: sa, send: {template: t1}}]}
                - {name: b, weight: 30, steps: [{id: sb, send: {template: t2}}]}
        """, "t.yaml: steps.ab.split: arm weights must sum to 100 (they sum to 90) (line 5)"),
    ("split zero weight", """
        name: x
        steps:
          - id: ab
            split:
              arms:
                - {name: a, weight: 100, steps: [{id: sa, send: {template: t1}}]}
                - {name: b, weight: 0}
        """, "t.yaml: steps.ab.split.arms[1]: weight must be ≥ 1 (got 0) (line 7)"),
    ("split duplicate arm", """
        name: x
        steps:
          - id: ab
            split:
              arms:
                - {name: a, weight: 50}
                - {name: a, weight: 50}
        """, "t.yaml: steps.ab.split.arms[1]: duplicate arm name 'a' (line 7)"),
    ("split more than 10 arms", """
        name: x
        steps:
          - id: ab
            split:
              arms:
                - {name: a0, weight: 10}
                - {name: a1, weight: 10}
                - {name: a2, weight: 10}
                - {name: a3, weight: 10}
                - {name: a4, weight: 10}
                - {name: a5, weight: 10}
                - {name: a6, weight: 10}
                - {name: a7, weight: 10}
                - {name: a8, weight: 10}
                - {name: a9, weight: 5}
                - {name: a10, weight: 5}
        """, "t.yaml: steps.ab.split: a split has at most 10 arms (found 11) (line 5)"),
    ("split one arm", """
        name: x
        steps:
          - id: ab
            split:
              arms:
                - {name: a, weight: 100}
        """, "t.yaml: steps.ab.split: a split needs at least 2 arms (line 5)"),
    ("negative window", """
        name: x
        steps:
          - id: w
            wait_for: {events: [{kind: open}], window: 0h}
            no: [{id: n, exit: {}}]
        """, "t.yaml: steps.w.wait_for: window must be > 0 (line 4)"),
    ("not a duration", """
        name: x
        steps:
          - id: w
            wait: {duration: 3 fortnights}
        """, "t.yaml: steps.w.wait: duration: not a duration: '3 fortnights' (use e.g. 5d, 36h, 1w2d, 90m) "
             "(line 4)"),
    ("wait_for without window", """
        name: x
        steps:
          - id: w
            wait_for: {events: [{kind: click}]}
            no: [{id: n, exit: {}}]
        """, "t.yaml: steps.w.wait_for: wait_for needs a window (how long to wait for the event, e.g. 3d) (line 4)"),
    ("wait_for node is not a send", """
        name: x
        steps:
          - id: pause
            wait: {duration: 1d}
          - id: w
            wait_for: {events: [{kind: open, node: pause}], window: 1d}
            no: [{id: n, exit: {}}]
        """, "t.yaml: steps.w.wait_for.events[0]: node 'pause' is not a send step (line 6)"),
    ("wait time without weekday", """
        name: x
        steps:
          - id: w
            wait: {duration: 1d, time: '10:00'}
        """, "t.yaml: steps.w.wait: time is only used with weekday (line 4)"),
    ("bad weekday", """
        name: x
        steps:
          - id: w
            wait: {weekday: funday}
        """, "t.yaml: steps.w.wait: unknown weekday 'funday' (one of mon, tue, wed, thu, fri, sat, sun) (line 4)"),
    ("action unknown field", """
        name: x
        steps:
          - id: a
            action: {type: update_field, field: favourite_color, value: blue}
        """, "t.yaml: steps.a.action: unknown field 'favourite_color' (a lead field: title, company, industry, "
             "country, state, city, phone, status, persona, stage, lead_source, timezone; or custom.<key>) (line 4)"),
    ("action missing parameter", """
        name: x
        steps:
          - id: a
            action: {type: adjust_score}
        """, "t.yaml: steps.a.action: adjust_score needs points (line 4)"),
    ("action bad stage", """
        name: x
        steps:
          - id: a
            action: {type: set_stage, value: nirvana}
        """, "t.yaml: steps.a.action: unknown stage 'nirvana' (one of awareness, consideration, decision, customer) "
             "(line 4)"),
    ("webhook url", """
        name: x
        steps:
          - id: a
            action: {type: webhook, url: 'ftp://vendor.example/drop'}
        """, "t.yaml: steps.a.action: webhook url must start with http:// or https:// (got "
             "'ftp://vendor.example/drop') (line 4)"),
    ("enroll into itself", """
        name: x
        steps:
          - id: a
            action: {type: enroll, sequence: x}
        """, "t.yaml: steps.a.action: a sequence cannot enroll leads into itself (use goto) (line 4)"),
    ("loop without wait", """
        name: x
        steps:
          - id: hello
            send: {template: t1}
          - id: again
            action: {type: add_tag, tag: looping}
            goto: hello
        """, "t.yaml: steps.again: loop without a wait: hello → again → hello (add a wait or wait_for) (line 5)"),
    ("exit with goto", """
        name: x
        steps:
          - id: hello
            send: {template: t1}
          - id: stop
            exit: {}
            goto: hello
        """, "t.yaml: steps.stop.goto: an exit step cannot goto (line 7)"),
    ("duplicate step id", """
        name: x
        steps:
          - id: hello
            send: {template: t1}
          - id: b
            branch: {rule: {field: score, ge: 1}}
            yes: [{id: hello, send: {template: t2}}]
        """, "t.yaml: steps.b.yes[0].id: duplicate step id 'hello' (line 7)"),
    ("bad rule", """
        name: x
        steps:
          - id: b
            branch: {rule: {all: [{field: shoe_size, ge: 10}]}}
            yes: [{id: y, send: {template: t1}}]
        """, None),
    ("send window", """
        name: x
        send_window: {days: [mon, caturday], start: '17:00', end: '09:00', default_timezone: Mars/Olympus,
                      country: Atlantis}
        steps:
          - {id: hello, send: {template: t1}}
        """, None),
    ("caps below 1", """
        name: x
        caps: {per_day: 0}
        steps:
          - {id: hello, send: {template: t1}}
        """, "t.yaml: caps.per_day: a cap must be ≥ 1 (line 2)"),
    ("segment entry without segment", """
        name: x
        entry: {type: segment}
        steps:
          - {id: hello, send: {template: t1}}
        """, "t.yaml: entry: segment entry needs exactly one of segment, rule (line 2)"),
    ("unknown stage", """
        name: x
        stage: limbo
        steps:
          - {id: hello, send: {template: t1}}
        """, "t.yaml: stage: unknown stage 'limbo' (one of awareness, consideration, decision, customer) (line 2)"),
    ("bad name", """
        name: '-x/y'
        steps:
          - {id: hello, send: {template: t1}}
        """, "t.yaml: name: invalid name '-x/y' (letters, digits, space, _ . -; at most 120 characters) (line 1)"),
    ("no steps", """
        name: x
        steps: []
        """, "t.yaml: steps: a sequence needs at least one step (line 2)"),
]


@pytest.mark.parametrize(("body", "expected"), [(b, e) for _n, b, e in CASES], ids=[n for n, _b, _e in CASES])
def test_rule(body: str, expected: str | None) -> None:
    out = lines(body)
    if expected is not None:
        assert out == [expected]
    else:
        assert out  # checked in detail below


def test_bad_rule_reports_path_inside_rule() -> None:
    out = lines(CASES[[n for n, _b, _e in CASES].index("bad rule")][1])
    assert out == ["t.yaml: steps.b.branch.rule.all[0].field: unknown field \"shoe_size\" (lead fields, "
                   "account.<field>, custom.<key>, score, grade, stage, persona, owner, tags) (line 4)"]


def test_send_window_problems_one_line_each() -> None:
    out = lines(CASES[[n for n, _b, _e in CASES].index("send window")][1])
    assert out == [
        "t.yaml: send_window.days[1]: unknown day 'caturday' (one of mon, tue, wed, thu, fri, sat, sun) (line 2)",
        "t.yaml: send_window: start 17:00 must be before end 09:00 (line 2)",
        "t.yaml: send_window.default_timezone: unknown time zone 'Mars/Olympus' (line 2)",
        "t.yaml: send_window.country: no holiday calendar for country 'Atlantis' (line 3)",
    ]


def test_many_problems_one_line_each() -> None:
    out = lines("""
        name: x
        steps:
          - id: hello
            send: {template: nope}
          - id: w
            wait: {duration: -1d}
          - id: stop
            exit: {}
          - id: after
            send: {template: t1}
        """)
    assert len(out) == 3
    assert out[0].startswith("t.yaml: steps.hello.send: unknown template 'nope'")
    assert out[1].startswith("t.yaml: steps.w.wait: duration: not a duration")
    assert out[2].startswith("t.yaml: steps.after: unreachable: follows an exit")


def test_template_syntax_and_merge_fields_checked() -> None:
    text = ("name: x\nsteps:\n  - {id: hello, send: {template: bad}}\ntemplates:\n"
            "  - {name: bad, subject: 'Hi {{ lead.frist_name }}', html: '<p>x</p>'}\n")
    [line] = check_text(None, text, "t.yaml").lines()
    assert line.startswith("t.yaml: templates.bad: template bad: subject")
    assert "frist_name" in line and line.endswith("(line 5)")


def test_unknown_segments_need_the_store(workspace: Workspace) -> None:
    body = """
        name: x
        entry: {type: segment, segment: vips}
        steps:
          - id: b
            branch: {segment: ghosts}
            yes: [{id: y, send: {template: t1}}]
          - id: c
            branch: {rule: {any: [{in_segment: phantoms}, {in_segment: vips}]}}
            yes: [{id: z, send: {template: t2}}]
        """
    assert lines(body) == []  # without a store, saved segments are not checked
    with write_tx(workspace.engine) as conn:
        add_segment(conn, "VIPs", {"field": "score", "ge": 50})
    with workspace.engine.connect() as conn:
        out = lines(body, conn=conn)
    assert out == [
        "t.yaml: steps.b.branch: unknown segment 'ghosts' (line 5)",
        "t.yaml: steps.c.branch.rule: unknown segment 'phantoms' (line 8)",
    ]


def test_stored_templates_count_as_known(workspace: Workspace) -> None:
    from nurture_tui.mail.templates import upsert_template

    body = "name: x\nsteps:\n  - {id: hello, send: {template: stored-one}}\n"
    assert check_text(None, body, "t.yaml").lines()[0].startswith("t.yaml: steps.hello.send: unknown template")
    with write_tx(workspace.engine) as conn:
        upsert_template(conn, name="stored-one", subject="S", html="<p>x</p>", user="t", now=workspace.clock.now())
    with workspace.engine.connect() as conn:
        assert check_text(conn, body, "t.yaml").lines() == []


def test_templates_directory_is_used_and_its_problems_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from nurture_tui.sequences.service import check_file

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "lib.yaml").write_text(
        "templates:\n  - {name: lib-a, subject: A, html: '<p>a</p>'}\n  - {name: lib-b, subjekt: B, html: x}\n")
    (tmp_path / "templates" / "one.yaml").write_text("name: lib-c\nsubject: C\nhtml: '<p>c</p>'\n")
    (tmp_path / "templates" / "two.yaml").write_text("name: lib-d\nsubject: D\nhtml: '<p>{{ lead.shoe }}</p>'\n")
    seq = tmp_path / "s.yaml"
    seq.write_text("name: s\nsteps:\n  - {id: a, send: {template: lib-a}}\n  - {id: c, send: {template: lib-c}}\n")
    fc = check_file(None, seq)
    assert sorted(fc.templates) == ["lib-a", "lib-c"]  # only what the sequence refers to
    assert fc.lines() == [
        "templates/lib.yaml: templates.lib-b: missing required key 'subject' (line 3)",
        "templates/lib.yaml: templates.lib-b: unknown key 'subjekt' (line 3)",
    ]
    seq.write_text("name: s\nsteps:\n  - {id: d, send: {template: lib-d}}\n")
    [*_, last] = check_file(None, seq).lines()
    assert last.startswith("templates/two.yaml: template lib-d: html line 1") and "lead.shoe" in last
