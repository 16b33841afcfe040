"""Compliance (issue 22): consent per lead and category, double opt-in, erasure and access requests.

See docs/compliance.md for what nurture does and what stays the operator's responsibility."""
