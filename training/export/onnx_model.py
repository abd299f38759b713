"""The ONNX model: converted with tf2onnx from the serving function, with its contract in metadata.

Input ``pixels`` float32 ``[batch, H, W, 3]`` (raw RGB 0-255, NHWC, dynamic batch), output
``probabilities`` float32 ``[batch, classes]``. Metadata (``metadata_props``, all JSON strings
where not plain text): ``imgclf.labels``, ``imgclf.names``, ``imgclf.input_size``,
``imgclf.preprocessing``, ``imgclf.model_name``, ``imgclf.version``, ``imgclf.task``.

Keras 3 Sequential models break ``tf2onnx.convert.from_keras`` (KeyError on output names), and
``from_function`` turns captured constants (e.g. an adapted Normalization layer's mean) into
extra graph inputs. So the conversion freezes the same tf.function the SavedModel serves
(variables and captures become constants) and converts that graph.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from training.interface.contract import INPUT_NAME, OUTPUT_NAME

OPSET = 17
METADATA_PREFIX = "imgclf."


def convert(module, path: Path, metadata: dict) -> None:
    """Converts ``module.serving_default`` to ONNX at ``path`` and records ``metadata`` in it."""
    import tf2onnx
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(module.serving_default.get_concrete_function())
    proto, _ = tf2onnx.convert.from_graph_def(
        frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs], output_names=[t.name for t in frozen.outputs], opset=OPSET
    )
    _rename(proto, {frozen.inputs[0].name: INPUT_NAME, frozen.outputs[0].name: OUTPUT_NAME})
    if [i.name for i in proto.graph.input] != [INPUT_NAME] or [o.name for o in proto.graph.output] != [OUTPUT_NAME]:
        raise RuntimeError(
            f"tf2onnx produced inputs {[i.name for i in proto.graph.input]} and outputs "
            f"{[o.name for o in proto.graph.output]}; expected {INPUT_NAME} -> {OUTPUT_NAME}"
        )
    # Name the dynamic batch dimension on both ends (tf2onnx calls it unk__N).
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    proto.producer_name = "imgclf"
    proto.doc_string = f"{metadata.get('model_name', '')}: raw RGB pixels 0-255 in, class probabilities out"
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = METADATA_PREFIX + key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _rename(proto, names: dict[str, str]) -> None:
    """Renames graph tensors (tf2onnx keeps TensorFlow's ``name:0``) everywhere they appear."""
    for node in proto.graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        value.name = names.get(value.name, value.name)


def read_metadata(path: Path) -> dict:
    """The ``imgclf.*`` metadata of an exported ONNX model, JSON values decoded."""
    proto = onnx.load(str(path), load_external_data=False)
    metadata = {}
    for entry in proto.metadata_props:
        if entry.key.startswith(METADATA_PREFIX):
            try:
                metadata[entry.key[len(METADATA_PREFIX) :]] = json.loads(entry.value)
            except json.JSONDecodeError:
                metadata[entry.key[len(METADATA_PREFIX) :]] = entry.value
    return metadata


def session(path: Path, threads: int = 0):
    """An ONNX Runtime session of ``path`` with ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(session, pixels: np.ndarray, batch: int = 64) -> np.ndarray:
    outputs = [session.run([OUTPUT_NAME], {INPUT_NAME: pixels[i : i + batch].astype(np.float32)})[0] for i in range(0, len(pixels), batch)]
    return np.concatenate(outputs)
