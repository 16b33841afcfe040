"""Sequences in the store: apply/export YAML, publish immutable versions, pause/resume, list, diff,
migrate waiting enrollments, and the cached compiled form the engine runs (`load_version`).

Every function takes an open Connection and runs inside the caller's transaction (`write_tx` for
writes): a failed apply or publish leaves nothing half-written. Time comes from the `now` argument.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Connection, and_, func, insert, select, update

from ..errors import NotFoundError, NurtureError, ValidationError
from ..store import audit
from ..store.tables import enrollment, segment, sequence, sequence_version, template
from ..yamlfile import read_text
from .codec import Parsed, dump_definition, line_at, load_yaml, parse_data, parse_text, pydantic_problems
from .model import CompiledSequence, SequenceDef, Step, TemplateSpec, compile_definition, iter_steps
from .problems import Loc, Problem, ProblemsError
from .validate import Catalog, default_rule_parser, validate_definition, walk

TEMPLATES_DIRNAME = "templates"


# ---------------------------------------------------------------------------------------------------
# Reading and checking files


@dataclass
class FileCheck:
    """A parsed and validated sequence file, with the templates it brings (inline + directory)."""

    filename: str
    parsed: Parsed
    templates: dict[str, TemplateSpec] = field(default_factory=dict)  # referenced + inline, by name
    template_files: dict[str, str] = field(default_factory=dict)  # name -> templates/ file it came from
    problems: list[Problem] = field(default_factory=list)

    @property
    def definition(self) -> SequenceDef:
        assert self.parsed.definition is not None
        return self.parsed.definition

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [p.format(self.filename) for p in self.problems]

    def raise_for_problems(self) -> None:
        if self.problems:
            raise ProblemsError(self.filename, self.problems)


def read_templates_dir(directory: Path) -> tuple[dict[str, tuple[TemplateSpec, str]], list[Problem]]:
    """Templates from `directory/*.yaml`: each file holds one template mapping or `templates: [...]`.
    Returns ({name: (template, file label)}, problems — each naming its own file)."""
    out: dict[str, tuple[TemplateSpec, str]] = {}
    errors: list[Problem] = []
    if not directory.is_dir():
        return out, errors
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        label = f"{directory.name}/{path.name}"
        try:
            text = read_text(path)
        except ValidationError as exc:
            errors.append(Problem("", exc.message, None, label))
            continue
        data, root, problems = load_yaml(text, label)
        errors += [replace(p, file=label) for p in problems]
        if problems:
            continue
        items = data.get("templates") if isinstance(data, dict) and "templates" in data else [data]
        if not isinstance(items, list):
            errors.append(Problem("templates", "must be a list", line_at(root, ("templates",)), label))
            continue
        listed = isinstance(data, dict) and "templates" in data
        for i, item in enumerate(items):
            try:
                spec = TemplateSpec.model_validate(item)
            except PydanticValidationError as exc:
                prefix: Loc = ("templates", i) if listed else ()
                ctx = Parsed(filename=label, data=data, root=root)
                errors += [replace(p, file=label) for p in pydantic_problems(exc, ctx, prefix)]
                continue
            out[spec.name] = (spec, label)
    return out, errors


def store_catalog(conn: Connection | None, extra_templates: set[str] | None = None) -> Catalog:
    """What the store knows: template names and saved segments (None conn → those checks are skipped)."""
    if conn is None:
        return Catalog(templates=None, segment_exists=None, parse_rule=default_rule_parser())
    names = set(conn.execute(select(template.c.name)).scalars()) | (extra_templates or set())

    def segment_exists(name: str) -> bool:
        return conn.execute(select(segment.c.id).where(func.lower(segment.c.name) == name.lower())).first() is not None

    return Catalog(templates=names, segment_exists=segment_exists, parse_rule=default_rule_parser())


def check_text(
    conn: Connection | None, text: str, filename: str, *, templates_dir: Path | None = None
) -> FileCheck:
    """Parse + validate a sequence file's text (nothing is written)."""
    parsed = parse_text(text, filename)
    fc = FileCheck(filename=filename, parsed=parsed, problems=list(parsed.problems))
    if parsed.definition is None:
        return fc
    defn = parsed.definition
    library: dict[str, tuple[TemplateSpec, str]] = {}
    if templates_dir is not None:
        library, errors = read_templates_dir(templates_dir)
        fc.problems += errors
    inline = {t.name: t for t in defn.templates}
    referenced = _referenced_templates(defn)
    fc.templates = dict(inline)
    for name in referenced:
        if name not in fc.templates and name in library:
            fc.templates[name], fc.template_files[name] = library[name]
    catalog = store_catalog(conn, set(fc.templates))
    if conn is None:
        catalog.templates = set(fc.templates) | set(library)
    fc.problems += validate_definition(defn, catalog, data=parsed.data,
                                       locate=lambda loc: line_at(parsed.root, loc))
    fc.problems += _template_problems(parsed, defn, fc)
    return fc


