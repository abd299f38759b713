"""Task 2's recommended search space: the family of task 1's CNN, whose first trial is task 1's
recommended network itself, so the search starts from the hand-designed model and can only
keep it or find a better one.

The family (`CNNBlock`): three blocks of ``convs_per_block`` 3x3 convolutions (batch norm, ReLU)
and a 2x2 max-pool, at widths ``width``, 2x and 4x, then task 1's head, built by
`training.models.cnn.features` (task 1's own code). Every value not searched is read from task
1's recommended preset. Trials train with Adam from 1e-3 on label-smoothed targets (the learning
rate decays within each trial, see `training.models.autokeras_search.TrialClock`); what the
search varies is the architecture, and the final fit (`training.train`) trains the best on with
task 1's own schedule.

What a short trial cannot judge stays out of the space. Trials of equal time favour whatever
learns fastest in their first epochs: on the full Tiny ImageNet at 2 hours, 140-second trials
chose one convolution a block and no dropout, and the final fit trained that network to 38.2%
where task 1's reached 48.8% (docs/results.md). So the space holds only networks at least as
large as task 1's (a trial asks whether the extra capacity learns fast enough to pay for its
cost), and the head's dropout is the recipe's, not a searched value.
"""

from __future__ import annotations

import dataclasses

import autokeras as ak
import keras
import keras_tuner
import tree
from keras import layers

from training.model_options import CnnOptions
from training.models import cnn

SEARCH_SPACES = ("cnn",)


def task1_network() -> CnnOptions:
    from training import tasks

    return tasks.resolve("task1", "recommended").model


@keras.saving.register_keras_serializable(package="imgclf")
class CNNBlock(ak.Block):
    """Task 1's CNN family as an AutoKeras block (input: raw 0-255 pixels; output: a vector)."""

    def build(self, hp, inputs=None):
        base = task1_network()
        filters = base.filters
        width = hp.Choice("width", sorted({filters[0], 48, 64}), default=filters[0])
        convs = hp.Choice("convs_per_block", sorted({base.convs_per_block, 3}), default=base.convs_per_block)
        x = tree.flatten(inputs)[0]
        x = layers.Rescaling(1.0 / 255.0)(x)
        widths = tuple(width * f // filters[0] for f in filters)
        trial = dataclasses.replace(base, filters=widths, convs_per_block=convs, dropout_after=())
        return cnn.features(x, trial)


def auto_model(config, num_classes: int, **common) -> ak.AutoModel:
    """The AutoModel over `CNNBlock`, its first trial task 1's network."""
    block = CNNBlock(name="cnn")
    image = ak.ImageInput()
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    head = ak.ClassificationHead(num_classes=num_classes, dropout=0.0, loss=loss)(block(image))
    fixed = keras_tuner.HyperParameters()
    # Adam from 1e-3, not AutoKeras' "adam_weight_decay": that decays its rate over a step count it
    # derives from a sample count that is not known when the trial compiles (steps come out as 1),
    # so its trials ran at a rate of zero after their first few steps and never learned.
    fixed.Fixed("optimizer", "adam")
    fixed.Fixed("learning_rate", 1e-3)
    base = task1_network()
    first = {"cnn/width": base.filters[0], "cnn/convs_per_block": base.convs_per_block}
    first.update({"optimizer": "adam", "learning_rate": 1e-3})
    return ak.AutoModel(inputs=image, outputs=head, tuner="greedy", hyperparameters=fixed, initial_hps=[first], **common)
