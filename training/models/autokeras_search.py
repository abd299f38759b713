"""Task 2: an AutoKeras architecture and hyperparameter search, within a trial and a wall-clock budget.

The search runs in ``RUN_DIR/search`` (KerasTuner's project: every trial's hyperparameters,
score and checkpoints); its log is teed to ``RUN_DIR/search.log`` and every trial's score is
summarised in ``RUN_DIR/trials.json``, its time and epochs in ``RUN_DIR/search.json``.
Re-running with ``--resume`` continues the search from that folder. The best model comes back as
a plain Keras model taking raw 0-255 pixels (AutoKeras normalises inside it) and returning
probabilities.

The wall-clock budget stops the running trial at the budget and lets no trial start that what
is left of it cannot hold, judged by the last trial's measured cost (`SearchBudget`). With
``equal_time_trials``, each trial trains for an equal share of the search's time, its learning
rate annealed over that time (`TrialClock`). Every trial's model is built in the Keras dtype
policy the search started in (`keep_dtype_policy`): the precision ``--precision`` chose.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time

import keras
import numpy as np

from training.interface.contract import INPUT_NAME, OUTPUT_NAME
from training.model_options import AutoKerasOptions

log = logging.getLogger("training")


class SearchBudget(keras.callbacks.Callback):
    """Keeps the search inside its wall-clock budget: a trial running at the budget is ended, and
    no trial starts that the budget cannot hold. A trial's cost is measured, not assumed: the wall
    time from the end of the previous trial (or the search's start) to the end of this one's
    training, so its model build, tracing and validation count too (on a 2-core AVX2 CPU a task2
    trial of 2 s training took 13 s in all)."""

    def __init__(self, tuner, seconds: float | None):
        super().__init__()
        self.tuner, self.seconds, self.started = tuner, seconds, time.monotonic()
        self.exhausted = False
        self.last_end, self.trial_cost = self.started, 0.0

    def __deepcopy__(self, memo):
        return self  # KerasTuner deep-copies callbacks for every trial; the budget is shared.

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        # After the epoch's validation, which on a short trial can outlast its training: a trial
        # that ends past the budget must not let the next one start.
        self._check()

    def on_train_end(self, logs=None):
        now = time.monotonic()
        self.trial_cost, self.last_end = now - self.last_end, now
        self._check(ahead=self.trial_cost)

    def _check(self, ahead: float = 0.0):
        """Ends the search once the budget is spent, or (``ahead``: a trial's cost) once what is
        left cannot hold another trial."""
        if self.seconds is not None and time.monotonic() - self.started + ahead > self.seconds:
            self.exhausted = True
            self.model.stop_training = True
            oracle = self.tuner.oracle
            oracle.max_trials = max(1, len(oracle.trials))


class TrialClock(keras.callbacks.Callback):
    """Ends each trial's training after ``seconds`` (then it is validated and scored): trials of
    equal time. Within a trial the learning rate follows a cosine from its starting value to zero
    over those seconds, so each trial is scored at the end of an annealed schedule, as the final
    fit will be, not in the middle of a constant rate's noise. One instance serves every trial;
    its clock restarts when a trial's fit begins."""

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.started, self.stopped = seconds, time.monotonic(), 0
        self.initial_rate = None

    def __deepcopy__(self, memo):
        return self

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()
        self.initial_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def rate(self, elapsed: float) -> float:
        """The learning rate ``elapsed`` seconds into a trial."""
        return self.initial_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, elapsed / self.seconds)))

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.rate(time.monotonic() - self.started)

    def on_train_batch_end(self, batch, logs=None):
        if not self.model.stop_training and time.monotonic() - self.started > self.seconds:
            self.model.stop_training = True
            self.stopped += 1


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def keep_dtype_policy(tuner, policy: str) -> None:
    """Builds every model ``tuner`` builds (each trial's, and the best one again for export) in
    Keras' dtype ``policy``. KerasTuner clears Keras' session before each build, and that resets
    the global dtype policy to float32: without this, every trial and the final fit that continues
    the best trained in float32 whatever the run chose (task2's 2-hour final fit on the full set:
    486 images/s, where task1's network trains at about 1,260 in bfloat16 on the same machine)."""
    build = tuner._build_hypermodel

    def build_in_policy(hp):
        keras.config.set_dtype_policy(policy)
        return build(hp)

    tuner._build_hypermodel = build_in_policy


