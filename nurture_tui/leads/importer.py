"""CSV lead import: map headers, validate every row, upsert by email in chunks.

Per row: every mapped cell is converted and checked (email syntax, numbers, lengths from the column
definitions, enum values, time zones, owners); a row with any bad cell is rejected whole and written to
FILE.errors.csv with its line number and reason; good rows are upserted by email (trimmed, lower-cased).

Upsert semantics (what an operator expects from Pardot/HubSpot-style imports):
- a new email creates a lead; an existing one is updated;
- an empty cell never blanks a stored value (`COALESCE(new, old)`);
- `opted_out` / `bounced` can be set by a file but never cleared by one (compliance);
- `custom.*` columns are merged key by key into the lead's custom JSON;
- an address erased at the person's request (`nurture leads erase`) is refused, row by row, with that reason
  (its salted hash is kept for this: compliance/erased.py);
- `--consent CATEGORY` records consent (source `import`) for every row written (compliance/consent.py).

Writes are one transaction per chunk with a single dialect upsert statement (`INSERT … ON CONFLICT
(email) DO UPDATE`), executed through the raw DBAPI cursor on SQLite (the hot path) and through Core on
PostgreSQL. If the database still refuses a chunk (say, a Salesforce id already used by another lead),
the chunk is retried row by row under savepoints so only the offending rows are rejected.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError

from ..batching import chunks
from ..compliance.consent import record_consent
from ..compliance.erased import erased_emails
from ..errors import ValidationError
from ..store import audit
from ..store.engine import write_tx
from ..store.tables import account, lead, user
from ..store.types import to_db
from . import fields as F
from .csvfile import CsvSource, ErrorsFile, Record, RecordReader, errors_path, inspect_csv

if TYPE_CHECKING:
    from ..workspace import Workspace

#: progress(bytes_read, total_bytes, rows_seen)
Progress = Callable[[int, int, int], None]

CHUNK_ROWS = 10_000


@dataclass(frozen=True)
class ImportResult:
    path: Path
    rows: int
    imported: int
    updated: int
    rejected: int
    dry_run: bool
    errors_file: Path | None
    ignored_columns: tuple[str, ...] = ()
    erased: int = 0  # rows refused because the address was erased (counted in `rejected` too)
    consent: dict[str, int] = field(default_factory=dict)  # category → leads granted or asked to confirm

    def summary(self) -> str:
        verb = "dry run, nothing written: would import" if self.dry_run else "imported"
        text = f"{self.path.name}: {verb} {self.imported}, updated {self.updated}, rejected {self.rejected}"
        if self.errors_file is not None:
            text += f" (reasons in {self.errors_file})"
        if self.erased:
            text += f"; {self.erased} erased {'person' if self.erased == 1 else 'people'} blocked"
        if self.consent:
            text += "; consent recorded: " + ", ".join(f"{c} {n}" for c, n in self.consent.items())
        return text


@dataclass(frozen=True)
class ConsentGrant:
    """`--consent CATEGORY …`: every row written consented to these categories."""

    categories: tuple[str, ...]
    legal_basis: str = "consent"


def parse_map_options(items: Iterable[str]) -> dict[str, str]:
    """`--map "E-mail Addr=email"` options → {column: target}."""
    mapping: dict[str, str] = {}
    for item in items:
        col, sep, target = item.partition("=")
        if not sep or not col.strip():
            raise ValidationError(f"--map {item}", "expected COLUMN=FIELD (FIELD may be custom.KEY, or - to skip)")
        mapping[col.strip()] = target.strip()
    return mapping


@dataclass
class ColumnPlan:
    """Which CSV column feeds which field."""

    fields: list[tuple[int, str]]  # (cell index, field name or custom.KEY)
    ignored: list[str] = field(default_factory=list)


def plan_columns(path: Path, header: list[str], mapping: dict[str, str] | None = None) -> ColumnPlan:
    mapping = mapping or {}
    by_lower = {k.lower(): (k, v) for k, v in mapping.items()}
    header_lower = {h.lower() for h in header}
    for key, (orig, target) in by_lower.items():
        if key not in header_lower:
            raise ValidationError(f"--map {orig}={target}",
                                  f"no column {orig!r} in {path.name} (columns: {', '.join(header)})")
    plan = ColumnPlan(fields=[])
    owner_of: dict[str, str] = {}
    for idx, name in enumerate(header):
        if name in F.ERROR_COLUMNS:
            continue
        if name.lower() in by_lower:
            orig, target = by_lower[name.lower()]
            found = F.resolve_target(target, f"--map {orig}={target}")
            if found is None:
                continue
        else:
            found = F.field_for_header(name)
            if found is None:
                plan.ignored.append(name or f"column {idx + 1}")
                continue
        if found in owner_of:
            raise ValidationError(str(path), f"columns {owner_of[found]!r} and {name!r} both map to {found}; "
                                  f"skip one with --map {name!r}=-")
        owner_of[found] = name
        plan.fields.append((idx, found))
    if "email" not in owner_of:
        raise ValidationError(str(path), f"no email column (columns: {', '.join(header) or 'none'}); "
                              "name it Email or use --map COLUMN=email")
    return plan


class _Upsert:
    """The chunk writer: one dialect upsert statement over a fixed column list, in table order."""

    def __init__(self, conn: Connection, columns: list[str], updates: set[str]) -> None:
        """`columns` are bound on insert; only `updates` (the columns the file maps) change on conflict."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = conn.dialect.name
        insert: Any = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        stmt = insert(lead).values({c: bindparam(c, type_=lead.c[c].type) for c in columns})
        exc = stmt.excluded
        set_: dict[str, Any] = {}
        for col in columns:
            if col not in updates:
                continue
            if col == "updated_at":
                set_[col] = exc[col]
            elif col in ("opted_out", "bounced"):
                set_[col] = or_(lead.c[col], exc[col])
            elif col == "custom":
                set_[col] = (func.json_patch(lead.c.custom, exc.custom) if dialect == "sqlite"
                             else lead.c.custom.op("||")(exc.custom))
            else:
                set_[col] = func.coalesce(exc[col], lead.c[col])
        self.stmt = stmt.on_conflict_do_update(index_elements=[lead.c.email], set_=set_)
        self.raw = dialect == "sqlite"
        compiled = self.stmt.compile(dialect=conn.dialect)
        self.sql = str(compiled)
        order = list(compiled.positiontup or []) if self.raw else list(columns)
        if self.raw and order != columns:
            raise AssertionError(f"upsert binds {order}, expected {columns}")
        self.columns = columns
        #: What a refused write raises: DBAPI errors raw, SQLAlchemy-wrapped ones through Core.
        self.errors: tuple[type[Exception], ...] = (DBAPIError, conn.dialect.loaded_dbapi.Error)

    def write(self, conn: Connection, rows: list[Sequence[Any]]) -> None:
        if self.raw:
            cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cur.executemany(self.sql, rows)
            finally:
                cur.close()
        else:
            cols = self.columns
            conn.execute(self.stmt, [dict(zip(cols, row, strict=True)) for row in rows])


