"""pcboot: a small pc-like VMM on flatview (run ``python -m examples.pcboot``)."""
