"""Mail: sandboxed Jinja2 templates, the outbox, the SMTP dispatcher and tracking tokens."""
