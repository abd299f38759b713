"""The fuzz harnesses cannot rot: the committed corpus (valid seeds, and the inputs of past
findings) replays through every harness, and each harness fuzzes under atheris for a few seconds
in the suite (`make fuzz` runs each for longer)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.fuzz import harnesses
from tests.fuzz.run import CORPUS, NAMES


def test_every_harness_has_a_seed_corpus():
    assert set(harnesses.HARNESSES) == set(NAMES)
    for name in NAMES:
        assert sorted(path.name for path in (CORPUS / name).glob("seed-*")), f"{name} has no seeds"


@pytest.mark.parametrize("name", NAMES)
def test_the_seeds_are_accepted_and_past_findings_refused(name):
    for path in sorted((CORPUS / name).iterdir()):
        accepted = harnesses.HARNESSES[name](path.read_bytes())  # A finding would raise.
        assert accepted == path.name.startswith("seed-"), path.name


@pytest.mark.slow  # Starts a process per harness.
@pytest.mark.parametrize("name", NAMES)
def test_the_harness_fuzzes_without_a_finding(name):
    pytest.importorskip("atheris")
    command = [sys.executable, "-m", "tests.fuzz.run", name, "--seconds", "3"]
    ran = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert ran.returncode == 0, ran.stdout + (ROOT / "build" / "fuzz" / name / "fuzz.log").read_text()[-4000:]
    executions = int(ran.stdout.split()[1])
    assert executions > 10, ran.stdout
