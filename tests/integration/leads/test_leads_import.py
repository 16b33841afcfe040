"""Lead CSV import/export on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, text

from nurture_tui.errors import ValidationError
from nurture_tui.leads import csvfile, importer
from nurture_tui.leads.exporter import export_csv
from nurture_tui.leads.fields import FIELD_NAMES
from nurture_tui.leads.importer import import_csv, parse_map_options
from nurture_tui.store.engine import write_tx
from nurture_tui.store.tables import account, audit, lead, user
from nurture_tui.workspace import Workspace


def write(path: Path, body: str, *, bom: bool = False, encoding: str = "utf-8") -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode(encoding))
    return path


def leads_by_email(ws: Workspace) -> dict[str, Any]:
    with ws.engine.connect() as conn:
        return {r.email: r for r in conn.execute(select(lead)).all()}


def test_aliases_bom_semicolons_and_errors_file(workspace: Workspace, tmp_path: Path) -> None:
    src = write(tmp_path / "people.csv", (
        "E-mail Address;First Name;Surname;Company / Account;No. of Employees;Buyer Persona;Funnel Stage;"
        "Time Zone;Favourite;custom.Plan\n"
        " Ann@Example.COM ;Ann;Lee;\"Acme; Inc\";1,200;Economic Buyer;awareness;europe/berlin;tea;gold\n"
        "not-an-email;Bob;;X;3;;;;;\n"
        "cy@example.com;Cy;;Y;lots;;;;;\n"
        "di@example.com;Di;;Z;5;wizard;;;;\n"
        "\n"
        "ed@example.com;\"Ed\nward\";;Q;;;;Mars/Olympus;;\n"
        "fi@example.com;Fi;;;;practitioner;decision;;;\n"
    ), bom=True)
    result = import_csv(workspace, src)
    assert (result.imported, result.updated, result.rejected, result.rows) == (2, 0, 4, 6)
    assert result.ignored_columns == ("Favourite",)
    assert result.errors_file == tmp_path / "people.errors.csv"
    rows = leads_by_email(workspace)
    ann = rows["ann@example.com"]
    assert (ann.first_name, ann.last_name, ann.company, ann.employees) == ("Ann", "Lee", "Acme; Inc", 1200)
    assert (ann.persona, ann.stage, ann.timezone, ann.custom) == ("economic_buyer", "awareness", "Europe/Berlin",
                                                                  {"Plan": "gold"})
    assert ann.created_at == workspace.clock.now() and rows["fi@example.com"].stage == "decision"
    with result.errors_file.open(encoding="utf-8") as fh:
        bad = list(csv.reader(fh, delimiter=";"))
    assert bad[0][:3] == ["_line", "_error", "E-mail Address"]
    reasons = {int(r[0]): r[1] for r in bad[1:]}
    assert reasons[3].startswith("email: not an email address")
    assert reasons[4].startswith("employees: not a whole number")
    assert reasons[5].startswith("persona: unknown value 'wizard'")
    assert reasons[7].startswith("timezone: unknown IANA time zone")  # the record starting on line 7 spans 2
    assert bad[-1][3] == "Ed\nward"  # the rejected row is kept as it was


def test_errors_file_reimports_after_fixing(workspace: Workspace, tmp_path: Path) -> None:
    src = write(tmp_path / "a.csv", "email,employees\nok@x.io,1\nbad@x.io,many\n")
    result = import_csv(workspace, src)
    assert result.rejected == 1 and result.errors_file is not None
    fixed = result.errors_file.read_text().replace("many", "7")
    again = import_csv(workspace, write(tmp_path / "fixed.csv", fixed))
    assert (again.imported, again.rejected, again.ignored_columns) == (1, 0, ())
    assert leads_by_email(workspace)["bad@x.io"].employees == 7
    # a clean re-run removes the stale errors file
    assert import_csv(workspace, src.with_name("a.csv")).rejected == 1
    write(src, "email,employees\nok@x.io,1\n")
    assert import_csv(workspace, src).errors_file is None and not (tmp_path / "a.errors.csv").exists()


def test_upsert_by_email_keeps_values_opt_outs_and_merges_custom(workspace: Workspace, tmp_path: Path) -> None:
    first = write(tmp_path / "one.csv", "Email,First Name,Title,Opted Out,custom.a,custom.b\n"
                                        "x@ex.com,Xa,CTO,yes,1,2\n")
    assert import_csv(workspace, first).imported == 1
    second = write(tmp_path / "two.csv", "email,first_name,title,opted_out,custom.b,custom.c\n"
                                         "  X@EX.com ,Xavier,,no,20,30\n")
    result = import_csv(workspace, second)
    assert (result.imported, result.updated) == (0, 1)
    x = leads_by_email(workspace)["x@ex.com"]
    assert x.first_name == "Xavier" and x.title == "CTO"  # empty cell does not blank
    assert x.opted_out is True  # a file never clears an opt-out
    assert x.custom == {"a": "1", "b": "20", "c": "30"}
    assert x.updated_at == workspace.clock.now()


def test_duplicates_in_one_file_and_across_chunks(workspace: Workspace, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)
    lines = ["email,first_name"] + [f"u{i}@ex.com,n{i}" for i in range(8)] + ["U1@ex.com,again", "u7@ex.com,last"]
    result = import_csv(workspace, write(tmp_path / "d.csv", "\n".join(lines) + "\n"))
    assert (result.imported, result.updated, result.rejected) == (8, 2, 0)
    rows = leads_by_email(workspace)
    assert len(rows) == 8 and rows["u1@ex.com"].first_name == "again" and rows["u7@ex.com"].first_name == "last"


def test_dry_run_writes_nothing(workspace: Workspace, tmp_path: Path) -> None:
    import_csv(workspace, write(tmp_path / "seed.csv", "email\nold@ex.com\n"))
    src = write(tmp_path / "d.csv", "email,first_name\nold@ex.com,O\nnew@ex.com,N\nbad,B\n")
    result = import_csv(workspace, src, dry_run=True)
    assert (result.imported, result.updated, result.rejected, result.dry_run) == (1, 1, 1, True)
    assert "would import 1" in result.summary()
    assert set(leads_by_email(workspace)) == {"old@ex.com"}
    assert leads_by_email(workspace)["old@ex.com"].first_name is None


def test_lengths_owner_sf_ids_and_accounts(workspace: Workspace, tmp_path: Path) -> None:
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(user), {"username": "rita", "email": "rita@corp.io", "name": "Rita"})
        conn.execute(insert(account), {"name": "Acme Corp"})
        conn.execute(insert(lead), {"email": "held@ex.com", "sf_id": "00Q000000000001AAA"})
    long_name = "n" * 81
    src = write(tmp_path / "o.csv", (
        "email,first name,lead owner,salesforce id,company\n"
        f"a@ex.com,{long_name},rita,,acme corp\n"
        "b@ex.com,B,RITA@corp.io,00Q000000000002AAA,Other\n"
        "c@ex.com,C,nobody,,\n"
        "d@ex.com,D,,00Q000000000002AAA,\n"
        "e@ex.com,E,,00Q000000000001AAA,\n"
        "f@ex.com,F,,,Acme Corp\n"
    ))
    result = import_csv(workspace, src)
    assert (result.imported, result.rejected) == (2, 4)
    reasons = result.errors_file.read_text() if result.errors_file else ""
    assert "first_name: longer than 80 characters" in reasons
    assert "owner: unknown user 'nobody'" in reasons
    assert "already used by b@ex.com (line 3)" in reasons
    assert "already belongs to held@ex.com" in reasons
    rows = leads_by_email(workspace)
    with workspace.engine.connect() as conn:
        rita = conn.execute(select(user.c.id)).scalar_one()
        acme = conn.execute(select(account.c.id)).scalar_one()
    assert rows["b@ex.com"].owner_id == rita and rows["b@ex.com"].account_id is None
    assert rows["f@ex.com"].account_id == acme


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("name,company\nAnn,Acme\n", "no email column"),
        ("", "empty file"),
        ("\n\n", "empty file"),
        ("Email,E-mail\na@x.io,b@x.io\n", "both map to email"),
    ],
)
def test_unusable_files(workspace: Workspace, tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        import_csv(workspace, write(tmp_path / "u.csv", body))
    assert leads_by_email(workspace) == {}


def test_binary_and_wrong_encoding_are_refused_before_writing(workspace: Workspace, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(csvfile, "_BLOCK", 256)  # the bad byte sits many blocks into the file
    body = "email,city\n" + "".join(f"p{i}@ex.com,Town\n" for i in range(300)) + "q@ex.com,Zürich\n"
    latin = write(tmp_path / "latin.csv", body, encoding="latin-1")
    with pytest.raises(ValidationError, match=r"latin\.csv:302: not utf-8 text"):
        import_csv(workspace, latin)
    assert leads_by_email(workspace) == {}
    assert import_csv(workspace, latin, encoding="latin-1").imported == 301
    assert leads_by_email(workspace)["q@ex.com"].city == "Zürich"
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"email\n\x00\x01\x02")
    with pytest.raises(ValidationError, match="binary"):
        import_csv(workspace, binary)
    xlsx = tmp_path / "book.csv"
    xlsx.write_bytes(b"PK\x03\x04rest-of-zip")
    with pytest.raises(ValidationError, match="spreadsheet"):
        import_csv(workspace, xlsx)
    with pytest.raises(ValidationError, match="file not found"):
        import_csv(workspace, tmp_path / "missing.csv")


def test_map_options(workspace: Workspace, tmp_path: Path) -> None:
    src = write(tmp_path / "m.csv", "Contact,Notes,Email\nc@ex.com,hello,ignored@ex.com\n")
    with pytest.raises(ValidationError, match="both map to email"):
        import_csv(workspace, src, mapping=parse_map_options(["Contact=email"]))
    result = import_csv(workspace, src, mapping=parse_map_options(["contact=email", "Notes=custom.notes", "Email=-"]))
    assert result.imported == 1 and result.ignored_columns == ()
    assert leads_by_email(workspace)["c@ex.com"].custom == {"notes": "hello"}
    with pytest.raises(ValidationError, match="unknown field 'nonsense'"):
        import_csv(workspace, src, mapping={"Notes": "nonsense"})
    with pytest.raises(ValidationError, match="no column 'Missing'"):
        import_csv(workspace, src, mapping={"Missing": "email"})
    with pytest.raises(ValidationError, match="expected COLUMN=FIELD"):
        parse_map_options(["no-equals-sign"])


def test_tab_and_pipe_delimiters_and_short_rows(workspace: Workspace, tmp_path: Path) -> None:
    import_csv(workspace, write(tmp_path / "t.tsv", "Email\tFirst Name\tCity\nt@ex.com\tTee\n"))
    import_csv(workspace, write(tmp_path / "p.csv", "email|city\np@ex.com|Lyon\n"))
    extra = import_csv(workspace, write(tmp_path / "x.csv", "email,city\nx@ex.com,Oslo,surplus\n"))
    rows = leads_by_email(workspace)
    assert rows["t@ex.com"].first_name == "Tee" and rows["t@ex.com"].city is None
    assert rows["p@ex.com"].city == "Lyon"
    assert extra.rejected == 1 and "3 fields, but the header has 2" in extra.errors_file.read_text()  # type: ignore[union-attr]


def test_audit_row_for_each_import(workspace: Workspace, tmp_path: Path) -> None:
    import_csv(workspace, write(tmp_path / "a.csv", "email\na@ex.com\n"))
    with workspace.engine.connect() as conn:
        row = conn.execute(select(audit)).one()
    assert row.action == "leads.import" and row.after["imported"] == 1


def _random_leads(n: int, seed: int) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    tricky = ["Zoë", "O'Brien", 'He said "hi"', "a,b;c|d\te", "multi\nline", "日本語", "emoji 🚀", "x" * 80]
    out = []
    for i in range(n):
        out.append({
            "email": f"user{i}.{rnd.randrange(10**6)}@example{rnd.randrange(9)}.com",
            "first_name": rnd.choice([*tricky[:3], None]), "last_name": rnd.choice(tricky),
            "title": rnd.choice(["CTO", None, "Head of \"Ops\""]), "company": rnd.choice([*tricky, None]),
            "employees": rnd.choice([None, 0, 5, 123456]), "country": rnd.choice(["Germany", "Japan", None]),
            "timezone": rnd.choice(["Europe/Berlin", "Asia/Tokyo", None]),
            "persona": rnd.choice(["economic_buyer", "practitioner", None]),
            "stage": rnd.choice(["awareness", "decision", None]),
            "sf_id": rnd.choice([None, f"00Q{i:015d}"]), "sf_type": rnd.choice([None, "Lead", "Contact"]),
            "opted_out": rnd.random() < 0.2, "bounced": rnd.random() < 0.1,
            "custom": rnd.choice([{}, {"plan": "gold"}, {"plan": "x,y", "seats": "12"}]),
        })
    return out


def _snapshot(ws: Workspace) -> list[tuple[Any, ...]]:
    cols = [lead.c[c] for c in FIELD_NAMES if c != "owner"] + [lead.c.owner_id, lead.c.custom]
    with ws.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*cols).order_by(lead.c.email))]


def test_export_import_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    with write_tx(workspace.engine) as conn:
        conn.execute(insert(user), {"username": "rita"})
        rita = conn.execute(select(user.c.id)).scalar_one()
        rows = _random_leads(300, seed=7)
        for i, row in enumerate(rows):
            row["owner_id"] = rita if i % 3 == 0 else None
        conn.execute(insert(lead), rows)
    before = _snapshot(workspace)
    out = tmp_path / "export.csv"
    with workspace.engine.connect() as conn:
        assert export_csv(conn, out) == 300
    with write_tx(workspace.engine) as conn:
        conn.execute(delete(lead))
    result = import_csv(workspace, out)
    assert (result.imported, result.rejected, result.ignored_columns) == (300, 0, ())
    assert _snapshot(workspace) == before
    again = tmp_path / "again.csv"
    with workspace.engine.connect() as conn:
        export_csv(conn, again)
    assert again.read_bytes() == out.read_bytes()


def test_export_with_where_clause(workspace: Workspace, tmp_path: Path) -> None:
    import_csv(workspace, write(tmp_path / "a.csv", "email,stage\na@ex.com,decision\nb@ex.com,awareness\n"))
    out = tmp_path / "e.csv"
    with workspace.engine.connect() as conn:
        assert export_csv(conn, out, where=lead.c.stage == "decision") == 1
        assert conn.execute(text("select count(*) from lead")).scalar() == 2
    assert "a@ex.com" in out.read_text() and "b@ex.com" not in out.read_text()


def test_database_refusal_rejects_only_that_row(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    ws = sqlite_workspace
    with ws.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER no_boom BEFORE INSERT ON lead WHEN NEW.email = 'boom@ex.com' "
                             "BEGIN SELECT RAISE(ABORT, 'boom is not welcome'); END")
    src = write(tmp_path / "b.csv", "email\nfine1@ex.com\nboom@ex.com\nfine2@ex.com\n")
    result = import_csv(ws, src)
    assert (result.imported, result.rejected) == (2, 1)
    assert "database refused the row: boom is not welcome" in result.errors_file.read_text()  # type: ignore[union-attr]
    assert set(leads_by_email(ws)) == {"fine1@ex.com", "fine2@ex.com"}


def test_import_regrades_with_active_profiles(workspace: Workspace, tmp_path: Path) -> None:
    from nurture_tui.scoring import grading

    with write_tx(workspace.engine) as conn:
        grading.save_profiles(conn, [grading.parse_profile(
            {"name": "all", "criteria": [{"field": "title", "op": "contains", "value": ["vp"], "steps": 3}]}, "p")])
    import_csv(workspace, write(tmp_path / "g.csv", "email,title\nvp@ex.com,VP Sales\nin@ex.com,Intern\n"))
    rows = leads_by_email(workspace)
    assert rows["vp@ex.com"].grade == "C" and rows["in@ex.com"].grade == "D"


def test_reimport_keeps_what_the_file_does_not_mention(workspace: Workspace, tmp_path: Path) -> None:
    src = write(tmp_path / "k.csv", "email,first_name\nk@ex.com,Kay\n")
    import_csv(workspace, src)
    with write_tx(workspace.engine) as conn:
        conn.execute(lead.update().values(score=42.5, opted_out=True, bounced=True, grade="A", custom={"x": "1"},
                                          owner_id=None, stage="decision"))
    import_csv(workspace, write(src, "email,first_name\nk@ex.com,Kai\n"))
    k = leads_by_email(workspace)["k@ex.com"]
    assert (k.first_name, k.score, k.opted_out, k.bounced, k.grade, k.custom, k.stage) == (
        "Kai", 42.5, True, True, "A", {"x": "1"}, "decision")
    assert k.created_at == workspace.clock.now()


def test_unparseable_record_is_rejected_and_reading_goes_on(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    old = csv.field_size_limit(40)
    try:
        src = write(tmp_path / "big.csv", "email,title\na@ex.com,ok\nb@ex.com," + "x" * 60 + "\nc@ex.com,fine\n")
        result = import_csv(sqlite_workspace, src)
    finally:
        csv.field_size_limit(old)
    assert (result.imported, result.rejected) == (2, 1)
    assert "3,unreadable CSV record (field larger than field limit" in result.errors_file.read_text()  # type: ignore[union-attr]
    assert set(leads_by_email(sqlite_workspace)) == {"a@ex.com", "c@ex.com"}
