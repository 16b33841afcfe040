"""Plain-text alternative derived from an HTML body, for templates that have no text part.

Regular expressions rather than a full parser: this runs once per message on the compose hot path,
and mail HTML is simple (paragraphs, links, lists, line breaks, tables)."""

from __future__ import annotations

import html as _html
import re

_DROP = re.compile(r"<(head|style|script|title)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LINK = re.compile(r"<a\b[^>]*?\bhref\s*=\s*([\"'])(.*?)\1[^>]*>(.*?)</a\s*>", re.I | re.S)
_BR = re.compile(r"<br\s*/?>", re.I)
_BLOCK_END = re.compile(r"</(p|div|h[1-6]|tr|table|ul|ol|blockquote)\s*>|<hr\b[^>]*>", re.I)
_LI = re.compile(r"<li\b[^>]*>", re.I)
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")
_EDGES = re.compile(r" ?\n ?")  # after _SPACES, at most one space sits on either side of a newline
_TAGS_IN = re.compile(r"<[^>]+>")


def _link(m: re.Match[str]) -> str:
    url = _html.unescape(m.group(2)).strip()
    label = _TAGS_IN.sub("", m.group(3)).strip()
    if not label:
        return url
    if _html.unescape(label) == url or url.startswith("mailto:"):
        return label
    return f"{label} ({url})"


def html_to_text(body: str) -> str:
    text = _COMMENT.sub("", body) if "<!--" in body else body
    lowered = text.lower()
    if any(f"<{tag}" in lowered for tag in ("head", "style", "script", "title")):
        text = _DROP.sub("", text)
    text = text.replace("\n", " ")
    text = _LINK.sub(_link, text)
    text = _BR.sub("\n", text)
    text = _BLOCK_END.sub("\n\n", text)
    text = _LI.sub("\n- ", text)
    text = _TAG.sub("", text)
    text = _html.unescape(text)
    text = _EDGES.sub("\n", _SPACES.sub(" ", text))
    return _BLANKS.sub("\n\n", text).strip() + "\n"


_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")


def html_template_to_text(source: str) -> str:
    """Derive a plain-text *template* from an HTML template's source, once per template version.

    Jinja tags are set aside as placeholders while the HTML is converted, then put back, so rendering
    the result gives the text of the rendered HTML (merge values unescaped, links as "label (url)")
    without converting every message's HTML."""
    tags: list[str] = []

    def hide(m: re.Match[str]) -> str:
        tags.append(m.group(0))
        return f"\x00{len(tags) - 1}\x00"

    text = html_to_text(_JINJA.sub(hide, source))
    return _PLACEHOLDER.sub(lambda m: tags[int(m.group(1))], text)
