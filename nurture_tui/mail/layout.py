"""The email layout a template's HTML body is sent in (`mail.layout = "default"`; `"none"` sends the body as
written). A template holds the message — paragraphs, links, the signature — and the layout supplies what
every real marketing email has around it: a full HTML document (doctype, charset, viewport, title), a
600-pixel centred card that collapses on phones, dark-mode colours, the sender's name as a text header,
and a footer cell where `compose` puts the unsubscribe links and postal address.

A body that is already a full document (it contains `<html`) is left alone, so a template can bring its own.

Why it matters for deliverability: spam filters read a short HTML part that carries an image — the open
pixel is one — as an "image-only" message (SpamAssassin's HTML_IMAGE_ONLY_* rules fire for any `<img>` in
under 3,200 bytes of HTML), which a bare three-paragraph body always was. The layout is applied when the
message is finalised, so the outbox does not store it per message.
"""

from __future__ import annotations

import html as _html

FOOTER_MARK = "<!--nurture:footer-->"

_LAYOUT = """<!DOCTYPE html>
<html lang="en" xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml"
 xmlns:o="urn:schemas-microsoft-com:office:office">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<meta name="color-scheme" content="light dark">
<meta name="supported-color-schemes" content="light dark">
<title>{title}</title>
<!--[if mso]>
<noscript><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml></noscript>
<![endif]-->
<style>
  /* resets for the mail clients that need them (Outlook, Gmail, Apple Mail, Samsung Mail) */
  html, body {{ margin: 0 auto !important; padding: 0 !important; height: 100% !important; width: 100% !important; }}
  * {{ -ms-text-size-adjust: 100%; -webkit-text-size-adjust: 100%; }}
  div[style*="margin: 16px 0"] {{ margin: 0 !important; }}
  #MessageViewBody, #MessageWebViewDiv {{ width: 100% !important; }}
  table, td {{ mso-table-lspace: 0pt !important; mso-table-rspace: 0pt !important; }}
  table {{ border-collapse: collapse; border-spacing: 0 !important; table-layout: fixed !important;
          margin: 0 auto !important; }}
  img {{ border: 0; line-height: 100%; outline: none; text-decoration: none; max-width: 100%; height: auto;
        -ms-interpolation-mode: bicubic; }}
  a[x-apple-data-detectors], .unstyle-auto-detected-links a {{ color: inherit !important; border-bottom: 0 !important;
        text-decoration: none !important; font-size: inherit !important; font-family: inherit !important;
        font-weight: inherit !important; line-height: inherit !important; }}
  u + #body a, #MessageViewBody a {{ color: inherit; text-decoration: none; font-size: inherit;
        font-family: inherit; font-weight: inherit; line-height: inherit; }}
  .im {{ color: inherit !important; }}
  body {{ background: #f4f5f7; }}
  a {{ color: #1a5fb4; }}
  .content p {{ margin: 0 0 16px 0; }}
  .content ul, .content ol {{ margin: 0 0 16px 0; padding-left: 24px; }}
  @media only screen and (max-width: 620px) {{
    .container {{ width: 100% !important; }}
    .content {{ padding: 20px !important; }}
  }}
  @media (prefers-color-scheme: dark) {{
    body, .page {{ background: #1d1f21 !important; }}
    .card {{ background: #2a2d31 !important; color: #e8e8e8 !important; }}
    .masthead, .footer {{ color: #c8ccd0 !important; }}
  }}
</style>
</head>
<body id="body" style="margin:0;padding:0;background:#f4f5f7;">
<table role="presentation" class="page" width="100%" cellpadding="0" cellspacing="0" border="0"
 style="background:#f4f5f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0"
 style="width:600px;max-width:600px;">
<tr><td class="masthead"
 style="padding:0 8px 16px 8px;{font}font-size:18px;font-weight:bold;color:#1f2933;">{sender}</td></tr>
<tr><td class="card content"
 style="background:#ffffff;border-radius:6px;padding:32px;{font}font-size:16px;line-height:1.5;color:#1f2933;">
{body}
</td></tr>
<tr><td class="footer" style="padding:16px 8px;{font}font-size:12px;line-height:1.5;color:#6b7280;">
{footer_mark}
</td></tr>
</table>
</td></tr>
</table>
</body>
</html>
"""


class Layout:
    """The layout for one sender, split once around the title and the body, so wrapping a message is a
    concatenation (the dispatcher wraps every message it sends)."""

    def __init__(self, sender: str) -> None:
        marked = _LAYOUT.format(title="\x00", sender=_html.escape(sender), body="\x01", footer_mark=FOOTER_MARK,
                                font="font-family:Arial,Helvetica,sans-serif;")
        self.head, rest = marked.split("\x00")
        self.middle, self.tail = rest.split("\x01")

    def wrap(self, body: str, title: str) -> str:
        """`body` inside the layout (unchanged when it is already a full HTML document or empty)."""
        if not body.strip() or "<html" in body[:2000].lower():
            return body
        return f"{self.head}{_html.escape(title)}{self.middle}{body.strip()}{self.tail}"


def wrap(body: str, *, title: str, sender: str) -> str:
    """`body` inside the layout for `sender` (see `Layout`)."""
    return Layout(sender).wrap(body, title)