def _auto_model(config, directory, num_classes: int):
    import autokeras as ak

    options = config.model
    common = dict(
        max_trials=config.max_trials or 100, directory=str(directory), project_name="search", overwrite=False, seed=config.seed, objective="val_loss"
    )
    if options == AutoKerasOptions():
        # The study's setting: the stock ImageClassifier and its whole search space.
        return ak.ImageClassifier(num_classes=num_classes, **common)
    if options.search_space is not None:
        from training.models import autokeras_space

        if options != AutoKerasOptions(search_space=options.search_space) or options.search_space not in autokeras_space.SEARCH_SPACES:
            raise ValueError(f"task {config.name}: search_space must be one of {autokeras_space.SEARCH_SPACES} and stand alone, got {options}")
        return autokeras_space.auto_model(config, num_classes, **common)
    image = ak.ImageInput()
    x = ak.ImageBlock(block_type=options.block_type, normalize=options.normalize, augment=options.augment)(image)
    head = ak.ClassificationHead(num_classes=num_classes)(x)
    return ak.AutoModel(inputs=image, outputs=head, **common)


def trial_summary(tuner) -> list[dict]:
    trials = []
    for trial in tuner.oracle.trials.values():
        trials.append(
            {
                "trial_id": trial.trial_id,
                "status": str(trial.status),
                "score": None if trial.score is None else float(trial.score),
                "best_step": trial.best_step,
                "hyperparameters": {
                    k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in trial.hyperparameters.values.items()
                },
            }
        )
    return trials


def search(config, dataset, run, options, seconds: float | None):
    """Runs the search for at most ``seconds`` of wall-clock time (None: ``max_trials`` alone bounds
    it); returns a `training.run_recorder.FitResult` holding the best model."""
    from training.run_dir import write_json
    from training.run_recorder import FitResult, RunRecorder

    num_classes = dataset.num_classes
    model = _auto_model(config, run.path, num_classes)
    keep_dtype_policy(model.tuner, keras.config.dtype_policy().name)
    searched = run / "search.json"  # Written when a search ends; summed over a resumed run's invocations.
    if searched.is_file():  # Resumed after its search had ended: no new trial, the best reloads.
        model.tuner.oracle.max_trials = max(1, len(model.tuner.oracle.trials))
    budget = SearchBudget(model.tuner, seconds)
    callbacks = [budget]
    trial_seconds = seconds / (config.max_trials or 100) if config.equal_time_trials and seconds else None
    if trial_seconds:
        clock = TrialClock(trial_seconds)
        callbacks.append(clock)
        log.info("search: trials of equal time, %.0f s each (%d trials at most)", trial_seconds, config.max_trials or 100)
    recorder = RunRecorder(run, [], 0.0, len(dataset.train), checkpoint=False)
    # Our own early stopping (AutoKeras' defaults): without one, AutoKeras retrains the best
    # trial's model from scratch after the search, which the wall-clock budget would cut short.
    stopping = keras.callbacks.EarlyStopping(patience=10, min_delta=1e-4)
    one_hot = np.eye(num_classes, dtype=np.float32)
    started = time.perf_counter()
    with open(run / "search.log", "a") as search_log, contextlib.redirect_stdout(_Tee(sys.stdout, search_log)):
        model.fit(
            dataset.train.images.astype(np.float32),
            one_hot[dataset.train.labels],
            validation_data=(dataset.validation.images.astype(np.float32), one_hot[dataset.validation.labels]),
            epochs=config.trial_epochs or config.epochs,
            batch_size=config.batch_size,
            callbacks=[*callbacks, recorder, stopping],
            verbose=options.verbose if options.verbose != "auto" else 2,
        )
    seconds = time.perf_counter() - started
    trials = trial_summary(model.tuner)
    write_json(run / "trials.json", trials)
    ending = " (wall-clock budget reached, or too little of it left for another trial)" if budget.exhausted else ""
    log.info("search: %d trials in %.0f s%s", len(trials), seconds, ending)
    best = plain_keras(model.export_model(), dataset.validation.images[:32].astype(np.float32))
    inputs = keras.Input(shape=(*config.input_size, 3), dtype="float32", name=INPUT_NAME)
    outputs = keras.layers.Identity(name=OUTPUT_NAME, dtype="float32")(best(inputs))  # Probabilities in float32 under any policy.
    wrapped = keras.Model(inputs, outputs, name=f"{config.name}_autokeras")
    summary = {
        "trials": len(trials),
        "search_seconds": round(seconds, 3),
        "search_epochs": len(recorder.history),
        "budget_exhausted": budget.exhausted,
        **({"trial_seconds": round(trial_seconds, 1), "trials_stopped_by_time": clock.stopped} if trial_seconds else {}),
    }
    images = len(dataset.train) * len(recorder.history)
    return FitResult(wrapped, recorder.history, recorder.train_seconds, images, accumulate(searched, summary))


