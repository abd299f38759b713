"""The task registry: the study's settings kept as `seed`, presets resolve, bad names are refused."""

from __future__ import annotations

import pytest

from training import tasks

STUDY_TASKS = ("task1", "task2", "task3", "task4", "task5", "task6")


def test_registry_holds_the_six_tasks_and_the_demo():
    assert set(tasks.TASKS) == set(STUDY_TASKS) | {"demo"}


@pytest.mark.parametrize("task", list(tasks.TASKS))
@pytest.mark.parametrize("preset", tasks.PRESETS)
def test_every_preset_resolves(task, preset):
    config = tasks.resolve(task, preset)
    assert config.name == task
    if preset == "smoke":
        assert config.epochs == 1 and config.max_train_images <= 400


def test_seed_presets_keep_the_study_settings():
    task1 = tasks.resolve("task1", "seed")
    assert (task1.optimizer, task1.learning_rate, task1.batch_size, task1.epochs) == ("adam", 1e-5, 64, 200)
    assert task1.model["filters"] == (32, 32, 64, 64, 64)
    assert task1.model["dense"] == (2048, 1024, 1024, 512, 512)
    assert task1.input_size == (32, 32) and task1.dataset == "tiny-imagenet"
    task2 = tasks.resolve("task2", "seed")
    assert task2.architecture == "autokeras" and task2.time_budget_hours == 10.0
    task3 = tasks.resolve("task3", "seed")
    assert (task3.optimizer, task3.learning_rate, task3.batch_size, task3.model["first_stride"]) == ("adam", 1e-4, 64, 4)
    task4 = tasks.resolve("task4", "seed")
    assert (task4.optimizer, task4.learning_rate, task4.weights) == ("sgd", 1e-4, "imagenet")
    assert task4.model["head"] == ("flatten", "dense:512:relu", "dropout:0.3") and min(task4.input_size) >= 71
    task5 = tasks.resolve("task5", "seed")
    assert (task5.dataset, task5.input_size, task5.optimizer, task5.learning_rate, task5.batch_size, task5.epochs) == (
        "cifar10", (71, 71), "sgd", 1e-4, 32, 150)
    assert task5.model["head"][1:4] == ("dropout:0.3", "dense:512", "leaky_relu:0.1")
    assert tasks.resolve("task6", "seed").init_from == "task5"


def test_recommended_presets_change_what_matters():
    for name in ("task1", "task3"):
        config = tasks.resolve(name, "recommended")
        assert config.augment and config.schedule == "cosine" and config.model["batch_norm"] in ("all", True)
    assert tasks.resolve("task4", "recommended").bottleneck
    assert tasks.resolve("task5", "recommended").bottleneck


def test_unknown_task_and_preset_are_named():
    with pytest.raises(ValueError, match="unknown task 'task9'.*task1"):
        tasks.resolve("task9", "seed")
    with pytest.raises(ValueError, match="unknown preset 'fast'.*seed, recommended, smoke"):
        tasks.resolve("task1", "fast")


def test_overrides_are_checked():
    with pytest.raises(ValueError, match="unknown task setting 'epoch'"):
        tasks.resolve("task1", "seed", epoch=3)
    with pytest.raises(ValueError, match="setting epochs expects"):
        tasks.resolve("task1", "seed", epochs="3")
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        tasks.resolve("task1", "seed", epochs=0)
    assert tasks.resolve("task1", "seed", epochs=3, learning_rate=1).learning_rate == 1


def test_model_overrides_merge():
    config = tasks.with_overrides(tasks.resolve("task1", "seed"), model={"dropout": 0.5})
    assert config.model["dropout"] == 0.5 and config.model["filters"] == (32, 32, 64, 64, 64)


def test_invalid_combinations_are_refused():
    with pytest.raises(ValueError, match="bottleneck features cannot be combined with augmentation"):
        tasks.resolve("task5", "recommended", augment=True)
    with pytest.raises(ValueError, match="dataset must be one of"):
        tasks.resolve("task1", "seed", dataset="imagenet")
