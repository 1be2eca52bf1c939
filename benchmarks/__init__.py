"""Benchmarks (each a script: ``.venv/bin/python benchmarks/NAME.py --help``)."""

import sim  # noqa: F401  (OpenMP threads sleep while they wait: see sim/__init__.py)
