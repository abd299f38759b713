"""Writes the fuzz harnesses' seed corpora (tests/fuzz/corpus/NAME/seed-*): small valid inputs of
every kind each entry point takes, from which the fuzzer mutates. The written files are
committed; run this again only to change the seeds (regression inputs, ``finding-*``, are kept).

    python -m tests.fuzz.make_corpus
"""

from __future__ import annotations

import base64
import io
import json
import struct

import numpy as np
from PIL import Image

from tests.fuzz.run import CORPUS


def images() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    seeds = {}
    for fmt, mode, size in (
        ("JPEG", "RGB", (12, 9)),
        ("JPEG", "L", (9, 5)),
        ("JPEG", "CMYK", (8, 8)),
        ("PNG", "RGBA", (7, 6)),
        ("PNG", "P", (6, 6)),
        ("PNG", "I;16", (5, 4)),
        ("GIF", "P", (6, 5)),
        ("BMP", "RGB", (4, 7)),
        ("WEBP", "RGB", (8, 8)),
        ("TIFF", "RGB", (4, 4)),
    ):
        picture = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        seeds[f"{fmt.lower()}-{mode.replace(';', '').lower()}"] = buffer.getvalue()
    exif = Image.Exif()
    exif[0x0112] = 6  # Rotated: the server turns it upright.
    buffer = io.BytesIO()
    Image.new("RGB", (6, 3), "red").save(buffer, "JPEG", exif=exif)
    seeds["jpeg-exif-orientation"] = buffer.getvalue()
    return seeds


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def corpora() -> dict[str, dict[str, bytes]]:
    pictures = images()
    png, jpeg = pictures["png-rgba"], pictures["jpeg-rgb"]
    part = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n' + png + b"\r\n"
    fields = b'--x\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n2\r\n--x\r\nContent-Disposition: form-data; name="model"\r\n\r\ntiny\r\n'
    pixels = [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [9, 9, 9]]]
    v2_pixels = {"name": "pixels", "datatype": "UINT8", "shape": [1, 2, 2, 3], "data": sum(sum(pixels, []), [])}
    classification = [{"name": "probabilities", "parameters": {"classification": 2}}]
    header = json.dumps({"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(png) + 4}}]})
    raw_pixels = np.array(pixels, np.uint8).tobytes()
    header_pixels = json.dumps(
        {
            "inputs": [{"name": "pixels", "datatype": "UINT8", "shape": [1, 2, 2, 3], "parameters": {"binary_data_size": len(raw_pixels)}}],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    )
    return {
        "image": pictures,
        "multipart": {
            "one-image": b"x\r\n" + part + b"--x--\r\n",
            "image-and-fields": b"x\r\n" + part + fields + b"--x--\r\n",
        },
        "tf_serving_json": {
            "classify-b64": json.dumps({"signature_name": "classify", "instances": [{"b64": b64(png)}]}).encode(),
            "rows-named": json.dumps({"instances": [{"images": {"b64": b64(jpeg)}}]}).encode(),
            "pixels": json.dumps({"signature_name": "serving_default", "instances": [pixels]}).encode(),
            "columns": json.dumps({"inputs": {"pixels": [pixels]}}).encode(),
        },
        "v2_json": {
            "images": json.dumps({"id": "1", "inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": [b64(png)]}]}).encode(),
            "pixels-classification": json.dumps({"inputs": [v2_pixels], "outputs": classification}).encode(),
            "pixels-nested": json.dumps({"inputs": [{**v2_pixels, "datatype": "FP32", "data": [pixels]}]}).encode(),
        },
        "v2_binary": {
            "images": struct.pack("<I", len(header)) + header.encode() + struct.pack("<I", len(png)) + png,
            "pixels": struct.pack("<I", len(header_pixels)) + header_pixels.encode() + raw_pixels,
        },
        "protobuf": protobuf_seeds(png, pixels),
    }


def protobuf_seeds(png: bytes, pixels: list) -> dict[str, bytes]:
    """A valid request for each gRPC method, prefixed with the method's index in the harness."""
    from protos.imgclf.v1 import classifier_pb2 as pb
    from serving.grpc.proto_pool import message
    from tests.fuzz.harnesses import _grpc_methods

    array = np.array(pixels, np.uint8)
    infer = message("inference.ModelInferRequest")(model_name="tiny")
    tensor = infer.inputs.add(name="images", datatype="BYTES", shape=[1])
    tensor.contents.bytes_contents.append(png)
    raw_infer = message("inference.ModelInferRequest")(model_name="tiny", raw_input_contents=[struct.pack("<I", len(png)) + png])
    raw_infer.inputs.add(name="images", datatype="BYTES", shape=[1])
    tf_predict = message("tensorflow.serving.PredictRequest")()
    tf_predict.model_spec.name, tf_predict.model_spec.signature_name = "tiny", "classify"
    tf_predict.inputs["images"].dtype = 7  # DT_STRING
    tf_predict.inputs["images"].tensor_shape.dim.add(size=1)
    tf_predict.inputs["images"].string_val.append(png)
    tf_metadata = message("tensorflow.serving.GetModelMetadataRequest")(metadata_field=["signature_def"])
    tf_metadata.model_spec.name = "tiny"
    requests = {
        "/imgclf.v1.ClassifierService/Classify": [pb.ClassifyRequest(images=[png], top_k=2)],
        "/imgclf.v1.ClassifierService/Predict": [
            pb.PredictRequest(arrays=[pb.PixelArray(shape=list(array.shape), uint8_values=array.tobytes())]),
        ],
        "/imgclf.v1.ClassifierService/ListModels": [pb.ListModelsRequest()],
        "/imgclf.v1.ClassifierService/Explain": [pb.ExplainRequest(image=png, class_index=1)],
        "/imgclf.v1.ClassifierService/Feedback": [pb.FeedbackRequest(image=png, label="red")],
        "/imgclf.v1.ClassifierService/GetModelMetadata": [pb.GetModelMetadataRequest(model_spec=pb.ModelSpec(name="tiny"))],
        "/tensorflow.serving.PredictionService/Predict": [tf_predict],
        "/tensorflow.serving.PredictionService/GetModelMetadata": [tf_metadata],
        "/inference.GRPCInferenceService/ModelInfer": [infer, raw_infer],
        "/inference.GRPCInferenceService/ModelMetadata": [message("inference.ModelMetadataRequest")(name="tiny")],
        "/inference.GRPCInferenceService/ModelReady": [message("inference.ModelReadyRequest")(name="tiny")],
        "/inference.GRPCInferenceService/ModelStatistics": [message("inference.ModelStatisticsRequest")(name="tiny")],
    }
    seeds = {}
    for index, (name, _) in enumerate(_grpc_methods()):
        for number, request in enumerate(requests.get(name, [])):
            seeds[f"{name.rsplit('.', 1)[-1].replace('/', '-')}-{number}"] = bytes([index]) + request.SerializeToString()
    return seeds


def main() -> None:
    for name, seeds in corpora().items():
        folder = CORPUS / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for seed, data in seeds.items():
            (folder / f"seed-{seed}").write_bytes(data)
        print(f"{name}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
