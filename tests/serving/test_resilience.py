"""The service under load, faults and hostile clients (issue 6), against one real `bentoml serve`
with API tokens and TLS on both ports, two workers, small queues and a 1 s store poll.

The tests run in file order and share the server: tokens and TLS, overload, deadlines, a hot
model update, SIGKILL of a worker, and last SIGTERM, which ends the server.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import signal
import ssl
import threading
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from imgclf_client import GrpcClient, HttpClient, RetryPolicy
from imgclf_client.errors import (
    APIConnectionError,
    AuthenticationError,
    OverloadedError,
    UnavailableError,
)
from protos.imgclf.v1 import classifier_pb2 as pb
from protos.imgclf.v1 import classifier_pb2_grpc as pb_grpc
from tests.clients.peers import self_signed_certificate
from tests.conftest import run_cli
from tests.live_server import start_server, stop_server
from tests.serving.helpers import assert_same, pairs, reference

TOKEN = "tok-resilience-0123456789abcdef"
OTHER_TOKEN = "tok-second-client-0123456789"
MODEL = "digits-cnn"
QUEUE = 3  # Requests per model and worker; two workers.


def big_jpeg(seed: int, side: int = 900) -> bytes:
    """A photo-sized JPEG (slow enough to decode that a burst of them fills the queues)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], axis=2) + rng.integers(0, 30, (side, side, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


SLOW = [big_jpeg(seed) for seed in range(12)]  # One slow request: 12 photo-sized images.


@pytest.fixture(scope="module")
def guarded(demo_export, tmp_path_factory):
    """The server, over a private copy of the demo model's store."""
    tmp = tmp_path_factory.mktemp("guarded")
    shutil.copytree(demo_export["store"], tmp / "store", symlinks=True)
    cert, key = self_signed_certificate(tmp)
    (tmp / "tokens").write_text(f"# API tokens\n{TOKEN}\n\n{OTHER_TOKEN}\n")
    server = start_server(
        tmp,
        {
            "BENTOML_HOME": str(tmp / "store"),
            "IMGCLF_MODELS": MODEL,
            "IMGCLF_WORKERS": "2",
            "IMGCLF_TOKEN_FILE": str(tmp / "tokens"),
            "IMGCLF_TLS_CERT_FILE": cert,
            "IMGCLF_TLS_KEY_FILE": key,
            "IMGCLF_QUEUE_SIZE": str(QUEUE),
            "IMGCLF_POLL_SECONDS": "1",
            "IMGCLF_KEEP_VERSIONS": "2",
            "IMGCLF_SHUTDOWN_GRACE_S": "15",
        },
        ready=lambda http, grpc_target: _ready(http, grpc_target, cert) and _started(tmp / "server.log") == 2,
    )
    server.cert, server.tmp, server.store = cert, tmp, tmp / "store"
    server.https = server.http.replace("http://", "https://")
    yield server
    stop_server(server, signal.SIGKILL)


def _ready(http: str, grpc_target: str, cert: str) -> bool:
    https = http.replace("http://", "https://")
    if httpx.get(f"{https}/readyz", verify=cert, timeout=2).status_code != 200:
        return False
    with grpc.secure_channel(grpc_target, grpc.ssl_channel_credentials(open(cert, "rb").read())) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING


def _started(log: Path) -> int:
    """How many API workers have started so far (both must be up before the tests begin)."""
    return log.read_text(errors="replace").count("Completed async startup hook")


def clients(server, token: str | None = TOKEN, retries=0):
    return (
        HttpClient(server.https, token=token, ca_file=server.cert, retries=retries),
        GrpcClient(server.grpc, token=token, ca_file=server.cert, retries=retries),
    )


def metric(server, name: str, **labels) -> float:
    """The sum over workers of a Prometheus sample (0 if none yet)."""
    text = httpx.get(f"{server.https}/metrics", verify=server.cert, timeout=10).text
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{key}="{value}"' in match[1] for key, value in labels.items()):
            total += float(match[2])
    return total


def grpc_credentials(server):
    return grpc.ssl_channel_credentials(open(server.cert, "rb").read())


# -- tokens and TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token-of-this-service", "Bearer", f"Basic {TOKEN}", TOKEN],
    ids=["none", "wrong", "empty", "wrong scheme", "no scheme"],
)
def test_calls_without_a_valid_token_are_refused_on_both_protocols(guarded, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in (
        ("GET", "/models"),
        ("GET", f"/models/{MODEL}"),
        ("POST", "/classify"),
        ("POST", "/predict"),
        ("GET", f"/v1/models/{MODEL}/metadata"),
        ("POST", f"/v1/models/{MODEL}:predict"),
        ("POST", "/admin/reload"),
    ):
        response = httpx.request(method, f"{guarded.https}{path}", headers=headers, content=b"{}", verify=guarded.cert, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert "token" in response.json()["error"].lower() or "authorization" in response.json()["error"].lower()
    metadata = (("authorization", authorization),) if authorization else ()
    with grpc.secure_channel(guarded.grpc, grpc_credentials(guarded)) as channel:
        stub = pb_grpc.ClassifierServiceStub(channel)
        calls = (
            lambda: stub.ListModels(pb.ListModelsRequest(), metadata=metadata, timeout=10),
            lambda: stub.GetModelMetadata(pb.GetModelMetadataRequest(), metadata=metadata, timeout=10),
            lambda: stub.Classify(pb.ClassifyRequest(images=[SLOW[0]]), metadata=metadata, timeout=10),
            lambda: list(stub.ClassifyStream(iter([pb.ClassifyRequest(images=[SLOW[0]])]), metadata=metadata, timeout=10)),
        )
        for call in calls:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, caught.value.details()


def test_the_right_tokens_work_and_health_stays_open(guarded):
    blob = SLOW[1]
    expected = reference(MODEL, [blob])
    for token in (TOKEN, OTHER_TOKEN):
        for client in clients(guarded, token):
            with client:
                assert_same([[(c.label, c.score) for c in client.classify(blob).predictions[0]]], expected)
                assert [m.name for m in client.models()] == [MODEL]
    for path in ("/readyz", "/healthz", "/livez", "/metrics"):
        assert httpx.get(f"{guarded.https}{path}", verify=guarded.cert, timeout=10).status_code == 200, path
    with grpc.secure_channel(guarded.grpc, grpc_credentials(guarded)) as channel:
        assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    for client in clients(guarded, None):
        with client, pytest.raises(AuthenticationError):
            client.classify(blob)


def test_tls_is_required_and_an_unknown_certificate_is_refused(guarded, tmp_path):
    with grpc.insecure_channel(guarded.grpc) as channel, pytest.raises(grpc.RpcError):
        pb_grpc.ClassifierServiceStub(channel).ListModels(pb.ListModelsRequest(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=5)
    with pytest.raises(httpx.HTTPError):
        httpx.get(guarded.http + "/models", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    other_cert, _ = self_signed_certificate(tmp_path)
    for client in (
        HttpClient(guarded.https, token=TOKEN, ca_file=other_cert, retries=0),
        GrpcClient(guarded.grpc, token=TOKEN, ca_file=other_cert, retries=0, timeout=5),
    ):
        with client, pytest.raises(APIConnectionError):
            client.models()


# -- overload and deadlines ---------------------------------------------------------------------


async def _burst(server, count: int, timeout: float | None = None, protocols=("http", "grpc")) -> list[tuple[str, object, float]]:
    """``count`` slow requests at once (over ``protocols`` in turn), with no retries: (protocol, outcome, seconds)."""
    context = ssl.create_default_context(cafile=server.cert)
    headers = {"Authorization": f"Bearer {TOKEN}", **({"X-Request-Timeout": str(timeout)} if timeout else {})}
    files = [("image", (f"{i}.jpg", blob, "image/jpeg")) for i, blob in enumerate(SLOW)]

    async with (
        httpx.AsyncClient(verify=context, timeout=120, limits=httpx.Limits(max_connections=count)) as http,
        grpc.aio.secure_channel(server.grpc, grpc_credentials(server)) as channel,
    ):
        stub = pb_grpc.ClassifierServiceStub(channel)

        async def one(index: int):
            start = time.monotonic()
            if protocols[index % len(protocols)] == "http":
                response = await http.post(f"{server.https}/classify", files=files, headers=headers)
                return "http", response, time.monotonic() - start
            try:
                call = stub.Classify(pb.ClassifyRequest(images=SLOW), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=timeout or 120)
                answer = await call
                return "grpc", answer, time.monotonic() - start
            except grpc.aio.AioRpcError as error:
                return "grpc", error, time.monotonic() - start

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 150)


def test_a_burst_past_the_queue_is_refused_quickly_and_the_rest_is_answered(guarded):
    refused_before = metric(guarded, "imgclf_overloaded_total", model=MODEL)
    results = asyncio.run(_burst(guarded, 24))
    expected = pairs([[{"label": label, "score": s} for label, s in image] for image in reference(MODEL, SLOW)])
    answered = refused = 0
    for protocol, outcome, seconds in results:
        if protocol == "http" and outcome.status_code == 200:
            assert_same(pairs(outcome.json()["predictions"]), expected)
            answered += 1
        elif protocol == "http":
            assert outcome.status_code == 503, outcome.text
            assert outcome.headers["Retry-After"] == "1" and "overloaded" in outcome.json()["error"]
            assert seconds < 5, f"an overload answer took {seconds:.1f} s"
            refused += 1
        elif isinstance(outcome, grpc.aio.AioRpcError):
            assert outcome.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, outcome.details()
            assert dict(outcome.trailing_metadata())["retry-after"] == "1" and "overloaded" in outcome.details()
            assert seconds < 5, f"an overload answer took {seconds:.1f} s"
            refused += 1
        else:
            assert_same([[(c.label, c.score) for c in image.classes] for image in outcome.results], expected)
            answered += 1
    assert answered >= 2 and refused >= 6, (answered, refused)
    assert metric(guarded, "imgclf_overloaded_total", model=MODEL) - refused_before == refused
    # Healthy after: the SDK (whose retries wait at least the Retry-After) gets through.
    for client in clients(guarded, retries=RetryPolicy(attempts=6, backoff=0.2)):
        with client:
            assert client.classify(SLOW[0]).model == MODEL


def test_work_past_its_deadline_is_dropped_before_the_model(guarded):
    images_before = metric(guarded, "imgclf_model_images_total", model=MODEL)
    results = asyncio.run(_burst(guarded, 6, timeout=0.1, protocols=("http",)))
    statuses = sorted(response.status_code for _, response, _ in results)
    assert 504 in statuses and set(statuses) <= {200, 503, 504}, statuses
    for _, response, _ in results:
        if response.status_code == 504:
            assert "deadline passed" in response.json()["error"] and "dropped, not run" in response.json()["error"]
    time.sleep(0.5)
    # Exactly the answered requests reached the model: late ones were dropped before it.
    assert metric(guarded, "imgclf_model_images_total", model=MODEL) - images_before == statuses.count(200) * len(SLOW)

    images_before = metric(guarded, "imgclf_model_images_total", model=MODEL)
    results = asyncio.run(_burst(guarded, 6, timeout=0.1, protocols=("grpc",)))
    late = [
        seconds
        for _, outcome, seconds in results
        if isinstance(outcome, grpc.aio.AioRpcError) and outcome.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ]
    answered = sum(not isinstance(outcome, grpc.aio.AioRpcError) for _, outcome, _ in results)
    assert late and max(late) < 2, late  # The gRPC deadline ends the call on time ...
    time.sleep(0.5)
    # ... and most late calls never reached the model (one whose model run had begun still completes there).
    assert metric(guarded, "imgclf_model_images_total", model=MODEL) - images_before < (answered + len(late)) * len(SLOW)


def test_work_of_a_client_that_went_away_is_dropped_before_the_model(guarded):
    images_before = metric(guarded, "imgclf_model_images_total", model=MODEL)
    # A client may hang up while its work waits (counted under the model) or while its body is still
    # being read (under "-": the body that names the model never arrived); any model label counts.
    cancelled_before = metric(guarded, "imgclf_requests_total", protocol="http", outcome="cancelled")
    # 24 photo-sized images a request: far more work than the 0.05 s these clients wait for an answer.
    files = [("image", (f"{i}.jpg", blob, "image/jpeg")) for i, blob in enumerate(SLOW * 2)]

    async def burst():
        context = ssl.create_default_context(cafile=guarded.cert)
        async with httpx.AsyncClient(verify=context, timeout=httpx.Timeout(10, read=0.05)) as http:

            async def one():
                try:
                    return (await http.post(f"{guarded.https}/classify", files=files, headers={"Authorization": f"Bearer {TOKEN}"})).status_code
                except httpx.ReadTimeout:
                    return "gone"  # This client hangs up.

            return await asyncio.gather(*(one() for _ in range(6)))

    outcomes = asyncio.run(burst())
    time.sleep(1.5)
    admitted = len(outcomes) - outcomes.count(503)
    assert "gone" in outcomes, outcomes
    assert metric(guarded, "imgclf_requests_total", protocol="http", outcome="cancelled") - cancelled_before >= 1, outcomes
    # The requests already running finished on the model; the queued ones of the clients that left never got there.
    assert metric(guarded, "imgclf_model_images_total", model=MODEL) - images_before < admitted * len(files)


# -- hot model updates --------------------------------------------------------------------------


class Stream:
    """Classifies in a loop on a thread (HTTP and gRPC alternately) and records every outcome."""

    def __init__(self, server, retries=0, images=None):
        self.server, self.retries, self.images = server, retries, images or [SLOW[2]]
        self.outcomes: list[tuple[str, object]] = []
        self.spans: list[tuple[float, float]] = []  # (start, end) of each outcome, time.monotonic()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        http, grpc_client = clients(self.server, retries=self.retries)
        with http, grpc_client:
            turn = 0
            while not self.stop.is_set():
                client = (http, grpc_client)[turn % 2]
                turn += 1
                start = time.monotonic()
                try:
                    self.outcomes.append(("ok", client.classify(self.images)))
                except Exception as error:  # noqa: BLE001 - recorded for the test to judge
                    self.outcomes.append(("error", error))
                self.spans.append((start, time.monotonic()))
                time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)

    def errors(self):
        return [outcome for kind, outcome in self.outcomes if kind == "error"]


def test_a_new_version_is_served_without_a_failed_request_and_a_corrupt_one_is_refused(guarded, demo_export, tmp_path):
    with Stream(guarded) as stream:
        time.sleep(1)
        result = run_cli("export", str(demo_export["run"]), "--export-root", str(tmp_path / "exports"), env={"BENTOML_HOME": str(guarded.store)})
        assert result.returncode == 0, result.stderr[-3000:]
        exported = time.monotonic()
        # Both workers have switched when the last several answers (spread over both) all come from version 2.
        while time.monotonic() - exported < 20 and not (
            len(stream.outcomes) > 8 and all(kind == "ok" and outcome.version == 2 for kind, outcome in stream.outcomes[-8:])
        ):
            time.sleep(0.2)
        switched = time.monotonic() - exported
        time.sleep(1)
    versions = [outcome.version for kind, outcome in stream.outcomes if kind == "ok"]
    assert stream.errors() == []
    assert versions[0] == 1 and versions[-1] == 2 and switched < 10, (switched, versions[-10:])
    expected = reference(MODEL, [SLOW[2]])
    with clients(guarded)[1] as client:
        assert sorted(client.model(MODEL).versions) == [1, 2]  # The last two versions stay addressable.
        for version in (1, 2):
            answer = client.classify(SLOW[2], version=version)
            assert answer.version == version
            assert_same([[(c.label, c.score) for c in answer.predictions[0]]], expected)

    # A corrupt version 3 (its ONNX file cut short) is refused and logged; version 2 keeps serving.
    source, target = guarded.store / "models" / MODEL / "2", guarded.store / "models" / MODEL / "3"
    staging = guarded.store / "staging-3"
    shutil.copytree(source, staging)
    (staging / "model.yaml").write_text((staging / "model.yaml").read_text().replace("version: '2'", "version: '3'"))
    onnx = staging / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[: onnx.stat().st_size // 2])
    staging.rename(target)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and metric(guarded, "imgclf_model_loads_total", model=MODEL, outcome="refused") < 2:
        time.sleep(0.5)
    assert metric(guarded, "imgclf_model_loads_total", model=MODEL, outcome="refused") == 2  # Once per worker, not once per poll.
    log = guarded.log.read_text()
    assert f"refused {MODEL} version 3 cannot be served: model.onnx does not match the checksum" in log
    with clients(guarded)[0] as client:
        assert sorted(client.model(MODEL).versions) == [1, 2]
        assert client.classify(SLOW[2]).version == 2
    reload = httpx.post(f"{guarded.https}/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, verify=guarded.cert, timeout=30)
    assert reload.status_code == 200 and reload.json() == {"changes": [], "models": {MODEL: [1, 2]}}  # Not tried again.
    time.sleep(2)
    assert metric(guarded, "imgclf_model_loads_total", model=MODEL, outcome="refused") == 2


# -- crashes and shutdown -----------------------------------------------------------------------


def workers(server) -> list[psutil.Process]:
    """The live API worker processes of the server."""
    found = []
    for child in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "_bentoml_impl.worker.service" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_a_killed_worker_is_replaced_and_only_its_requests_fail_retryably(guarded):
    before = workers(guarded)
    assert len(before) == 2
    started = _started(guarded.log)
    with Stream(guarded) as bare, Stream(guarded, retries=RetryPolicy(attempts=8, backoff=0.2, max_backoff=2)) as retrying:
        time.sleep(1.5)
        before[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        ready = None  # The service (its other worker) answers new calls on both protocols, without retries.
        while time.monotonic() - killed < 30 and (ready is None or _started(guarded.log) == started):
            if ready is None:
                try:
                    for client in clients(guarded):
                        with client:
                            client.classify(SLOW[3])
                    ready = time.monotonic() - killed
                except (APIConnectionError, UnavailableError):
                    pass
            time.sleep(0.2)
        replaced = time.monotonic() - killed
        time.sleep(1.5)
    after = workers(guarded)
    assert ready is not None and ready < 10, f"the service did not answer within 10 s of the kill ({ready})"
    assert len(after) == 2 and before[0].pid not in {w.pid for w in after}, (replaced, guarded.output())
    assert replaced < 30, f"the replacement worker took {replaced:.1f} s to start"
    assert retrying.errors() == [] and len(retrying.outcomes) > 10
    assert all(isinstance(error, (APIConnectionError, UnavailableError)) for error in bare.errors()), bare.errors()
    assert sum(kind == "ok" for kind, _ in bare.outcomes) > 10
    with clients(guarded)[1] as client:
        assert client.health().ready


def test_sigterm_finishes_every_accepted_request_and_exits_0(guarded):
    # One long call (40 nine-megapixel PNGs: about 2 s of decoding) surely accepted before the
    # signal, besides two streams of calls that run into it at whatever point they happen to be.
    long: dict = {}
    side = 3000
    y, x = np.mgrid[0:side, 0:side]
    buffer = io.BytesIO()
    Image.fromarray(np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], axis=2).astype(np.uint8)).save(buffer, "PNG")
    huge = [buffer.getvalue()] * 40

    def send_long():
        start = time.monotonic()
        try:
            with clients(guarded)[1] as client:
                long["outcome"] = ("ok", client.classify(huge))
        except Exception as error:  # noqa: BLE001 - recorded for the test to judge
            long["outcome"] = ("error", error)
        long["span"] = (start, time.monotonic())

    with Stream(guarded, images=SLOW) as stream, Stream(guarded, images=SLOW[:6]) as other:
        time.sleep(1.5)
        sender = threading.Thread(target=send_long)
        sender.start()
        time.sleep(0.5)
        guarded.process.send_signal(signal.SIGTERM)  # To `bentoml serve` alone, as `kill PID` or a container stop does.
        signalled = time.monotonic()
        code = guarded.process.wait(timeout=40)
        sender.join(30)
    assert code == 0, guarded.output()
    # The call in flight when the signal came was answered, and answered right.
    assert long["span"][0] < signalled < long["span"][1], (long, signalled)
    assert long["outcome"][0] == "ok" and len(long["outcome"][1]) == len(huge), long["outcome"]
    for run in (stream, other):
        assert sum(kind == "ok" for kind, _ in run.outcomes) >= 2
        for error in run.errors():
            # Refused before it was accepted (shutting down, connection refused): never a failure of accepted work.
            assert isinstance(error, (APIConnectionError, UnavailableError)) and not isinstance(error, OverloadedError), error
            # (CANCELLED: a call the stopping server reset before taking it; the SDK reads it as unavailable.)
            refused = ("shutting down", "UNAVAILABLE", "CANCELLED")
            assert isinstance(error, APIConnectionError) or any(words in str(error) for words in refused), error
    assert "Traceback" not in guarded.log.read_text()
