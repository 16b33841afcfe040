"""Demo: deterministic synthetic data and the engagement simulator for `nurture demo`."""
