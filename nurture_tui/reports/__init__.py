"""Reports: funnel, progression, time-to-opportunity, influence, per-node and per-email stats."""