def accumulate(path, summary: dict) -> dict:
    """The search's summary over every invocation of its run, kept in ``path``: a resumed search
    (``--resume``) adds its seconds, epochs and time-stopped trials to what the earlier ones spent,
    so a run resumed after its search reports the search it ran, not a reload of one second."""
    from training.run_dir import read_json, write_json

    if path.is_file():
        earlier = read_json(path)
        for key in ("search_seconds", "search_epochs", "trials_stopped_by_time"):
            if key in earlier and key in summary:
                summary[key] = round(earlier[key] + summary[key], 3)
        summary["budget_exhausted"] = bool(earlier.get("budget_exhausted")) or summary["budget_exhausted"]
    write_json(path, summary)
    return summary


def plain_keras(model: keras.Model, sample: np.ndarray) -> keras.Model:
    """Rebuilds an AutoKeras model with stock Keras layers only, so loading it needs no AutoKeras.

    AutoKeras adds `CastToFloat32` (our input is float32 already: an identity). Keras' random
    augmentation layers (``augment=True`` searches) become identities too: they only act in
    training. Any other AutoKeras layer is refused by name. The rebuilt model must agree with the original on ``sample``.
    """

    def clone(layer):
        module = type(layer).__module__
        if module.startswith("autokeras"):
            if type(layer).__name__ == "CastToFloat32":
                return keras.layers.Identity(name=layer.name)
            raise ValueError(f"the best AutoKeras model uses {module}.{type(layer).__name__}, which has no stock Keras twin")
        if _is_augmentation(layer):  # Training-time only (an identity at inference), and its seed state breaks SavedModel export.
            return keras.layers.Identity(name=layer.name)
        return type(layer).from_config(layer.get_config())

    rebuilt = keras.models.clone_model(model, clone_function=clone)
    for original, copy in zip(model.layers, rebuilt.layers, strict=True):
        if not _is_augmentation(original):  # Its only state is the random seed's.
            copy.set_weights(original.get_weights())
    for layer in rebuilt.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()  # Derives mean/variance from the adapted statistics just set.
    if len(sample):
        expected, actual = model.predict(sample, verbose=0), rebuilt.predict(sample, verbose=0)
        if not np.allclose(expected, actual, atol=1e-5):
            raise RuntimeError(f"rebuilt AutoKeras model disagrees with the original by {np.abs(expected - actual).max()}")
    return rebuilt


def _is_augmentation(layer) -> bool:
    """Keras' random image augmentation layers (RandomFlip, RandomTranslation, ...)."""
    return type(layer).__name__.startswith("Random") and ".preprocessing." in type(layer).__module__
