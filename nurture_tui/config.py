"""Settings: a TOML file + NURTURE_* environment variables (nested with `__`) + command-line overrides.

Precedence (highest first): explicit overrides (`--db`), environment, the TOML file, defaults.
The TOML file is `--config FILE`, else `$NURTURE_CONFIG`, else `<platformdirs config dir>/config.toml`.
Each subsystem owns one section class below; add fields there, with defaults that work out of the box.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP_NAME = "nurture"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def default_db_url() -> str:
    return f"sqlite:///{default_data_dir() / 'workspace.db'}"


class UserSettings(BaseModel):
    """Who is at the keyboard. `name` falls back to $USER."""

    name: str = Field(default_factory=lambda: os.environ.get("USER") or "operator")
    role: Literal["admin", "operator", "rep"] = "admin"


class EngineSettings(BaseModel):
    tick_seconds: float = 1.0
    batch_size: int = 500
    entry_sweep_seconds: float = 60.0
    activity_retention_days: int = 730
    # Adaptive decisions (docs/adaptive.md "Retention"): older ones leave adaptive_decision (the lead timeline
    # and the adaptive report); a split's are folded into per-day counts first, so its posteriors stay. 0 = keep.
    adaptive_decision_retention_days: int = 90
    lease_seconds: float = 15.0


class ScoringSettings(BaseModel):
    half_life_days: float = 30.0
    mql_score: float = 100.0
    mql_grade: str = "B-"
    mql_sla_hours: float = 24.0
    recycle_sequence: str | None = None
    # Lead status values written on MQL / accept / reject (pushed to Salesforce as the Lead Status).
    mql_lead_status: str = "MQL"
    accepted_lead_status: str = "Sales Accepted"
    recycled_lead_status: str = "Recycled"
    recycle_score_factor: float = 0.0  # on reject: live score × factor (0 = start the next cycle at zero)
    # Assignment strategies tried in order: owner, account_owner, territory, group, queue (see docs/scoring.md).
    assign_order: list[str] = Field(
        default_factory=lambda: ["owner", "account_owner", "territory", "group", "queue"]
    )
    assign_group: str | None = None  # rep group for `group` (round-robin)
    assign_queue: str = "MQL queue"
    notify_rep_email: bool = False  # also email the summary to the rep through the outbox
    account_aggregate: Literal["top_n_sum", "max"] = "top_n_sum"
    account_top_n: int = 3
    mqa_score: float = 250.0  # account score (live) that makes an account an MQA


#: The built-in values of `mail.secret_key` / `mail.events_api_token`: public (they are in the source), so the
#: daemon and the web app refuse to start with them (`require_real_secrets`); `nurture init` writes fresh ones.
DEV_SECRET_KEY = "change-me-nurture-dev-secret"
DEV_EVENTS_TOKEN = "change-me-events-token"
MIN_SECRET_CHARS = 16


class DkimSettings(BaseModel):
    """DKIM signing of outgoing mail (off until `selector` and `key_file` are set)."""

    selector: str | None = None
    domain: str | None = None  # the d= domain; default the From address's domain
    key_file: Path | None = None  # RSA PEM, or ed25519 (PEM PKCS#8 or dkimpy's base64 seed)


class MailSettings(BaseModel):
    smtp_url: str = "smtp://127.0.0.1:8025"
    from_email: str = "marketing@example.com"
    from_name: str = "Nurture Demo"
    reply_to: str | None = None
    postal_address: str = "Example Inc., 1 Main Street, Springfield, USA"
    base_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    events_api_token: SecretStr = SecretStr(DEV_EVENTS_TOKEN)
    rate_per_second: float = 50.0
    rate_per_hour: int = 100_000
    max_connections: int = 4
    # Subscription categories a lead can leave one by one; "transactional" mail carries no unsubscribe.
    categories: list[str] = Field(default_factory=lambda: ["marketing", "newsletter", "events", "product"])
    unsubscribe_mailto: str | None = None  # default: unsubscribe@<from_email domain>
    track_opens: bool = True
    track_clicks: bool = True
    token_ttl_days: int = 365
    bot_open_seconds: float = 3.0  # opens/clicks this soon after delivery are flagged as scanner prefetch
    # When a tracking hit's effects (score, segments, wake-ups, rules) are applied: "deferred" just after the
    # transaction the answer waits for (web/ingest.py), "inline" in it; "auto": deferred on PostgreSQL only.
    tracking_effects: Literal["auto", "inline", "deferred"] = "auto"
    # When an open or click is answered (docs/mail.md "Ingest path"): "journal" once appended to the
    # process's tracking journal (committed to the database just after), "commit" once committed.
    tracking_ack: Literal["journal", "commit"] = "journal"
    tracking_journal_fsync: bool = True  # fdatasync the journal before answering (survives power loss)
    # Where journaled hits are committed (docs/mail.md "Writer process"): "process" in a child process of the
    # web process (the event loop keeps the interpreter lock to itself), "thread" in a thread of it; "auto":
    # a process under `nurture daemon --http`, a thread where the web app is embedded (tests, the demo).
    tracking_writer: Literal["auto", "thread", "process"] = "auto"
    # Website page views (docs/mail.md "Page views"): when set, a tracked click's redirect adds
    # `?<param>=<visit token>` to the landing URL, and the site's snippet reports each page it shows with
    # `GET /v/<visit token>.gif?u=<page URL>`. None: clicks land on the URL exactly as written.
    page_tracking_param: str | None = None
    dispatch_batch: int = 200
    retry_base_seconds: float = 60.0  # 4xx retry backoff: base * 2**(attempt-1), capped at 6 h
    max_attempts: int = 8
    send_lease_seconds: float = 600.0  # a 'sending' row older than this is re-queued (crash recovery)
    # Deliverability (docs/mail.md "Deliverability"): DKIM signing, the start-up SPF/DKIM/DMARC check,
    # List-Id / Feedback-ID, bounce and complaint processing, seed list for test sends.
    dkim: DkimSettings = Field(default_factory=lambda: DkimSettings())
    # TXT records for the start-up alignment check, name → records (e.g. {"_dmarc.example.com":
    # ["v=DMARC1; p=none"]}); when empty the check asks DNS, but only for a relay that is not on this host.
    dns_records: dict[str, list[str]] = Field(default_factory=dict)
    list_id_domain: str | None = None  # List-Id: <category.program.DOMAIN>; default the From domain
    feedback_id_sender: str = "nurture"  # the last field of Feedback-ID (Gmail's feedback loop)
    seed_list: list[str] = Field(default_factory=list)  # `templates test-send` without --to
    soft_bounce_limit: int = 3  # this many soft bounces within the window suppress the address
    soft_bounce_window_days: float = 30.0
    bounce_imap_url: str | None = None  # imaps://user:pass@host[:993]/MAILBOX for `nurture mail bounces --imap`
    layout: Literal["default", "none"] = "default"  # the HTML layout bodies are sent in (mail/layout.py)
    # VERP: the envelope sender becomes LOCAL+<message ref>@DOMAIN, so a bounce names its message even when
    # it quotes nothing of it (the relay must accept the address and deliver its +tags to the bounce mailbox)
    bounce_address: str | None = None


class SalesforceSettings(BaseModel):
    enabled: bool = False
    auth: Literal["jwt", "password", "soap", "client_credentials"] = "jwt"
    domain: str = "login"
    instance_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: Path | None = None
    api_version: str = "59.0"
    sync_interval_seconds: float = 120.0
    # A nurture-owned change (score, grade, stage, MQL status, opt-out …) reaches Salesforce within this
    # (salesforce/live.py; None = sync_interval_seconds): the scheduler pushes alone in between full syncs.
    push_interval_seconds: float | None = None
    api_budget_share: float = 0.5
    login_url: str | None = None  # e.g. the emulator's https://127.0.0.1:PORT; None = https://{domain}.salesforce.com
    ca_file: Path | None = None  # trust this CA (the emulator's) instead of the environment's bundle
    overlap_seconds: float = 300.0  # re-read this much before the watermark; duplicates are dropped
    bulk_threshold: int = 2000  # pulls/pushes above this many rows use Bulk API 2.0
    owner_authority: Literal["salesforce", "nurture"] = "salesforce"  # who wins a conflicting owner change
    record_key_field: str = "Nurture_Key__c"  # external id on Task/CampaignMember for idempotent pushes
    max_attempts: int = 5  # per-record retries for transient errors before it waits for `nurture sync --retry`
    # A lead whose live push or create keeps failing with a transient per-record error (UNABLE_TO_LOCK_ROW …)
    # is retried after retry_backoff_seconds * 2**(attempt-1), at most retry_backoff_max_seconds, until
    # `max_attempts` failures in a row; then it is kept in sync_error until it changes or `--retry-errors`.
    retry_backoff_seconds: float = 60.0
    retry_backoff_max_seconds: float = 3600.0
    field_map: dict[str, str] = Field(
        default_factory=lambda: {
            "score": "Nurture_Score__c",
            "grade": "Nurture_Grade__c",
            "stage": "Nurture_Stage__c",
            "mql_status": "Nurture_MQL_Status__c",
            "last_engagement": "Nurture_Last_Engagement__c",
            "sequence_status": "Nurture_Sequence_Status__c",
        }
    )
    # Creating local leads in Salesforce (salesforce/create.py): "all" (default), "mql" (only leads that
    # qualified), "segments" (only members of `create_segments`), "none" (never create; link by email only).
    create_policy: Literal["all", "mql", "segments", "none"] = "all"
    create_segments: list[str] = Field(default_factory=list)  # segment names for create_policy = "segments"
    # Created as a Contact when the lead matches a mirrored Account: "domain" (the lead's account, else its
    # email domain = the Account's Website domain), "account" (only the lead's own account), "none" (Leads).
    contact_match: Literal["domain", "account", "none"] = "domain"
    # The MQL lifecycle (scoring.*_lead_status) → the org's Lead `Status` picklist values; a value the org's
    # describe does not list is not pushed (and said so in Sync & audit).
    status_map: dict[str, str] = Field(
        default_factory=lambda: {
            "MQL": "Marketing Qualified",
            "Sales Accepted": "Working - Contacted",
            "Recycled": "Open - Not Contacted",
        }
    )


class ComplianceSettings(BaseModel):
    """Consent, double opt-in and erasure (docs/compliance.md)."""

    consent_required: list[str] = Field(default_factory=list)  # categories mailed only with granted consent
    double_opt_in: list[str] = Field(default_factory=list)  # … confirmed by email first (implies required)
    confirm_ttl_days: int = 7
    confirm_subject: str = "Please confirm your subscription"
    salesforce_erasure: Literal["anonymise", "delete", "none"] = "anonymise"

    def required(self) -> frozenset[str]:
        """Categories whose marketing sends need a granted consent record."""
        return frozenset(self.consent_required) | frozenset(self.double_opt_in)


class TuiSettings(BaseModel):
    theme: str = "textual-dark"
    keymap: dict[str, str] = Field(default_factory=dict)
    read_only: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NURTURE_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    db_url: str = Field(default_factory=default_db_url)
    data_dir: Path = Field(default_factory=default_data_dir)
    config_file: Path | None = None
    user: UserSettings = Field(default_factory=UserSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    salesforce: SalesforceSettings = Field(default_factory=SalesforceSettings)
    tui: TuiSettings = Field(default_factory=TuiSettings)
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _CONFIG_PATH_FOR_LOAD
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None and path.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


_CONFIG_PATH_FOR_LOAD: Path | None = None


def resolve_config_path(config_file: Path | str | None = None) -> Path:
    if config_file:
        return Path(config_file)
    env = os.environ.get("NURTURE_CONFIG")
    return Path(env) if env else default_config_path()


def load_settings(
    config_file: Path | str | None = None, db_url: str | None = None, **overrides: Any
) -> Settings:
    """Load settings; an explicit `config_file` that does not exist is an error, the default one is optional."""
    from .errors import NurtureError

    global _CONFIG_PATH_FOR_LOAD
    path = resolve_config_path(config_file)
    if config_file and not path.exists():
        raise NurtureError(f"{path}: config file not found")
    _CONFIG_PATH_FOR_LOAD = path
    init: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    if db_url:
        init["db_url"] = db_url
    try:
        settings = Settings(**init)
    except Exception as exc:  # pydantic ValidationError or TOML decode error
        raise NurtureError(f"{path}: invalid configuration: {_first_line(exc)}") from exc
    finally:
        _CONFIG_PATH_FOR_LOAD = None
    settings.config_file = path
    return settings


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(t.strip() for t in text[:3]) if text else type(exc).__name__


def secret_problems(mail: MailSettings) -> list[str]:
    """What is wrong with the mail secrets for a network-facing process: empty, the built-in development
    value, or shorter than MIN_SECRET_CHARS. Empty when both are fine."""
    problems = []
    for name, value, dev in (("secret_key", mail.secret_key, DEV_SECRET_KEY),
                             ("events_api_token", mail.events_api_token, DEV_EVENTS_TOKEN)):
        text = value.get_secret_value().strip()
        if not text:
            problems.append(f"mail.{name} is empty")
        elif text == dev:
            problems.append(f"mail.{name} is the built-in development value")
        elif len(text) < MIN_SECRET_CHARS:
            problems.append(f"mail.{name} is shorter than {MIN_SECRET_CHARS} characters")
    return problems


def require_real_secrets(settings: Settings, where: str) -> None:
    """Refuse to run a process that signs tracking links or accepts events with a public or empty secret
    (one line: what is wrong and how to set it)."""
    from .errors import NurtureError

    problems = secret_problems(settings.mail)
    if problems:
        config = settings.config_file or resolve_config_path()
        raise NurtureError(
            f"{where}: {'; '.join(problems)}; run `nurture init` to write fresh secrets into {config} "
            "(or set NURTURE_MAIL__SECRET_KEY and NURTURE_MAIL__EVENTS_API_TOKEN)")
