"""Templates: the list, a preview of the highlighted one, and the editor's model — a draft's every
problem, its preview for a chosen lead through the real compose path, versions and diffs, save, duplicate,
delete and test sends (all through the mail area, which checks, audits and renders)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from ..errors import ValidationError
from ..mail import templates as tpl
from ..mail.preview import DraftPreview, LeadChoice, TemplatePreview, draft_preview, lead_choice, placeholder_preview
from ..mail.templates import (
    MergeField,
    SavedTemplate,
    TemplateDraft,
    TemplateInfo,
    TemplateProblem,
    TemplateProblems,
    TemplateVersionInfo,
)
from ..mail.testsend import addresses_problem, build_test_message, deliver, record_test_send, split_addresses
from ..store.models import STAGES
from .session import ConsoleSession

__all__ = [
    "STAGES", "DraftPreview", "LeadChoice", "MergeField", "SavedTemplate", "TemplateDraft", "TemplateInfo",
    "TemplatePreview", "TemplateProblem", "TemplateProblems", "TemplateSource", "TemplateVersionInfo",
    "TemplatesConsole", "addresses_problem",
]


@dataclass(frozen=True)
class TemplateSource:
    """A stored template as the editor opens it."""

    draft: TemplateDraft
    version: int


class TemplatesConsole:
    AREA = "templates"

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session

    # -- reads -------------------------------------------------------------------------------------

    def list(self) -> list[TemplateInfo]:
        with self.session.read() as conn:
            return tpl.list_templates(conn)

    def preview(self, name: str) -> TemplatePreview:
        with self.session.read() as conn:
            return placeholder_preview(conn, name)

    def source(self, name: str) -> TemplateSource:
        with self.session.read() as conn:
            src = tpl.get_source(conn, name)
        return TemplateSource(TemplateDraft(src["name"], src["subject"], src["html"], src["text"], src["category"],
                                            src["stage"]), int(src["version"]))

    def versions(self, name: str) -> builtins.list[TemplateVersionInfo]:
        """Saved versions, newest first."""
        with self.session.read() as conn:
            return tpl.list_versions(conn, name)

    def version_source(self, name: str, number: int) -> TemplateDraft:
        """Version `number` as a draft (to load it back into the editor)."""
        with self.session.read() as conn:
            src = tpl.get_source(conn, name)
            parts = tpl.get_version(conn, name, number)
        return TemplateDraft(name, parts["subject"], parts["html"], parts["text"], src["category"], src["stage"])

    def diff(self, name: str, old: int, new: int) -> str:
        """A unified diff of two saved versions (subject, html, text); "" when they are equal."""
        with self.session.read() as conn:
            a, b = tpl.get_version(conn, name, old), tpl.get_version(conn, name, new)
        return tpl.diff_sources(a, b, f"v{old}", f"v{new}")

    def merge_fields(self) -> builtins.list[MergeField]:
        return tpl.merge_fields()

    def check(self, draft: TemplateDraft) -> builtins.list[TemplateProblem]:
        """Every problem of a draft (empty: it saves)."""
        return tpl.check_template(draft)

    def find_lead(self, ref: str) -> LeadChoice:
        """The lead an operator typed (email or id) for previews and test sends."""
        with self.session.read() as conn:
            return lead_choice(conn, ref)

    def preview_for(self, draft: TemplateDraft, lead: LeadChoice | str | None) -> DraftPreview:
        """The draft's problems and, when its parts compile, the message for `lead` (a LeadChoice, an email
        or id, or None for placeholder values), rendered through the real compose path; stores nothing."""
        s = self.session
        with s.read() as conn:
            choice = lead_choice(conn, lead) if isinstance(lead, str) else lead
            return draft_preview(conn, s.settings, draft, choice, s.now())

    # -- writes ------------------------------------------------------------------------------------

    def save(self, draft: TemplateDraft, *, original: str | None = None,
             base_version: int | None = None) -> SavedTemplate:
        """Save a draft (a new template when `original` is None). Raises TemplateProblems listing every
        problem, and writes nothing then."""
        s = self.session
        s.require_write(self.AREA)
        problems = tpl.check_template(draft)
        if problems:
            raise TemplateProblems(draft.name, problems)
        with s.write(self.AREA) as conn:
            return tpl.save_draft(conn, draft, original=original, base_version=base_version,
                                  user=s.operator.username, now=s.now())

    def duplicate(self, name: str, new_name: str) -> SavedTemplate:
        s = self.session
        with s.write(self.AREA) as conn:
            src = tpl.get_source(conn, name)
            draft = TemplateDraft(new_name, src["subject"], src["html"], src["text"], src["category"], src["stage"])
            return tpl.save_draft(conn, draft, original=None, base_version=None, user=s.operator.username,
                                  now=s.now())

    def users(self, name: str) -> builtins.list[str]:
        """The sequences that send the template (it cannot be deleted while there are any)."""
        with self.session.read() as conn:
            return tpl.template_users(conn, name)

    def delete(self, name: str) -> None:
        s = self.session
        with s.write(self.AREA) as conn:
            tpl.delete_template(conn, name, user=s.operator.username, now=s.now())

    def seed_list(self) -> str:
        """The configured seed list (`mail.seed_list`), as the test-send prompt pre-fills it."""
        return ", ".join(self.session.settings.mail.seed_list)

    def send_test(self, what: TemplateDraft | str, address: str, lead: LeadChoice | None = None) -> str:
        """Send a test message of a draft (or of the stored template `what` names) to `address` — one address
        or a seed list separated by commas — rendered for `lead` (None: placeholder values), through the
        configured relay. Marked as a test and never queued or counted; each is audited. Returns the
        addresses it went to."""
        s = self.session
        s.require_write(self.AREA)
        problem = addresses_problem(address)
        if problem:
            raise ValidationError("test address", problem)
        now = s.now()
        sent: list[str] = []
        with s.read() as conn:
            if isinstance(what, str):
                compiled = tpl.default_cache().get(conn, what)
                version: int | None = compiled.version
            else:
                compiled, version = tpl.compile_draft(what), None
            messages = [build_test_message(conn, s.settings, compiled, to=to, lead_id=lead.id if lead else None,
                                           now=now) for to in split_addresses(address)]
        for message in messages:
            deliver(s.settings.mail, message, now)  # no transaction open while the relay talks
            with s.write(self.AREA) as conn:
                record_test_send(conn, template=compiled.name, version=version, message=message,
                                 lead_id=lead.id if lead else None, user=s.operator.username, now=now)
            sent.append(message.to)
        return ", ".join(sent)
