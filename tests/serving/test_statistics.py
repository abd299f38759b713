"""The Open Inference Protocol's statistics extension in process: what a model version did, counted
per outcome and phase, alike over HTTP and gRPC (tritonclient's own calls are in tests/clients)."""

from __future__ import annotations

from google.protobuf import json_format

from serving.grpc.proto_pool import message
from tests.serving.conftest import encoded, run_with_grpc
from tests.tiny_model import solid


def stats(client, path: str = "/v2/models/tiny/stats") -> dict:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    (entry,) = [e for e in answer.json()["model_stats"] if e["name"] == "tiny"]
    return entry


def test_requests_are_counted_by_outcome_and_phase_over_both_protocols(make_state):
    from starlette.testclient import TestClient

    from serving.http.app import app

    state = make_state()
    with TestClient(app) as client:
        before = stats(client)
        assert client.post("/classify", files=[("image", ("a.png", encoded(solid(0)), "image/png"))] * 2).status_code == 200
        assert client.post("/predict", json={"pixels": [solid(2, (4, 4)).tolist()]}).status_code == 200
        assert client.post("/classify", content=b"not an image", headers={"content-type": "image/png"}).status_code == 400
        after = stats(client)
        versioned = stats(client, "/v2/models/tiny/versions/1/stats")
        every = client.get("/v2/models/stats").json()
        unknown = client.get("/v2/models/nope/stats")

    def grown(field: str) -> int:
        return after["inference_stats"][field]["count"] - before["inference_stats"][field]["count"]

    assert (after["name"], after["version"]) == ("tiny", "1")
    assert after["inference_count"] - before["inference_count"] == 3  # Images answered.
    assert after["execution_count"] - before["execution_count"] == 2  # Model runs.
    assert (grown("success"), grown("fail")) == (2, 1)
    assert all(grown(phase) == 2 for phase in ("queue", "compute_input", "compute_infer", "compute_output"))
    assert after["inference_stats"]["compute_infer"]["ns"] > before["inference_stats"]["compute_infer"]["ns"]
    spent = sum(after["inference_stats"][p]["ns"] - before["inference_stats"][p]["ns"] for p in ("compute_input", "compute_infer"))
    assert 0 < spent <= after["inference_stats"]["success"]["ns"] - before["inference_stats"]["success"]["ns"]  # Phases within the whole.
    assert after["last_inference"] > 1.6e12  # Milliseconds since the epoch.
    assert after["inference_stats"]["cache_hit"] == {"count": 0, "ns": 0}  # No response cache.
    assert versioned["inference_count"] == after["inference_count"]
    assert [e["name"] for e in every["model_stats"]] == ["tiny"]
    assert unknown.status_code == 404 and "model 'nope' is not served" in unknown.json()["error"]

    async def rpc(channel):
        call = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelStatistics",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message("inference.ModelStatisticsResponse").FromString,
        )
        return await call(message("inference.ModelStatisticsRequest")(name="tiny"))

    over_grpc = json_format.MessageToDict(run_with_grpc(state, rpc), preserving_proto_field_name=True)["model_stats"][0]
    assert int(over_grpc["inference_count"]) == after["inference_count"]
    assert int(over_grpc["inference_stats"]["success"]["count"]) == after["inference_stats"]["success"]["count"]
