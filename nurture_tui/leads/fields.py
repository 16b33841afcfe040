"""The lead fields a CSV file can set, the header names recognised for each, and per-cell converters.

Lengths come from the `lead` column definitions and enum values from the store model, so the importer
can never accept a value the table would truncate or the rest of the system would not understand.
A converter takes the raw cell text and returns the stored value (None for an empty cell) or raises
`CellError` with a short reason.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..store.models import PERSONAS, STAGES
from ..store.tables import lead

Converter = Callable[[str], Any]

#: Prefix of a header (or `--map` target) that stores the column in the lead's `custom` JSON.
CUSTOM_PREFIX = "custom."
#: Columns the importer itself writes into FILE.errors.csv; they are skipped when that file is re-imported.
ERROR_COLUMNS = ("_line", "_error")


class CellError(ValueError):
    """A cell that cannot be stored; the message is the reason (the importer adds line and field)."""


@dataclass(frozen=True)
class FieldSpec:
    name: str  # lead column (or "owner", resolved to owner_id)
    kind: str  # text / email / int / bool / enum / timezone / owner
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()


def _norm_header(text: str) -> str:
    """'E-mail Address ' → 'emailaddress': what header matching compares."""
    return re.sub(r"[^0-9a-z]+", "", text.lower())


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("email", "email", ("email", "e-mail", "email address", "e-mail address", "mail", "work email",
                                 "business email", "primary email", "email id")),
    FieldSpec("first_name", "text", ("first name", "firstname", "first", "given name", "forename", "fname")),
    FieldSpec("last_name", "text", ("last name", "lastname", "last", "surname", "family name", "lname")),
    FieldSpec("title", "text", ("title", "job title", "position", "job")),
    FieldSpec("company", "text", ("company", "company name", "account", "account name", "company / account",
                                  "organisation", "organization", "org", "employer")),
    FieldSpec("phone", "text", ("phone", "phone number", "telephone", "tel", "mobile", "work phone")),
    FieldSpec("industry", "text", ("industry", "sector", "vertical")),
    FieldSpec("employees", "int", ("employees", "number of employees", "no of employees", "employee count",
                                   "headcount", "company size")),
    FieldSpec("country", "text", ("country", "country name", "country/region", "country code")),
    FieldSpec("state", "text", ("state", "province", "state/province", "region")),
    FieldSpec("city", "text", ("city", "town", "locality")),
    FieldSpec("timezone", "timezone", ("timezone", "time zone", "tz", "iana time zone")),
    FieldSpec("lead_source", "text", ("lead source", "leadsource", "source")),
    FieldSpec("status", "text", ("status", "lead status")),
    FieldSpec("persona", "enum", ("persona", "buyer persona"), PERSONAS),
    FieldSpec("stage", "enum", ("stage", "funnel stage", "lifecycle stage"), STAGES),
    FieldSpec("sf_id", "text", ("sf id", "salesforce id", "lead id", "contact id")),
    FieldSpec("sf_type", "enum", ("sf type", "salesforce type"), ("Lead", "Contact")),
    FieldSpec("owner", "owner", ("owner", "lead owner", "owner username", "owner email", "rep")),
    FieldSpec("opted_out", "bool", ("opted out", "opted_out", "email opt out", "opt out", "has opted out of email",
                                    "unsubscribed")),
    FieldSpec("bounced", "bool", ("bounced", "email bounced", "hard bounced")),
)
BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}
#: Export column order (and the canonical header names an export writes).
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)

_ALIASES: dict[str, str] = {}
for _spec in FIELDS:
    for _alias in (_spec.name, *_spec.aliases):
        _ALIASES.setdefault(_norm_header(_alias), _spec.name)


def field_for_header(header: str) -> str | None:
    """The field a header names (`custom.<key>` for custom columns), or None if it is not recognised."""
    text = header.strip()
    if text.lower().startswith(CUSTOM_PREFIX) and len(text) > len(CUSTOM_PREFIX):
        return CUSTOM_PREFIX + text[len(CUSTOM_PREFIX):].strip()
    return _ALIASES.get(_norm_header(text))


def resolve_target(target: str, where: str) -> str | None:
    """A `--map` target: a field name or alias, `custom.<key>`, or `-`/`ignore` (→ None)."""
    from ..errors import ValidationError

    text = target.strip()
    if text in ("-", "ignore", ""):
        return None
    found = field_for_header(text)
    if found is None:
        raise ValidationError(where, f"unknown field {text!r} (fields: {', '.join(FIELD_NAMES)}, or custom.KEY)")
    return found


def max_length(column: str) -> int | None:
    length = getattr(lead.c[column].type, "length", None)
    return int(length) if length else None


# -- converters ------------------------------------------------------------------------------------------

EMAIL_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
)
EMAIL_MAX = max_length("email") or 254


def normalise_email(raw: str) -> str:
    """Trimmed, lower-cased and syntax-checked (RFC 5321 dot-atom; internationalised addresses via
    email-validator). Raises CellError."""
    email = raw.strip().lower()
    if not email:
        raise CellError("missing email")
    if len(email) > EMAIL_MAX:
        raise CellError(f"longer than {EMAIL_MAX} characters")
    if EMAIL_RE.fullmatch(email):
        return email
    if email.isascii():
        raise CellError(f"not an email address: {raw.strip()!r}")
    return _international_email(email, raw)


def _international_email(email: str, raw: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(email, check_deliverability=False).normalized).lower()
    except EmailNotValidError:
        raise CellError(f"not an email address: {raw.strip()!r}") from None


def text_converter(length: int | None) -> Converter:
    def convert(raw: str) -> str | None:
        value = raw.strip()
        if not value:
            return None
        if length is not None and len(value) > length:
            raise CellError(f"longer than {length} characters")
        return value

    return convert


def int_converter(raw: str) -> int | None:
    value = raw.strip().replace(",", "").replace("_", "")
    if not value:
        return None
    try:
        number = float(value) if "." in value or "e" in value.lower() else int(value)
    except ValueError:
        raise CellError(f"not a whole number: {raw.strip()!r}") from None
    if isinstance(number, float):
        if not number.is_integer():
            raise CellError(f"not a whole number: {raw.strip()!r}")
        number = int(number)
    if not -(2**63) <= number < 2**63:
        raise CellError(f"number out of range: {raw.strip()!r}")
    return number


_TRUE = frozenset({"true", "t", "yes", "y", "1", "x", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", ""})


def bool_converter(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise CellError(f"not true/false: {raw.strip()!r}")


def enum_converter(choices: tuple[str, ...]) -> Converter:
    """Case- and separator-insensitive: 'Economic Buyer' and 'economic-buyer' both mean economic_buyer."""
    lookup = {_norm_header(c): c for c in choices}

    def convert(raw: str) -> str | None:
        value = raw.strip()
        if not value:
            return None
        found = lookup.get(_norm_header(value))
        if found is None:
            raise CellError(f"unknown value {value!r} (expected {', '.join(choices)})")
        return found

    return convert


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


def timezone_converter(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    found = _zones().get(value.lower())
    if found is None:
        raise CellError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)")
    return found


def owner_converter(users: dict[str, int]) -> Converter:
    """Owner by username or email (case-insensitive) → user id."""

    def convert(raw: str) -> int | None:
        value = raw.strip()
        if not value:
            return None
        found = users.get(value.lower())
        if found is None:
            raise CellError(f"unknown user {value!r}")
        return found

    return convert


def converter_for(field: str, users: dict[str, int]) -> Converter:
    """The converter for a field name (custom.* keys are free text)."""
    if field.startswith(CUSTOM_PREFIX):
        return text_converter(None)
    spec = BY_NAME[field]
    if spec.kind == "email":
        return normalise_email
    if spec.kind == "int":
        return int_converter
    if spec.kind == "bool":
        return bool_converter
    if spec.kind == "enum":
        return enum_converter(spec.choices)
    if spec.kind == "timezone":
        return timezone_converter
    if spec.kind == "owner":
        return owner_converter(users)
    return text_converter(max_length(spec.name))


def column_for(field: str) -> str:
    """The lead column a field writes."""
    return "owner_id" if field == "owner" else field
