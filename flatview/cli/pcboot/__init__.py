"""pcboot: a small pc-like VMM on flatview (run ``python -m flatview.cli.pcboot``)."""
