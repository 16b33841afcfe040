"""Form bodies without extra dependencies: application/x-www-form-urlencoded and multipart/form-data.

RFC 8058 one-click unsubscribe POSTs SHOULD be multipart/form-data (and MAY be urlencoded), so both
must work. Multipart is parsed with the standard `email` parser (a MIME body is what it is)."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from ..errors import ValidationError


def parse_form(content_type: str, body: bytes) -> dict[str, list[str]]:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        return _multipart(content_type, body)
    if kind in ("", "application/x-www-form-urlencoded", "text/plain"):
        return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    raise ValidationError("content-type", f"unsupported form encoding {kind!r}")


def _multipart(content_type: str, body: bytes) -> dict[str, list[str]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    msg = BytesParser(policy=HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise ValidationError("body", "multipart/form-data without parts (missing boundary?)")
    out: dict[str, list[str]] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name or part.get_filename():
            continue  # files are never expected here
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        charset = part.get_content_charset() or "utf-8"
        out.setdefault(str(name), []).append(data.decode(charset, "replace"))
    return out
