"""--time-budget on real data: task1's recommended preset with a one-minute budget on the Tiny
ImageNet subset ends inside the budget plus a stated margin, with its whole planned schedule run
(its precision chosen by timing both inside the budget) and a checkpoint that --resume accepts."""

from __future__ import annotations

import json
import time

import pytest

from tests.integration.conftest import BUDGET_MARGIN_S, run_cli
from training import precision

pytestmark = pytest.mark.slow

BUDGET_S = 60
# 1,000 training and 1,000 validation images: the CPUs this runs on train task1 at about 200
# images/s (an AVX2-only AMD EPYC, float32) to 1,500 (AMX, bfloat16), varying from one run to the
# next. The probe times 30 batches whatever the data's size (20 s at 200 images/s), and on the AVX2
# CPU a run of 2,000 training images once had 33 s left after it: one epoch planned, and the
# assertion of at least two failed. Of 1,000 images, about three fit (with all 5,000 validation
# images, one).


def test_a_one_minute_budget_ends_inside_it_with_the_schedule_complete(real_data_dir, tmp_path):
    run = tmp_path / "run"
    data = ["--data-dir", str(real_data_dir), "--max-train-images", "1000", "--set", "max_validation_images=1000"]
    arguments = ["train", "task1", "--preset", "recommended", *data]
    start = time.monotonic()
    result = run_cli(*arguments, "--time-budget", "1m", "--run-dir", str(run), "--quiet", "--no-export")
    wall = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert wall <= BUDGET_S + BUDGET_MARGIN_S, f"the run took {wall:.0f} s for a {BUDGET_S} s budget"
    metrics = json.loads((run / "metrics.json").read_text())
    plan = json.loads((run / "plan.json").read_text())
    assert metrics["time_budget_s"] == BUDGET_S and metrics["probe_images_per_second"] == plan["images_per_second"] > 0
    assert metrics["epochs_planned"] == plan["epochs"] >= 2, plan
    # The preset's precision is auto: where the CPU computes bfloat16, both are timed inside the
    # budget and the choice follows the margin; where it does not, float32 untimed, and the plan says why.
    rates, log = plan["precision_rates"], (run / "train.log").read_text()
    assert metrics["precision_rates"] == rates and metrics["precision_reason"] == plan["precision_reason"]
    if precision.bfloat16_support()[0]:
        assert set(rates) == {"float32", "bfloat16"} and min(rates.values()) > 0
        assert metrics["precision"] == plan["precision"] == ("bfloat16" if rates["bfloat16"] >= 1.15 * rates["float32"] else "float32")
        assert plan["images_per_second"] == pytest.approx(rates[plan["precision"]], abs=0.06)
        assert f"precision: {plan['precision']} (float32 " in log
    else:
        assert rates == {} and metrics["precision"] == plan["precision"] == "float32"
        assert plan["precision_reason"].startswith("auto: bfloat16 not tried: the CPU has none of")
        assert f"precision: float32 ({plan['precision_reason']})" in log
    assert metrics["epochs_completed"] == plan["epochs"] and not metrics["stopped_by_budget"]  # The whole schedule ran.
    planned = plan["epochs"]
    assert f"run: epoch {planned}/{planned} (100% of the schedule)" in result.stderr and "schedule complete" in result.stderr
    # Overall position and budget after every epoch (the first may show the probe's plan, before a re-plan).
    assert result.stderr.count("run: epoch ") == planned and "run: epoch 1/" in result.stderr and "left" in result.stderr
    # The checkpoint is resumable: --resume finds the schedule complete and finishes the run again.
    resumed = run_cli(*arguments, "--run-dir", str(run), "--resume", "--quiet", "--no-export")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = json.loads((run / "metrics.json").read_text())
    assert after["epochs_completed"] == planned and after["time_budget_s"] == BUDGET_S  # The plan travels with the run.
