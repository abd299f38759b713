"""Regularisation scaled with the planned schedule (training.regularization) and `--set`'s
parsing (training.task_config.parse_settings): the arithmetic and every refusal."""

from __future__ import annotations

import math

import pytest

from training import regularization, tasks
from training.__main__ import main
from training.task_config import parse_settings


def _task1(**settings):
    return tasks.resolve("task1", "recommended", **settings)


@pytest.mark.parametrize("epochs,expected", [(1, 0.0), (20, 0.0), (30, math.log2(1.5)), (40, 1.0), (93, 1.0)])
def test_strength_is_zero_up_to_the_reference_and_full_from_twice_it(epochs, expected):
    assert regularization.strength(epochs, 20) == pytest.approx(expected)


def test_each_lever_moves_from_the_presets_value_to_the_long_schedules():
    config = _task1(long_schedule={"cutmix": 0.5, "weight_decay": 0.05, "label_smoothing": 0.2}, reference_epochs=10)
    assert regularization.for_schedule(config, 10).values == {"cutmix": 0.0, "weight_decay": config.weight_decay, "label_smoothing": 0.1}
    assert regularization.for_schedule(config, 20).values == pytest.approx({"cutmix": 0.5, "weight_decay": 0.05, "label_smoothing": 0.2})
    halfway = regularization.for_schedule(config, round(10 * 2**0.5))  # 14 epochs: strength log2(1.4).
    share = math.log2(1.4)
    assert halfway.strength == pytest.approx(share)
    assert halfway.values["cutmix"] == pytest.approx(0.5 * share)
    assert halfway.values["weight_decay"] == pytest.approx(config.weight_decay + (0.05 - config.weight_decay) * share)
    assert halfway.to_json()["epochs"] == 14 and halfway.to_json()["reference_epochs"] == 10


def test_a_task_without_a_long_schedule_keeps_its_own_values():
    assert regularization.for_schedule(_task1(), 500) is None


@pytest.mark.parametrize(
    "settings,message",
    [
        (dict(long_schedule={"dropout": 0.5}), "long_schedule settings must be among cutmix, weight_decay, label_smoothing, got dropout"),
        (dict(long_schedule={"cutmix": 1.5}), "long_schedule cutmix is a probability between 0 and 1, got 1.5"),
        (dict(long_schedule={"cutmix": -0.1}), "long_schedule cutmix must be a number >= 0"),
        (dict(long_schedule={"label_smoothing": 1.0}), "long_schedule label_smoothing must be below 1"),
        (dict(long_schedule={"weight_decay": "strong"}), "long_schedule weight_decay must be a number >= 0, got 'strong'"),
        (dict(reference_epochs=0), "reference_epochs must be at least 1, got 0"),
        (dict(long_schedule={"weight_decay": 0.05}, optimizer="adam"), "long_schedule weight_decay needs optimizer adamw"),
    ],
)
def test_a_bad_long_schedule_is_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        _task1(**settings)


def test_set_reads_json_values_text_and_model_options():
    assignments = ['long_schedule={"cutmix": 0.5}', "cutmix=0.25", "augment=false", "model.head_dropout=0.4", "dataset=folder", "notes=a=b"]
    settings = parse_settings(assignments)
    assert settings == {
        "long_schedule": {"cutmix": 0.5},
        "cutmix": 0.25,
        "augment": False,
        "model": {"head_dropout": 0.4},
        "dataset": "folder",
        "notes": "a=b",
    }
    config = _task1(**settings)
    assert config.model.head_dropout == 0.4 and config.model.filters == (32, 64, 128)  # One model option changed, the rest kept.


@pytest.mark.parametrize("assignment", ["cutmix", "=0.5", ""])
def test_set_without_a_key_and_a_value_is_refused(assignment):
    with pytest.raises(ValueError, match="--set expects KEY=VALUE"):
        parse_settings([assignment])


@pytest.mark.parametrize(
    "arguments,words",
    [
        (["task1", "--set", "cutmix"], "--set expects KEY=VALUE, got 'cutmix'"),
        (["task1", "--set", "dropuot=0.5"], "unknown task setting 'dropuot'"),
        (["task1", "--set", "cutmix=often"], "setting cutmix expects"),
        (["task1", "--set", 'long_schedule={"dropout": 0.5}'], "long_schedule settings must be among cutmix, weight_decay, label_smoothing"),
        (["task1", "--set", 'long_schedule={"cutmix": 1.5}'], "long_schedule cutmix is a probability between 0 and 1"),
        (["task3", "--preset", "seed", "--set", 'long_schedule={"weight_decay": 0.05}'], "long_schedule weight_decay needs optimizer adamw"),
        (["task1", "--set", "epochs=3", "--epochs", "4"], "--set epochs=... and --epochs both set epochs: give one of them"),
        (["task1", "--set", "epochs=3", "--time-budget", "5m"], "--set epochs=... and --time-budget cannot be used together"),
    ],
)
def test_the_command_refuses_a_bad_setting_by_name(arguments, words, capsys, tmp_path):
    assert main(["train", *arguments, "--run-dir", str(tmp_path / "run")]) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # Refused before anything was written.


def test_a_setting_that_a_flag_also_names_may_be_given_by_set_alone(capsys, tmp_path):
    # `--set epochs=2` without `--epochs` resolves (it had crashed on the unset flag's None) and the
    # run goes on to its next check, the data folder.
    assert main(["train", "task1", "--set", "epochs=2", "--data-dir", str(tmp_path / "nowhere"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "data directory does not exist" in capsys.readouterr().err
