"""Integration tests share the session fixtures of tests/conftest.py (smoke_runs, demo_export)."""

from tests.conftest import SMOKE_ORDER, run_cli  # noqa: F401 (imported by the tests)