class _Importer:
    def __init__(self, ws: Workspace, src: CsvSource, plan: ColumnPlan, dry_run: bool,
                 progress: Progress | None, consent: ConsentGrant | None = None) -> None:
        self.ws = ws
        self.consent = consent
        self.erased = 0
        self.consented: dict[str, int] = dict.fromkeys(consent.categories, 0) if consent else {}
        self.src = src
        self.plan = plan
        self.dry_run = dry_run
        self.progress = progress
        self.now = ws.clock.now()
        self.raw = ws.engine.dialect.name == "sqlite"
        self.errors = ErrorsFile(errors_path(src.path), src.header, src.delimiter)
        self.imported = self.updated = self.rows = 0
        self.seen: set[str] = set()
        self.sf_ids: dict[str, tuple[str, int]] = {}  # sf_id → (email, line) within this file
        self._load_lookups()
        self._build_layout()

    # -- set-up ------------------------------------------------------------------------------------------

    def _load_lookups(self) -> None:
        with self.ws.engine.connect() as conn:
            self.users: dict[str, int] = {}
            for uid, username, email in conn.execute(select(user.c.id, user.c.username, user.c.email)):
                self.users[username.lower()] = uid
                if email:
                    self.users.setdefault(email.lower(), uid)
            from ..scoring.grading import load_profiles

            self.grading = bool(load_profiles(conn))
            self.accounts: dict[str, int] = {}
            if any(f == "company" for _, f in self.plan.fields):
                for aid, name in conn.execute(select(account.c.id, account.c.name)):
                    self.accounts.setdefault(name.strip().lower(), aid)

    def _build_layout(self) -> None:
        mapped = {F.column_for(f) for _, f in self.plan.fields if not f.startswith(F.CUSTOM_PREFIX)}
        wanted = mapped | {"email", "custom", "created_at", "updated_at"}
        # Bind every column that has a Python-side default too, so no default is left for Core to fill
        # in (the raw path would not) and the bound list is exactly `columns`.
        wanted |= {c.name for c in lead.columns if c.default is not None and not c.primary_key}
        if self.accounts:
            wanted.add("account_id")
        self.columns = [c.name for c in lead.columns if c.name in wanted]
        # What an update may change: the mapped fields and their bookkeeping, never an unmapped column's
        # default (a re-import must not reset scores or flags the file does not mention).
        self.updates = (mapped - {"email"}) | {"updated_at"}
        if any(f.startswith(F.CUSTOM_PREFIX) for _, f in self.plan.fields):
            self.updates.add("custom")
        if self.accounts:
            self.updates.add("account_id")
        pos = {c: i for i, c in enumerate(self.columns)}
        template: list[Any] = []
        for name in self.columns:
            default = lead.c[name].default
            arg = getattr(default, "arg", None)
            template.append(None if arg is None or callable(arg) else arg)
        now_value: Any = to_db(self.now) if self.raw else self.now
        template[pos["created_at"]] = now_value
        template[pos["updated_at"]] = now_value
        template[pos["custom"]] = "{}" if self.raw else {}
        self.template = template
        self.pos = pos
        # Cells are converted column by column over a whole chunk, with C-level `map`s for the common
        # cases (strip, lower, regex match, dictionary lookup) and per-cell Python only for the rare bad
        # or unusual value: most of a row's cost is then the database's, not ours.
        self.fields: list[tuple[int, str, str, Any]] = []  # (cell index, field, kind, extra)
        for idx, f in self.plan.fields:
            if f.startswith(F.CUSTOM_PREFIX):
                self.fields.append((idx, f, "custom", f[len(F.CUSTOM_PREFIX):]))
            elif F.BY_NAME[f].kind in ("email", "text"):
                self.fields.append((idx, f, F.BY_NAME[f].kind, F.max_length(f) or 1 << 30))
            else:  # coded: numbers, enums, zones, owners, booleans; memoised per distinct raw value
                self.fields.append((idx, f, "coded", (F.converter_for(f, self.users), {})))
        self.width = len(self.src.header)

    # -- per row -----------------------------------------------------------------------------------------

    def convert(self, recs: list[Record]) -> tuple[list[Sequence[Any]], list[Record]]:
        """The rows to write for a chunk of records (and those records); rejected ones go to the errors
        file with the first bad field, in line order."""
        problems: list[tuple[int, str, list[str]]] = []
        kept: list[Record] = []
        table: list[list[str]] = []
        width = self.width
        for rec in recs:
            cells = rec.cells
            if rec.error is not None:
                problems.append((rec.line, rec.error, cells))
                continue
            if len(cells) != width:
                if len(cells) > width and any(c.strip() for c in cells[width:]):
                    problems.append((rec.line, f"{len(cells)} fields, but the header has {width}", cells))
                    continue
                cells = (cells + [""] * width)[:width]
            kept.append(rec)
            table.append(cells)
        bad: dict[int, str] = {}
        values: dict[int, list[Any]] = {}
        custom: list[tuple[str, list[str]]] = []
        columns = list(zip(*table, strict=True)) if table else []
        for idx, name, kind, extra in self.fields:
            col = columns[idx] if columns else ()
            if kind == "custom":
                custom.append((extra, list(map(str.strip, col))))
            elif kind == "email":
                values[self.pos["email"]] = self._emails(col, bad)
            elif kind == "text":
                values[self.pos[name]] = self._texts(col, name, extra, bad)
            else:
                conv, cache = extra
                values[self.pos[F.column_for(name)]] = self._coded(col, name, conv, cache, bad)
        if custom:
            values[self.pos["custom"]] = self._customs(custom, len(table))
        if self.accounts and "company" in self.pos:
            accounts = self.accounts
            values[self.pos["account_id"]] = [accounts.get(c.lower()) if c else None
                                              for c in values[self.pos["company"]]]
        n = len(table)
        rows: list[Sequence[Any]] = list(zip(*[values.get(i) or itertools.repeat(v, n)
                                               for i, v in enumerate(self.template)], strict=True))
        if bad:
            problems.extend((kept[i].line, reason, kept[i].cells) for i, reason in bad.items())
            rows = [r for i, r in enumerate(rows) if i not in bad]
            kept = [r for i, r in enumerate(kept) if i not in bad]
        if "sf_id" in self.pos:
            rows, kept = self._check_sf_ids(rows, kept, problems)
        for line, reason, cells in sorted(problems, key=lambda p: p[0]):
            self.errors.add(line, reason, cells)
        return rows, kept

    @staticmethod
    def _emails(col: Sequence[str], bad: dict[int, str]) -> list[str]:
        emails = list(map(str.lower, map(str.strip, col)))
        for i, ok in enumerate(map(F.EMAIL_RE.fullmatch, emails)):
            if ok is None or len(emails[i]) > F.EMAIL_MAX:  # the full check, with its precise reason
                try:
                    emails[i] = F.normalise_email(col[i])
                except F.CellError as exc:
                    bad.setdefault(i, f"email: {exc}")
        return emails

    @staticmethod
    def _texts(col: Sequence[str], name: str, limit: int, bad: dict[int, str]) -> list[str | None]:
        texts = list(map(str.strip, col))
        if texts and max(map(len, texts)) > limit:
            for i, value in enumerate(texts):
                if len(value) > limit:
                    bad.setdefault(i, f"{name}: longer than {limit} characters")
        return [t or None for t in texts]

    @staticmethod
    def _coded(col: Sequence[str], name: str, conv: F.Converter, cache: dict[str, Any],
               bad: dict[int, str]) -> list[Any]:
        failed: dict[str, str] = {}
        for raw in set(col) - cache.keys():
            try:
                value = conv(raw)
            except F.CellError as exc:
                failed[raw] = f"{name}: {exc}"
                continue
            if len(cache) < 4096:
                cache[raw] = value
            else:
                failed.setdefault(raw, "")  # cache full: converted below, one by one
        if not failed:
            return list(map(cache.__getitem__, col))
        out: list[Any] = []
        for i, raw in enumerate(col):
            if raw in cache:
                out.append(cache[raw])
            elif failed[raw]:
                bad.setdefault(i, failed[raw])
                out.append(None)
            else:
                out.append(conv(raw))
        return out

    def _customs(self, custom: list[tuple[str, list[str]]], n: int) -> list[Any]:
        out: list[Any] = []
        for i in range(n):
            extra = {key: vals[i] for key, vals in custom if vals[i]}
            if self.raw:
                out.append(json.dumps(extra, ensure_ascii=False) if extra else "{}")
            else:
                out.append(extra)
        return out

    def _check_sf_ids(self, rows: list[Sequence[Any]], recs: list[Record],
                      problems: list[tuple[int, str, list[str]]]) -> tuple[list[Sequence[Any]], list[Record]]:
        """The same Salesforce id on two different emails in one file: the later row is rejected."""
        sf_pos, email_pos = self.pos["sf_id"], self.pos["email"]
        kept_rows, kept_recs = [], []
        for row, rec in zip(rows, recs, strict=True):
            sf_id, email = row[sf_pos], row[email_pos]
            if sf_id is not None:
                owner = self.sf_ids.setdefault(sf_id, (email, rec.line))
                if owner[0] != email:
                    problems.append((rec.line, f"sf_id: {sf_id} is already used by {owner[0]} (line {owner[1]})",
                                     rec.cells))
                    continue
            kept_rows.append(row)
            kept_recs.append(rec)
        return kept_rows, kept_recs

    # -- per chunk ---------------------------------------------------------------------------------------

    def flush(self, conn: Connection, upsert: _Upsert, rows: list[Sequence[Any]], recs: list[Record]) -> None:
        email_pos = self.pos["email"]
        rows, recs = self._reject_sf_conflicts(conn, rows, recs)
        rows, recs = self._reject_erased(conn, rows, recs)
        if not rows:
            return
        if self.dry_run or not self.raw:
            self._count_by_email(conn, [r[email_pos] for r in rows])
        if self.dry_run:
            return
        # SQLite, inside BEGIN IMMEDIATE: nobody else can insert, and new rows get ids above the current
        # maximum, so "how many rows now have a bigger id" is exactly how many emails were new.
        top = conn.execute(select(func.coalesce(func.max(lead.c.id), 0))).scalar_one() if self.raw else 0
        try:
            with conn.begin_nested():
                upsert.write(conn, rows)
        except upsert.errors:
            rows, recs = self._write_one_by_one(conn, upsert, rows, recs)
        if self.raw:
            new = conn.execute(select(func.count()).select_from(lead).where(lead.c.id > top)).scalar_one()
            self.imported += new
            self.updated += len(rows) - new
        if self.grading and rows:
            self._regrade(conn, [r[email_pos] for r in rows])
        if self.consent and rows:
            self._record_consent(conn, [r[email_pos] for r in rows])

    def _reject_erased(self, conn: Connection, rows: list[Sequence[Any]],
                       recs: list[Record]) -> tuple[list[Sequence[Any]], list[Record]]:
        """Addresses erased at the person's request never come back through a file."""
        email_pos = self.pos["email"]
        erased = erased_emails(conn, [r[email_pos] for r in rows])
        if not erased:
            return rows, recs
        kept_rows, kept_recs = [], []
        for row, rec in zip(rows, recs, strict=True):
            if row[email_pos] in erased:
                self.erased += 1
                self.errors.add(rec.line, "email: this person was erased at their request (nurture leads erase); "
                                          "not imported", rec.cells)
                continue
            kept_rows.append(row)
            kept_recs.append(rec)
        return kept_rows, kept_recs

    def _record_consent(self, conn: Connection, emails: list[str]) -> None:
        assert self.consent is not None
        ids: list[int] = []
        for part in chunks(emails, 5000):
            ids.extend(conn.execute(select(lead.c.id).where(lead.c.email.in_(part))).scalars())
        for category in self.consent.categories:
            res = record_consent(conn, ids, category, source="import", now=self.now, settings=self.ws.settings,
                                 legal_basis=self.consent.legal_basis, detail=f"import of {self.src.path.name}")
            self.consented[category] += res.granted + res.pending

    def _count_by_email(self, conn: Connection, emails: list[str]) -> None:
        existing = self._existing(conn, emails)
        for email in emails:
            if email in existing or email in self.seen:
                self.updated += 1
            else:
                self.imported += 1
                self.seen.add(email)

    def _regrade(self, conn: Connection, emails: list[str]) -> None:
        """Fit grades follow the fields just written (the grade profiles' contract with every writer)."""
        from ..scoring import grading

        ids: list[int] = []
        for part in chunks(emails, 5000):
            ids.extend(conn.execute(select(lead.c.id).where(lead.c.email.in_(part))).scalars())
        grading.regrade(conn, ids, self.now, self.ws.settings)

    def _existing(self, conn: Connection, emails: list[str]) -> set[str]:
        """Which of these emails are already stored: one bound parameter however many emails (a JSON
        array on SQLite, an array on PostgreSQL), so the lookup costs the index probes and nothing else."""
        unique = list(set(emails) - self.seen)
        if not unique:
            return set()
        if conn.dialect.name == "sqlite":
            sql = "SELECT email FROM lead WHERE email IN (SELECT value FROM json_each(?))"
            return {r[0] for r in conn.exec_driver_sql(sql, (json.dumps(unique),))}
        stmt = select(lead.c.email).where(lead.c.email == any_(bindparam("emails", type_=ARRAY(String))))
        return set(conn.execute(stmt, {"emails": unique}).scalars())

    def _reject_sf_conflicts(self, conn: Connection, rows: list[Sequence[Any]],
                             recs: list[Record]) -> tuple[list[Sequence[Any]], list[Record]]:
        """A Salesforce id that already belongs to a lead with another email cannot be imported."""
        if "sf_id" not in self.pos:
            return rows, recs
        sf_pos, email_pos = self.pos["sf_id"], self.pos["email"]
        ids = [r[sf_pos] for r in rows if r[sf_pos] is not None]
        owners: dict[str, str] = {}
        for part in chunks(ids, 5000):
            stmt = select(lead.c.sf_id, lead.c.email).where(lead.c.sf_id.in_(part))
            owners.update((sf_id, email) for sf_id, email in conn.execute(stmt))
        if not owners:
            return rows, recs
        kept_rows, kept_recs = [], []
        for row, rec in zip(rows, recs, strict=True):
            other = owners.get(row[sf_pos])
            if other is not None and other != row[email_pos]:
                self.errors.add(rec.line, f"sf_id: {row[sf_pos]} already belongs to {other}", rec.cells)
                continue
            kept_rows.append(row)
            kept_recs.append(rec)
        return kept_rows, kept_recs

    def _write_one_by_one(self, conn: Connection, upsert: _Upsert, rows: list[Sequence[Any]],
                          recs: list[Record]) -> tuple[list[Sequence[Any]], list[Record]]:
        kept_rows, kept_recs = [], []
        for row, rec in zip(rows, recs, strict=True):
            try:
                with conn.begin_nested():
                    upsert.write(conn, [row])
            except upsert.errors as exc:
                orig = exc.orig if isinstance(exc, DBAPIError) else exc
                reason = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
                self.errors.add(rec.line, f"database refused the row: {reason}", rec.cells)
                continue
            kept_rows.append(row)
            kept_recs.append(rec)
        return kept_rows, kept_recs

    # -- the run -----------------------------------------------------------------------------------------

    def _chunks(self, reader: RecordReader) -> Iterator[tuple[list[Sequence[Any]], list[Record], int]]:
        """Converted chunks (rows, their records, bytes read so far)."""
        chunk: list[Record] = []
        for rec in reader:
            chunk.append(rec)
            if len(chunk) >= CHUNK_ROWS:
                self.rows += len(chunk)
                yield (*self.convert(chunk), reader.position())
                chunk = []
        self.rows += len(chunk)
        yield (*self.convert(chunk), self.src.size)

    def run(self) -> ImportResult:
        try:
            with RecordReader(self.src) as reader, self._connection() as conn:
                for rows, recs, position in self._chunks(reader):
                    if rows:
                        with conn.begin():
                            self.flush(conn, self._upsert(conn), rows, recs)
                    if self.progress:
                        self.progress(position, self.src.size, self.rows)
        finally:
            self.errors.close()
        result = ImportResult(
            path=self.src.path, rows=self.rows, imported=self.imported, updated=self.updated,
            rejected=self.errors.count, dry_run=self.dry_run,
            errors_file=self.errors.path if self.errors.count else None,
            ignored_columns=tuple(self.plan.ignored), erased=self.erased, consent=self.consented,
        )
        if not self.dry_run:
            with write_tx(self.ws.engine) as conn:
                audit.record(conn, at=self.now, user=self.ws.user, action="leads.import", entity="lead",
                             after={"file": str(self.src.path), "imported": result.imported,
                                    "updated": result.updated, "rejected": result.rejected})
        return result

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Connection]:
        """One connection for the whole import, one transaction per chunk (`BEGIN IMMEDIATE` on SQLite).

        SQLite: WAL auto-checkpoints are paused while the chunks go in and one checkpoint runs at the
        end. Otherwise every chunk's commit would copy the WAL back into the database file, rewriting
        the same upper index pages a hundred times over (that was a third of a 1M-row import)."""
        with self.ws.engine.connect() as conn:
            if not self.raw:
                yield conn
                return
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            every = dbapi.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
            dbapi.execute("PRAGMA wal_autocheckpoint=0")
            try:
                yield conn.execution_options(sqlite_begin="" if self.dry_run else "IMMEDIATE")
            finally:
                dbapi.execute(f"PRAGMA wal_autocheckpoint={int(every)}")
                if not self.dry_run:
                    dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _upsert(self, conn: Connection) -> _Upsert:
        if not hasattr(self, "_stmt"):
            self._stmt = _Upsert(conn, self.columns, self.updates)
        return self._stmt


def import_csv(
    ws: Workspace,
    path: Path | str,
    *,
    mapping: dict[str, str] | None = None,
    dry_run: bool = False,
    encoding: str = "utf-8",
    progress: Progress | None = None,
    consent: ConsentGrant | None = None,
) -> ImportResult:
    """Import leads from a CSV file. Raises ValidationError when the file itself is unusable (missing,
    not CSV text, no email column, bad --map); bad rows are rejected into FILE.errors.csv instead."""
    src = inspect_csv(Path(path), encoding)
    plan = plan_columns(src.path, src.header, mapping)
    if consent is not None:
        from ..compliance.consent import check_category

        with ws.engine.connect() as conn:  # an unknown category is a mistake in the command, before any row
            for category in consent.categories:
                check_category(conn, category, ws.settings)
    return _Importer(ws, src, plan, dry_run, progress, consent).run()

