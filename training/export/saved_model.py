"""The TensorFlow-Serving SavedModel: a Keras model plus the two serving signatures.

Signatures (what a stock TensorFlow Serving, or `tf.saved_model.load`, exposes):

* ``serving_default``: ``pixels`` float32 ``[batch, H, W, 3]`` (raw RGB, 0-255, the model's input
  size) -> ``probabilities`` float32 ``[batch, classes]``;
* ``classify``: ``images`` string ``[batch]`` (encoded JPEG/PNG/GIF/BMP bytes, any size and colour
  mode) -> ``class_index`` int32, ``label`` string, ``name`` string, ``score`` float32, each
  ``[batch, k]`` with ``k = training.interface.contract.classify_k(classes)``, best first.

``classify`` does the project's preprocessing in the graph: decode to RGB uint8 (JPEG with the
accurate integer DCT, as libjpeg in Pillow does; grayscale and palette become RGB; alpha is
dropped; animations give their first frame), then the bilinear resize of
`training.interface.preprocessing.resize_bilinear` (half-pixel centres, antialiased when shrinking,
rounded to whole grey levels). The export's parity check measures how far the two agree.

The labels ship as assets (``assets/labels.txt`` and ``assets/names.txt``, one per line, in
output order) and as constants inside the ``classify`` outputs.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from training.interface.contract import (
    CLASSIFY_INPUT,
    CLASSIFY_OUTPUTS,
    CLASSIFY_SIGNATURE,
    INPUT_NAME,
    OUTPUT_NAME,
    SERVING_SIGNATURE,
    SIGNATURES,
    STORE_MODULE,
    classify_k,
)

LABELS_ASSET = "labels.txt"
NAMES_ASSET = "names.txt"


def decode_and_resize(data: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """One encoded image -> float32 ``[H, W, 3]`` pixels, whole grey levels 0-255 (in the graph)."""
    image = tf.cond(
        tf.io.is_jpeg(data),
        lambda: tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False),
    )
    image = tf.ensure_shape(image, [None, None, 3])
    same = tf.logical_and(tf.equal(tf.shape(image)[0], size[0]), tf.equal(tf.shape(image)[1], size[1]))
    pixels = tf.cast(image, tf.float32)
    resized = tf.cond(
        same,
        lambda: pixels,
        lambda: tf.image.resize(pixels, size, method="bilinear", antialias=True),
    )
    # Round half up and clip, as Pillow does for 8-bit images.
    return tf.clip_by_value(tf.floor(resized + 0.5), 0.0, 255.0)


class ServingModule(tf.Module):
    """Holds the Keras model and its labels; its tf.functions become the SavedModel's signatures."""

    def __init__(self, model, labels: list[str], names: list[str], assets: dict[str, Path]):
        super().__init__(name=STORE_MODULE)
        self.model = model
        self.height, self.width = (int(v) for v in model.inputs[0].shape[1:3])
        self.top_k = classify_k(len(labels))
        self.labels = tf.constant(labels)
        self.names = tf.constant(names)
        # Tracked assets are copied into the SavedModel's assets/ folder.
        self.assets = [tf.saved_model.Asset(str(path)) for path in assets.values()]
        pixels_spec = tf.TensorSpec([None, self.height, self.width, 3], tf.float32, name=INPUT_NAME)
        images_spec = tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUT)
        self.serving_default = tf.function(self._serving_default, input_signature=[pixels_spec])
        self.preprocess = tf.function(self._preprocess, input_signature=[images_spec])
        self.classify = tf.function(self._classify, input_signature=[images_spec])

    def _probabilities(self, pixels):
        outputs = self.model(pixels, training=False)
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    def _serving_default(self, pixels):
        return {OUTPUT_NAME: self._probabilities(pixels)}

    def _preprocess(self, images):
        size = (self.height, self.width)
        return tf.map_fn(
            lambda data: decode_and_resize(data, size), images, fn_output_signature=tf.TensorSpec([self.height, self.width, 3], tf.float32)
        )

    def _classify(self, images):
        probabilities = self._probabilities(self._preprocess(images))
        top = tf.math.top_k(probabilities, k=self.top_k)
        values = (top.indices, tf.gather(self.labels, top.indices), tf.gather(self.names, top.indices), top.values)
        return dict(zip(CLASSIFY_OUTPUTS, values))

    def signatures(self) -> dict:
        return {SERVING_SIGNATURE: self.serving_default, CLASSIFY_SIGNATURE: self.classify}


def write_assets(folder: Path, labels: list[str], names: list[str]) -> dict[str, Path]:
    """Writes the label files the SavedModel ships (one entry per line, in output order)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for filename, values in ((LABELS_ASSET, labels), (NAMES_ASSET, names)):
        for value in values:
            if "\n" in value or "\r" in value:
                raise ValueError(f"class label {value!r} contains a line break; labels must be one line each")
        paths[filename] = folder / filename
        paths[filename].write_text("".join(f"{value}\n" for value in values), encoding="utf-8")
    return paths


def save(module: ServingModule, path: Path) -> None:
    """Writes the SavedModel (saved_model.pb, variables/, assets/) into ``path``."""
    tf.saved_model.save(module, str(path), signatures=module.signatures())


def signature_defs(path: Path) -> dict:
    """The written SavedModel's signatures, as TensorFlow Serving's metadata call describes them
    (real tensor names, dtypes and shapes, read from ``saved_model.pb``)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel.FromString((Path(path) / "saved_model.pb").read_bytes())
    definitions = saved.meta_graphs[0].signature_def
    return {
        name: json_format.MessageToDict(definitions[name], preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        for name in SIGNATURES
    }