def check_file(conn: Connection | None, path: Path | str) -> FileCheck:
    path = Path(path)
    text = read_text(path)  # size-limited, and a bad byte is named by its line
    return check_text(conn, text, path.name, templates_dir=path.parent / TEMPLATES_DIRNAME)


def _referenced_templates(defn: SequenceDef) -> list[str]:
    names: list[str] = []
    for step, _loc in walk(defn.steps, ("steps",)):
        if step.send is not None and step.send.template not in names:
            names.append(step.send.template)
    return names


def _template_problems(parsed: Parsed, defn: SequenceDef, fc: FileCheck) -> list[Problem]:
    """Template syntax and merge fields, checked by the mail package the way saving would."""
    from ..mail.templates import validate as validate_template

    inline_index = {t.name: i for i, t in enumerate(defn.templates)}
    out: list[Problem] = []
    for name, spec in fc.templates.items():
        try:
            validate_template(name=spec.name, subject=spec.subject, html=spec.html, text=spec.text,
                              category=spec.category, stage=spec.stage)
        except ValidationError as exc:
            if name in inline_index:
                out.append(parsed.problem(("templates", inline_index[name]), str(exc)))
            else:
                out.append(Problem("", str(exc), file=fc.template_files.get(name)))
    return out


# ---------------------------------------------------------------------------------------------------
# Apply / export


@dataclass(frozen=True)
class ApplyResult:
    name: str
    sequence_id: int
    created: bool
    changed: bool
    templates: tuple[str, ...]  # templates created or updated from the file


