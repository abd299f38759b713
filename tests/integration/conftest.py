"""Integration tests share the session fixtures of tests/conftest.py (smoke_runs, demo_export)."""

from tests.conftest import SMOKE_ORDER, run_cli  # noqa: F401 (imported by the tests)

# How far past its --time-budget a run may end, in the tests that time one: the budget counts from
# `training.__main__`'s import, not from the process's start (the interpreter's own start-up, about
# a second), and epoch times vary on this shared machine.
BUDGET_MARGIN_S = 15
