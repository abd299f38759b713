"""The task registry: presets resolve, the seed presets train as the study did, bad names and values are refused."""

from __future__ import annotations

import pytest

from training import tasks


@pytest.mark.parametrize("task", list(tasks.TASKS))
@pytest.mark.parametrize("preset", tasks.PRESETS)
def test_every_preset_resolves(task, preset):
    config = tasks.resolve(task, preset)
    assert config.name == task
    if preset == "smoke":
        assert config.epochs == 1 and config.max_train_images <= 400


def test_seed_presets_train_the_way_the_study_did():
    """What the seed presets make: the study's optimisers at a constant learning rate."""
    keras = pytest.importorskip("keras")
    from training.recipe import learning_rate_schedule, make_optimizer

    for task, kind, rate in (
        ("task1", keras.optimizers.Adam, 1e-5),
        ("task3", keras.optimizers.Adam, 1e-4),
        ("task4", keras.optimizers.SGD, 1e-4),
        ("task5", keras.optimizers.SGD, 1e-4),
    ):
        optimizer = make_optimizer(tasks.resolve(task, "seed"))
        assert learning_rate_schedule(tasks.resolve(task, "seed"), steps_per_epoch=10) is None, task
        assert type(optimizer) is kind, task
        assert float(optimizer.learning_rate) == pytest.approx(rate), task
    assert tasks.resolve("task1", "seed").epochs == 200 and tasks.resolve("task2", "seed").time_budget_hours == 10.0


def test_recommended_presets_warm_up_then_decay_to_zero():
    """What the recommended recipe makes for the from-scratch tasks: AdamW whose learning rate rises
    during the first epoch and decays to zero by the last step."""
    keras = pytest.importorskip("keras")
    from training.recipe import learning_rate_schedule, make_optimizer

    for task in ("task1", "task3"):
        config = tasks.resolve(task, "recommended")
        optimizer = make_optimizer(config)
        assert isinstance(optimizer, keras.optimizers.AdamW)
        schedule = learning_rate_schedule(config, steps_per_epoch=10)
        assert float(optimizer.learning_rate) == pytest.approx(schedule.rate(0, 0))
        rates = [schedule.rate(epoch) for epoch in (0, 1, config.epochs)]
        assert rates[0] < rates[1] == pytest.approx(config.learning_rate) and rates[2] == pytest.approx(0, abs=1e-9)


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
    assert config.model.dropout == 0.5 and config.model.filters == (32, 32, 64, 64, 64)
    assert config.model == tasks.with_overrides(config, model={"filters": [32, 32, 64, 64, 64]}).model  # A list is read as the tuple.


def test_invalid_combinations_are_refused():
    with pytest.raises(ValueError, match="bottleneck features cannot be combined with augmentation"):
        tasks.resolve("task5", "recommended", augment=True)
    with pytest.raises(ValueError, match="dataset must be one of"):
        tasks.resolve("task1", "seed", dataset="imagenet")
