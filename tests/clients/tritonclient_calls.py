"""Calls a running imgclf server with the real, unchanged tritonclient (http and grpc, sync and aio),
as a Triton user would; prints what came back as JSON for tests/clients/test_tritonclient.py.

It runs in a virtual environment that holds tritonclient and nothing of this project
(``make tritonclient-venv``: tritonclient needs protobuf < 7, the project protobuf 7), so it
imports only tritonclient, numpy and the standard library.

    python tritonclient_calls.py HTTP_HOST:PORT GRPC_HOST:PORT MODEL INPUTS.npz
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys

import numpy as np


def requests(client_module, images: list[bytes], pixels: dict[str, np.ndarray], grpc: bool) -> dict[str, tuple[list, list]]:
    """name -> (inputs, outputs) of every infer call made with each client."""

    def images_input(as_json: bool):
        # JSON has no bytes: base64 (over gRPC every tensor is bytes, so the JSON calls equal the others).
        values = [base64.b64encode(blob) for blob in images] if as_json and not grpc else images
        tensor = client_module.InferInput("images", [len(images)], "BYTES")
        data = np.array(values, dtype=np.object_)
        tensor.set_data_from_numpy(data) if grpc else tensor.set_data_from_numpy(data, binary_data=not as_json)
        return tensor

    def pixels_input(array: np.ndarray, as_json: bool):
        tensor = client_module.InferInput("pixels", list(array.shape), "FP32")
        tensor.set_data_from_numpy(array) if grpc else tensor.set_data_from_numpy(array, binary_data=not as_json)
        return tensor

    def output(class_count: int = 0, as_json: bool = False):
        if grpc:
            return client_module.InferRequestedOutput("probabilities", class_count=class_count)
        return client_module.InferRequestedOutput("probabilities", binary_data=not as_json, class_count=class_count)

    calls = {
        "images": ([images_input(False)], None),  # tritonclient's defaults: binary in, binary out.
        "images_json": ([images_input(True)], [output(as_json=True)]),
        "pixels_at_size": ([pixels_input(pixels["at_size"], False)], [output()]),
        "pixels_other_size": ([pixels_input(pixels["other_size"], False)], [output()]),
        "pixels_json": ([pixels_input(pixels["other_size"], True)], [output(as_json=True)]),
        "top1": ([images_input(False)], [output(class_count=1)]),
        "top5": ([images_input(False)], [output(class_count=5)]),
        "top5_json": ([images_input(True)], [output(class_count=5, as_json=True)]),
    }
    return calls


def decode(result) -> list:
    array = result.as_numpy("probabilities")
    if array.dtype == np.object_:
        return [[value.decode() if isinstance(value, bytes) else value for value in row] for row in array]
    return array.astype(float).tolist()


def check_errors(outcomes: dict, call) -> None:
    """A bad request raises InferenceServerException with the server's message."""
    from tritonclient.utils import InferenceServerException

    try:
        call()
    except InferenceServerException as error:
        outcomes["unknown_model_error"] = {"status": error.status(), "message": error.message()}


def sync(client_module, url: str, model: str, images, pixels, grpc: bool) -> dict:
    client = client_module.InferenceServerClient(url)
    out = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "server_metadata": _plain(client.get_server_metadata()),
        "model_metadata": _plain(client.get_model_metadata(model)),
    }
    for name, (inputs, outputs) in requests(client_module, images, pixels, grpc).items():
        result = client.infer(model, inputs, outputs=outputs, request_id=f"{name}-1")
        out[name] = decode(result)
        out[f"{name}_id"] = result.get_response()["id"] if not grpc else result.get_response().id
    inputs, outputs = requests(client_module, images, pixels, grpc)["images"]
    check_errors(out, lambda: client.infer("no-such-model", inputs, outputs=outputs))
    # The statistics extension, after this client's calls: one model, and every model.
    out["statistics"] = _plain(client.get_inference_statistics(model))
    out["statistics_all"] = _plain(client.get_inference_statistics())
    client.close()
    return out


async def in_aio(client_module, url: str, model: str, images, pixels, grpc: bool) -> dict:
    client = client_module.InferenceServerClient(url)
    out = {
        "live": await client.is_server_live(),
        "ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready(model),
        "server_metadata": _plain(await client.get_server_metadata()),
        "model_metadata": _plain(await client.get_model_metadata(model)),
    }
    for name, (inputs, outputs) in requests(client_module, images, pixels, grpc).items():
        result = await client.infer(model, inputs, outputs=outputs, request_id=f"{name}-1")
        out[name] = decode(result)
        out[f"{name}_id"] = result.get_response()["id"] if not grpc else result.get_response().id
    out["statistics"] = _plain(await client.get_inference_statistics(model))
    await client.close()
    return out


def _plain(metadata) -> dict:
    """Metadata as a dict, whether tritonclient returned JSON (http) or a protobuf message (grpc)."""
    if isinstance(metadata, dict):
        return metadata
    from google.protobuf import json_format

    return json_format.MessageToDict(metadata, preserving_proto_field_name=True)


def main() -> None:
    http_url, grpc_url, model, arrays = sys.argv[1:5]
    loaded = np.load(arrays, allow_pickle=False)
    images = [loaded[f"image{i}"].tobytes() for i in range(int(loaded["count"]))]
    pixels = {"at_size": loaded["at_size"].astype(np.float32), "other_size": loaded["other_size"].astype(np.float32)}

    import tritonclient.grpc as grpc_client
    import tritonclient.grpc.aio as grpc_aio
    import tritonclient.http as http_client
    import tritonclient.http.aio as http_aio

    results = {
        "http": sync(http_client, http_url, model, images, pixels, grpc=False),
        "grpc": sync(grpc_client, grpc_url, model, images, pixels, grpc=True),
        "http_aio": asyncio.run(in_aio(http_aio, http_url, model, images, pixels, grpc=False)),
        "grpc_aio": asyncio.run(in_aio(grpc_aio, grpc_url, model, images, pixels, grpc=True)),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