def checksum(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def apply_file(conn: Connection, path: Path | str, *, user: str, now: datetime) -> ApplyResult:
    """Create or update the draft of the sequence in `path` (and its templates). Raises ProblemsError."""
    fc = check_file(conn, path)
    return apply_checked(conn, fc, user=user, now=now, source_file=str(path))


def apply_text(conn: Connection, text: str, filename: str, *, user: str, now: datetime,
               templates_dir: Path | None = None) -> ApplyResult:
    fc = check_text(conn, text, filename, templates_dir=templates_dir)
    return apply_checked(conn, fc, user=user, now=now, source_file=None)


def save_draft(conn: Connection, defn: SequenceDef, *, user: str, now: datetime,
               allow_problems: bool = False) -> ApplyResult:
    """Save an edited definition as the draft (the TUI tree editor): the same checks as a file. With
    `allow_problems` a draft that does not validate yet is stored anyway (work in progress is never lost);
    `publish` checks again and refuses it until its problems are fixed."""
    fc = check_text(conn, dump_definition(defn), f"sequence {defn.name}")
    return apply_checked(conn, fc, user=user, now=now, source_file=None, allow_problems=allow_problems)


def apply_checked(conn: Connection, fc: FileCheck, *, user: str, now: datetime,
                  source_file: str | None, allow_problems: bool = False) -> ApplyResult:
    if not allow_problems or fc.parsed.definition is None:
        fc.raise_for_problems()
    defn = fc.definition
    saved = tuple(
        spec.name for spec in fc.templates.values() if _upsert_valid(conn, spec, user, now, allow_problems)
    )
    draft = defn.to_json()
    row = conn.execute(select(sequence).where(sequence.c.name == defn.name)).mappings().first()
    if row is None:
        sid = _new_id(conn.execute(insert(sequence).values(
            name=defn.name, description=defn.description, status="draft", draft=draft,
            source_file=source_file, created_at=now, updated_at=now,
        )))
        audit.record(conn, at=now, user=user, action="create", entity="sequence", entity_id=sid,
                     after={"name": defn.name, "steps": len(compile_definition(defn).nodes)})
        return ApplyResult(defn.name, int(sid), True, True, saved)
    sid = int(row["id"])
    changed = checksum(row["draft"] or {}) != checksum(draft)
    if changed or row["description"] != defn.description:
        conn.execute(update(sequence).where(sequence.c.id == sid).values(
            draft=draft, description=defn.description, updated_at=now,
            source_file=source_file or row["source_file"],
        ))
        before = _safe_def(row["draft"])
        audit.record(conn, at=now, user=user, action="apply", entity="sequence", entity_id=sid,
                     before={"checksum": checksum(row["draft"] or {})},
                     after={"checksum": checksum(draft),
                            "diff": diff_definitions(before, defn).as_dict() if before else None})
    return ApplyResult(defn.name, sid, False, changed, saved)


def _upsert_valid(conn: Connection, spec: TemplateSpec, user: str, now: datetime, allow_problems: bool) -> bool:
    """Store an inline template; while a draft may have problems, a template that does not validate yet is
    left out (the draft's problems say why) instead of failing the whole save."""
    try:
        return _upsert_template(conn, spec, user=user, now=now)
    except ValidationError:
        if not allow_problems:
            raise
        return False


def _new_id(result: Any) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _upsert_template(conn: Connection, spec: TemplateSpec, *, user: str, now: datetime) -> bool:
    """Save a template through the mail package; True when it was created or changed."""
    from ..mail.templates import upsert_template

    before = conn.execute(select(template.c.version, template.c.category, template.c.stage)
                          .where(template.c.name == spec.name)).first()
    upsert_template(conn, name=spec.name, subject=spec.subject, html=spec.html, text=spec.text,
                    category=spec.category, stage=spec.stage, user=user, now=now)
    after = conn.execute(select(template.c.version, template.c.category, template.c.stage)
                         .where(template.c.name == spec.name)).first()
    return before is None or tuple(before) != tuple(after or ())


def _safe_def(data: dict[str, Any] | None) -> SequenceDef | None:
    if not data:
        return None
    try:
        return SequenceDef.model_validate(data)
    except Exception:
        return None


def get_row(conn: Connection, name: str, *, lock: bool = False) -> dict[str, Any]:
    """The sequence row; `lock=True` holds it (FOR UPDATE on PostgreSQL) so concurrent publishes queue."""
    stmt = select(sequence).where(sequence.c.name == name)
    if lock and conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(f"sequence {name!r} not found (see `nurture sequences list`)")
    return dict(row)


def draft_definition(conn: Connection, name: str) -> SequenceDef:
    row = get_row(conn, name)
    defn, problems = parse_data(row["draft"])
    if defn is None:
        raise ProblemsError(f"sequence {name}", problems)
    return defn


def check_draft(conn: Connection, name: str) -> list[Problem]:
    """Problems of the stored draft against the store now (what `publish` would refuse)."""
    return validate_definition(draft_definition(conn, name), store_catalog(conn))


def export(conn: Connection, name: str, *, version: int | None = None) -> str:
    """The draft (or a published version) as YAML; inline templates carry their stored content."""
    if version is None:
        defn = draft_definition(conn, name)
    else:
        defn = SequenceDef.model_validate(_version_row(conn, name, version)["definition"])
    stored = {r["name"]: r for r in conn.execute(
        select(template).where(template.c.name.in_([t.name for t in defn.templates]))).mappings()}
    templates = []
    for t in defn.templates:
        row = stored.get(t.name)
        templates.append(t if row is None else TemplateSpec(
            name=t.name, subject=row["subject"], html=row["html"], text=row["text"],
            category=row["category"], stage=row["stage"]))
    return dump_definition(defn, templates)


# ---------------------------------------------------------------------------------------------------
# Diffs


@dataclass(frozen=True)
class DefinitionDiff:
    added: list[str]
    removed: list[str]
    changed: list[str]
    settings: list[str]  # top-level settings whose value changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.settings)

    def as_dict(self) -> dict[str, list[str]]:
        return {"added": self.added, "removed": self.removed, "changed": self.changed, "settings": self.settings}

    def summary(self) -> str:
        parts = [f"{k}: {', '.join(v)}" for k, v in self.as_dict().items() if v]
        return "; ".join(parts) or "no changes"


def _signatures(defn: SequenceDef) -> dict[str, str]:
    """Per step: its own settings plus where it leads (so a moved step counts as changed)."""
    compiled = compile_definition(defn)
    out: dict[str, str] = {}
    for nid, node in compiled.nodes.items():
        own = node.step.model_dump(mode="json", exclude_none=True, exclude={"yes", "no", "split", "label"})
        if node.step.split:
            own["arms"] = [(n, w) for n, w, _f in node.arms]
        own["_to"] = [node.next, node.yes, node.no, [f for _n, _w, f in node.arms]]
        out[nid] = json.dumps(own, sort_keys=True, default=str)
    return out


def diff_definitions(old: SequenceDef | None, new: SequenceDef) -> DefinitionDiff:
    a = _signatures(old) if old else {}
    b = _signatures(new)
    settings: list[str] = []
    if old is not None:
        oj, nj = old.to_json(), new.to_json()
        for key in sorted(set(oj) | set(nj)):
            if key not in ("steps", "name") and oj.get(key) != nj.get(key):
                settings.append(key)
    return DefinitionDiff(
        added=[k for k in b if k not in a],
        removed=[k for k in a if k not in b],
        changed=[k for k in b if k in a and a[k] != b[k]],
        settings=settings,
    )


# ---------------------------------------------------------------------------------------------------
# Versions


@dataclass(frozen=True)
class MigrationResult:
    moved: int
    stayed: int
    stayed_by_reason: dict[str, int]


@dataclass(frozen=True)
class PublishResult:
    name: str
    version_id: int
    number: int
    created: bool  # False: the draft equals the current version, nothing new was published
    diff: DefinitionDiff
    migration: MigrationResult | None


def publish(conn: Connection, name: str, *, user: str, now: datetime, migrate: bool = False) -> int:
    """Publish the draft as a new immutable version; returns its id (the existing one if unchanged)."""
    return publish_report(conn, name, user=user, now=now, migrate=migrate).version_id


def publish_report(conn: Connection, name: str, *, user: str, now: datetime, migrate: bool = False) -> PublishResult:
    row = get_row(conn, name, lock=True)
    defn = draft_definition(conn, name)
    problems = check_draft(conn, name)
    if problems:
        raise ProblemsError(f"sequence {name}", problems)
    definition = defn.to_json()
    digest = checksum(definition)
    prev = None
    if row["current_version_id"] is not None:
        prev = conn.execute(select(sequence_version).where(
            sequence_version.c.id == row["current_version_id"])).mappings().first()
    prev_def = SequenceDef.model_validate(prev["definition"]) if prev else None
    diff = diff_definitions(prev_def, defn)
    if prev is not None and prev["checksum"] == digest:
        mig = migrate_enrollments(conn, name, user=user, now=now) if migrate else None
        return PublishResult(name, int(prev["id"]), int(prev["number"]), False, diff, mig)
    number = int(conn.execute(select(func.coalesce(func.max(sequence_version.c.number), 0))
                              .where(sequence_version.c.sequence_id == row["id"])).scalar_one()) + 1
    vid = _new_id(conn.execute(insert(sequence_version).values(
        sequence_id=row["id"], number=number, definition=definition, checksum=digest,
        published_at=now, published_by=user,
    )))
    status = "active" if row["status"] in ("draft", "archived") else row["status"]
    conn.execute(update(sequence).where(sequence.c.id == row["id"]).values(
        current_version_id=vid, status=status, updated_at=now))
    mig = migrate_enrollments(conn, name, user=user, now=now, audit_it=False) if migrate else None
    audit.record(
        conn, at=now, user=user, action="publish", entity="sequence", entity_id=row["id"],
        before={"version": prev["number"] if prev else None, "checksum": prev["checksum"] if prev else None},
        after={"version": number, "version_id": vid, "checksum": digest, "diff": diff.as_dict(),
               "migration": None if mig is None else {"moved": mig.moved, "stayed": mig.stayed,
                                                       "stayed_by_reason": mig.stayed_by_reason}},
    )
    return PublishResult(name, vid, number, True, diff, mig)


def migrate_enrollments(conn: Connection, name: str, *, user: str, now: datetime,
                        audit_it: bool = True) -> MigrationResult:
    """Move *waiting* enrollments on older versions to the current version where their node id exists
    there with the same kind. Active ones (being executed) and the rest stay on their version."""
    row = get_row(conn, name)
    target = row["current_version_id"]
    if target is None:
        raise NurtureError(f"sequence {name!r} has no published version to migrate to")
    new_nodes = load_version(conn, target).nodes
    groups = conn.execute(
        select(enrollment.c.version_id, enrollment.c.node_id, func.count())
        .where(enrollment.c.sequence_id == row["id"], enrollment.c.version_id != target,
               enrollment.c.status == "waiting")
        .group_by(enrollment.c.version_id, enrollment.c.node_id)
    ).all()
    moved = 0
    reasons: dict[str, int] = {}
    for version_id, node_id, count in groups:
        old_nodes = load_version(conn, version_id).nodes
        old = old_nodes.get(node_id) if node_id else None
        new = new_nodes.get(node_id) if node_id else None
        if new is None or old is None:
            reasons["node removed"] = reasons.get("node removed", 0) + int(count)
            continue
        if new.kind != old.kind:
            reasons["node kind changed"] = reasons.get("node kind changed", 0) + int(count)
            continue
        res = conn.execute(update(enrollment).where(and_(
            enrollment.c.sequence_id == row["id"], enrollment.c.version_id == version_id,
            enrollment.c.node_id == node_id, enrollment.c.status == "waiting",
        )).values(version_id=target))
        moved += int(res.rowcount or 0)
    result = MigrationResult(moved, sum(reasons.values()), reasons)
    if audit_it:
        audit.record(conn, at=now, user=user, action="migrate", entity="sequence", entity_id=row["id"],
                     after={"version_id": target, "moved": moved, "stayed": result.stayed,
                            "stayed_by_reason": reasons})
    return result


def _set_status(conn: Connection, name: str, status: str, *, user: str, now: datetime) -> str:
    row = get_row(conn, name)
    if status == "active" and row["current_version_id"] is None:
        raise NurtureError(f"sequence {name!r} has never been published; run `nurture sequences publish {name}`")
    if row["status"] != status:
        # pausing or resuming by hand clears the error the engine paused it for (engine/isolation.py)
        conn.execute(update(sequence).where(sequence.c.id == row["id"])
                     .values(status=status, error=None, updated_at=now))
        audit.record(conn, at=now, user=user, action="pause" if status == "paused" else "resume",
                     entity="sequence", entity_id=row["id"], before={"status": row["status"]},
                     after={"status": status})
    return str(row["status"])


def pause(conn: Connection, name: str, *, user: str, now: datetime) -> str:
    """Stop executing steps (enrollments keep their place); returns the previous status."""
    return _set_status(conn, name, "paused", user=user, now=now)


def resume(conn: Connection, name: str, *, user: str, now: datetime) -> str:
    return _set_status(conn, name, "active", user=user, now=now)


@dataclass(frozen=True)
class SequenceSummary:
    id: int
    name: str
    status: str
    version: int | None  # number of the current published version
    draft_changed: bool  # the draft differs from the current version (or nothing is published)
    enrolled: dict[str, int]  # enrollment status -> count (all versions)
    description: str
    updated_at: datetime | None
    error: str | None = None  # why the engine paused it (a broken reference), until resumed


def list_sequences(conn: Connection) -> list[SequenceSummary]:
    rows = conn.execute(
        select(sequence.c.id, sequence.c.name, sequence.c.status, sequence.c.draft, sequence.c.description,
               sequence.c.updated_at, sequence.c.error, sequence_version.c.number, sequence_version.c.checksum)
        .select_from(sequence.outerjoin(sequence_version, sequence_version.c.id == sequence.c.current_version_id))
        .order_by(sequence.c.name)
    ).all()
    counts: dict[int, dict[str, int]] = {}
    for sid, status, n in conn.execute(
        select(enrollment.c.sequence_id, enrollment.c.status, func.count())
        .group_by(enrollment.c.sequence_id, enrollment.c.status)
    ):
        counts.setdefault(sid, {})[status] = int(n)
    return [
        SequenceSummary(
            id=r.id, name=r.name, status=r.status, version=r.number,
            draft_changed=r.checksum is None or checksum(r.draft or {}) != r.checksum,
            enrolled=counts.get(r.id, {}), description=r.description or "", updated_at=r.updated_at,
            error=r.error,
        )
        for r in rows
    ]


@dataclass(frozen=True)
class VersionInfo:
    id: int
    number: int
    checksum: str
    published_at: datetime | None
    published_by: str | None
    current: bool


def versions(conn: Connection, name: str) -> list[VersionInfo]:
    row = get_row(conn, name)
    rows = conn.execute(select(sequence_version.c.id, sequence_version.c.number, sequence_version.c.checksum,
                               sequence_version.c.published_at, sequence_version.c.published_by)
                        .where(sequence_version.c.sequence_id == row["id"]).order_by(sequence_version.c.number))
    return [VersionInfo(r.id, r.number, r.checksum, r.published_at, r.published_by,
                        r.id == row["current_version_id"]) for r in rows]


def _version_row(conn: Connection, name: str, number: int) -> dict[str, Any]:
    row = get_row(conn, name)
    found = conn.execute(select(sequence_version).where(
        sequence_version.c.sequence_id == row["id"], sequence_version.c.number == number)).mappings().first()
    if found is None:
        raise NotFoundError(f"sequence {name!r} has no version {number}")
    return dict(found)


def diff(conn: Connection, name: str, old: int | None = None, new: int | None = None) -> DefinitionDiff:
    """Diff two versions by number; `new=None` is the draft, `old=None` the current version."""
    row = get_row(conn, name)
    if old is None:
        if row["current_version_id"] is None:
            old_def = None
        else:
            old_def = load_version(conn, row["current_version_id"]).definition
    else:
        old_def = SequenceDef.model_validate(_version_row(conn, name, old)["definition"])
    new_def = draft_definition(conn, name) if new is None else SequenceDef.model_validate(
        _version_row(conn, name, new)["definition"])
    return diff_definitions(old_def, new_def)


# ---------------------------------------------------------------------------------------------------
# Compiled versions for the engine and the simulator

_CACHE_SIZE = 256
_cache: OrderedDict[str, CompiledSequence] = OrderedDict()
_cache_lock = threading.Lock()


def load_version(conn: Connection, version_id: int) -> CompiledSequence:
    """The compiled form of a published version. Cached by checksum (versions are immutable, and the
    checksum identifies the content even across databases): a hit costs one primary-key lookup."""
    digest = conn.execute(select(sequence_version.c.checksum).where(sequence_version.c.id == version_id)).scalar()
    if digest is None:
        raise NotFoundError(f"sequence version {version_id} not found")
    if not digest:  # a row written without a checksum (not through publish): key by database and id
        digest = f"{conn.engine.url.render_as_string(hide_password=True)}#{version_id}"
    with _cache_lock:
        hit = _cache.get(digest)
        if hit is not None:
            _cache.move_to_end(digest)
            return hit
    definition = conn.execute(select(sequence_version.c.definition)
                              .where(sequence_version.c.id == version_id)).scalar_one()
    compiled = compile_definition(SequenceDef.model_validate(definition))
    with _cache_lock:
        _cache[digest] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def step_of(compiled: CompiledSequence, node_id: str) -> Step:
    return compiled.nodes[node_id].step


# ---------------------------------------------------------------------------------------------------
# Duplicate and delete (the Sequences list in the TUI, and the CLI)


def _rule_names_sequence(data: Any, lowered: str) -> bool:
    """Whether rule data has `in_sequence: <name>` anywhere in it."""
    if isinstance(data, list):
        return any(_rule_names_sequence(item, lowered) for item in data)
    if isinstance(data, dict):
        ref = data.get("in_sequence")
        if isinstance(ref, str) and ref.strip().lower() == lowered:
            return True
        return any(_rule_names_sequence(data[op], lowered) for op in ("all", "any", "none") if op in data)
    return False


def sequence_users(conn: Connection, name: str) -> list[str]:
    """What refers to sequence `name` by name: segments whose rule says `in_sequence: name`, and other
    sequences' drafts whose `enroll` action or rules name it (one label each, e.g. `segment Warm`)."""
    lowered = name.strip().lower()
    users = [f"segment {r.name}" for r in conn.execute(select(segment.c.name, segment.c.rule))
             if _rule_names_sequence(r.rule, lowered)]
    for r in conn.execute(select(sequence.c.name, sequence.c.draft).where(func.lower(sequence.c.name) != lowered)):
        defn = _safe_def(r.draft)
        if defn is None:
            continue
        rules = [defn.goal, *defn.exit_when, defn.entry.rule if defn.entry else None]
        steps = iter_steps(defn.steps)
        enrolls = any(s.action is not None and s.action.type == "enroll"
                      and str(s.action.sequence or "").strip().lower() == lowered for s in steps)
        branch_rules = [s.branch.rule for s in steps if s.branch is not None and s.branch.rule]
        if enrolls or any(_rule_names_sequence(rule, lowered) for rule in [*rules, *branch_rules] if rule):
            users.append(f"sequence {r.name}")
    return users


def duplicate_sequence(conn: Connection, name: str, new_name: str, *, user: str, now: datetime) -> ApplyResult:
    """A new sequence `new_name` whose draft is a copy of `name`'s draft (nothing published, nobody enrolled)."""
    new_name = _free_name(conn, new_name)
    defn = draft_definition(conn, name)
    try:
        copy = SequenceDef.model_validate({**defn.to_json(), "name": new_name})
    except PydanticValidationError as exc:
        raise ValidationError("new name", str(exc.errors()[0].get("msg", exc))) from None
    return save_draft(conn, copy, user=user, now=now)


def _free_name(conn: Connection, name: str) -> str:
    name = name.strip()
    if conn.execute(select(sequence.c.id).where(func.lower(sequence.c.name) == name.lower())).first():
        raise ValidationError("new name", f"a sequence named {name!r} exists already")
    return name


def apply_file_as(conn: Connection, path: Path | str, name: str, *, user: str, now: datetime) -> ApplyResult:
    """A new sequence `name` from a program file (a sample), with the templates the file brings: the
    file's own name is replaced, so starting from a sample never overwrites the sample's sequence."""
    name = _free_name(conn, name)
    fc = check_file(conn, path)
    fc.raise_for_problems()
    try:
        fc.parsed.definition = SequenceDef.model_validate({**fc.definition.to_json(), "name": name})
    except PydanticValidationError as exc:
        raise ValidationError("new name", str(exc.errors()[0].get("msg", exc))) from None
    return apply_checked(conn, fc, user=user, now=now, source_file=None)


def delete_sequence(conn: Connection, name: str, *, user: str, now: datetime) -> None:
    """Delete a sequence nobody was ever enrolled in and nothing refers to. A sequence with enrollments keeps
    its history for reports (pause it instead); one that segments or other sequences name is refused with
    the list of them."""
    row = get_row(conn, name, lock=True)
    enrolled: dict[str, int] = {str(st): int(n) for st, n in conn.execute(
        select(enrollment.c.status, func.count()).where(enrollment.c.sequence_id == row["id"])
        .group_by(enrollment.c.status))}
    if enrolled:
        live = sum(n for st, n in enrolled.items() if st in ("active", "waiting"))
        what = (f"{live:,} leads are enrolled in it" if live else
                f"it keeps the history of {sum(enrolled.values()):,} finished enrollments")
        raise ValidationError(f"sequence {row['name']!r}", f"cannot delete: {what}; pause it instead")
    users = sequence_users(conn, row["name"])
    if users:
        raise ValidationError(f"sequence {row['name']!r}", f"cannot delete: still used by {', '.join(users)}")
    conn.execute(sequence_version.delete().where(sequence_version.c.sequence_id == row["id"]))
    conn.execute(sequence.delete().where(sequence.c.id == row["id"]))
    audit.record(conn, at=now, user=user, action="delete", entity="sequence", entity_id=row["id"],
                 before={"name": row["name"], "checksum": checksum(row["draft"] or {})}, after=None)
    clear_cache()
