"""The few HTML pages the tracking app serves (unsubscribe / preferences, confirmations, errors)."""

from __future__ import annotations

from html import escape

from .tracking import UnsubscribeView

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}"
          "button{padding:.5rem 1rem;margin:.5rem 0}label{display:block;margin:.3rem 0}.muted{color:#666}")


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>")


def unsubscribe_page(view: UnsubscribeView, action: str) -> str:
    act = escape(action, quote=True)
    checks = "".join(
        f'<label><input type="checkbox" name="category" value="{escape(c, quote=True)}"'
        f'{" checked" if on else ""}> {escape(c.replace("_", " ").title())}</label>'
        for c, on in view.categories.items()
    )
    return page("Email preferences", (
        f'<p>Emails to <strong>{escape(view.email)}</strong>.</p>'
        f'<form method="post" action="{act}"><input type="hidden" name="action" value="unsubscribe">'
        f'<button type="submit">Unsubscribe from {escape(view.category)} emails</button></form>'
        f'<h2 id="preferences">Choose what you receive</h2>'
        f'<form method="post" action="{act}"><input type="hidden" name="action" value="preferences">{checks}'
        f'<label><input type="checkbox" name="opt_out" value="1"{" checked" if view.opted_out else ""}> '
        f"Unsubscribe from all marketing emails</label>"
        f'<button type="submit">Save preferences</button></form>'
    ))


def done_page(changed: list[str]) -> str:
    if not changed:
        return page("Preferences saved", "<p>Nothing changed.</p>")
    what = ", ".join("all marketing emails" if c == "*" else escape(c) for c in changed)
    return page("Preferences saved", f"<p>Updated: {what}.</p>")


def error_page(message: str) -> str:
    return page("Invalid link", f'<p>{escape(message)}</p><p class="muted">The link may be damaged or expired.</p>')
