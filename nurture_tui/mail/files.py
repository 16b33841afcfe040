"""Template files: YAML (or JSON) holding one template mapping or `templates: [ ... ]`, as in
`sequences/templates/*.yaml`. Keys: name, subject, html, text (optional), category, stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..yamlfile import load_yaml_file

_KEYS = {"name", "subject", "html", "text", "category", "stage"}


def load_template_file(path: Path) -> list[dict[str, Any]]:
    """Parse and shape-check a template file; errors name the file and the template's position."""
    where = str(path)
    data = load_yaml_file(path)
    items = data.get("templates") if isinstance(data, dict) and "templates" in data else [data]
    if not isinstance(items, list) or not items:
        raise ValidationError(where, "expected a template mapping or `templates:` with a list")
    out = []
    for i, item in enumerate(items):
        at = f"{where}: templates[{i}]"
        if not isinstance(item, dict):
            raise ValidationError(at, "must be a mapping")
        unknown = set(item) - _KEYS
        if unknown:
            raise ValidationError(at, f"unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
        for key in ("name", "subject", "html"):
            if not isinstance(item.get(key), str):
                raise ValidationError(at, f"{key} is required (a string)")
        out.append({"name": item["name"], "subject": item["subject"], "html": item["html"],
                    "text": item.get("text"), "category": item.get("category") or "marketing",
                    "stage": item.get("stage")})
    return out
