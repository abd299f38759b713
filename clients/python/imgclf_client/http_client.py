"""The HTTP clients: `HttpClient` (sync) and `AsyncHttpClient` (asyncio), the same methods."""

from __future__ import annotations

import base64

import httpx
import numpy as np

from imgclf_client import errors, inputs
from imgclf_client.lifecycle import AsyncClosing, Closing
from imgclf_client.results import Classification, ClassifyResult, ExplainResult, FeedbackResult, Health, ModelInfo, PredictResult
from imgclf_client.retry import RetryPolicy, policy

DEFAULT_URL = "http://localhost:3000"
PREPROCESSING = ("decode", "resize", "normalization")


def _options(url: str, timeout: float, headers: dict | None, token: str | None, ca_file: str | None, verify: bool) -> dict:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    return {"base_url": url.rstrip("/"), "timeout": timeout, "headers": all_headers, "verify": ca_file if ca_file else verify}


def _model_fields(model, version) -> dict:
    return {**({"model": model} if model else {}), **({"version": int(version)} if version else {})}


def _classify_body(images, model, version, top_k) -> dict:
    return {
        "images": [base64.b64encode(blob).decode("ascii") for blob in inputs.encode_all(images)],
        "top_k": inputs.check_top_k(top_k),
        **_model_fields(model, version),
    }


def _explain_body(image, model, version, class_index) -> dict:
    class_index = inputs.check_class_index(class_index)
    return {
        "image": base64.b64encode(inputs.one_image(image)).decode("ascii"),
        **({"class_index": class_index} if class_index is not None else {}),
        **_model_fields(model, version),
    }


def _explained(answer: dict) -> ExplainResult:
    return ExplainResult(
        answer["model"],
        int(answer["version"]),
        Classification(int(answer["class_index"]), answer["label"], answer["name"], float(answer["score"])),
        np.asarray(answer["heatmap"], np.float32),
        bool(answer["informative"]),
        dict(answer["method"]),
    )


def _predict_body(pixels, model, version) -> dict:
    return {"pixels": [array.tolist() for array in inputs.pixel_list(pixels)], **_model_fields(model, version)}


def _answer(response: httpx.Response) -> dict:
    if response.status_code >= 400:
        try:
            message = response.json().get("error") or response.text
        except (ValueError, AttributeError):
            message = response.text.strip() or response.reason_phrase
        raise errors.for_http_status(response.status_code, f"HTTP {response.status_code}: {message}", response.headers.get("retry-after"))
    try:
        return response.json()
    except ValueError:
        raise errors.ServerError(f"the server answered {response.status_code} with a body that is not JSON", response.status_code) from None


def _transport_error(error: httpx.HTTPError, url: str) -> errors.ImgclfError:
    if isinstance(error, httpx.TimeoutException):
        return errors.APITimeoutError(f"no answer from {url} in time: {type(error).__name__}")
    return errors.APIConnectionError(f"cannot reach {url}: {error}")


def _classified(answer: dict) -> ClassifyResult:
    return ClassifyResult(
        answer["model"],
        int(answer["version"]),
        [[Classification(int(c["class_index"]), c["label"], c["name"], float(c["score"])) for c in image] for image in answer["predictions"]],
        answer.get("request_id"),
    )


def _feedback_body(image, label, model, version, request_id, index) -> dict:
    blob = inputs.feedback_image(image, request_id)
    body = {"label": inputs.check_label(label), **_model_fields(model, version)}
    if blob is not None:
        body["image"] = base64.b64encode(blob).decode("ascii")
    else:
        body.update(request_id=str(request_id), index=int(index))
    return body


def _fed_back(answer: dict) -> FeedbackResult:
    return FeedbackResult(
        answer["model"],
        int(answer["version"]),
        answer["label"],
        answer["predicted"],
        float(answer["score"]),
        answer["stored"],
        answer["sha256"],
        bool(answer["duplicate"]),
    )


def _predicted(answer: dict) -> PredictResult:
    return PredictResult(answer["model"], int(answer["version"]), np.asarray(answer["probabilities"], np.float32))


def model_info(entry: dict, default: str | None = None) -> ModelInfo:
    preprocessing = entry.get("preprocessing") or {}
    return ModelInfo(
        name=entry["name"],
        version=int(entry.get("version") or max(entry["versions"])),
        versions=[int(v) for v in entry["versions"]],
        input_size=tuple(entry["input_size"]),
        num_classes=int(entry["num_classes"]),
        labels=list(entry.get("labels") or []),
        names=list(entry.get("names") or []),
        task=str((entry.get("task") or {}).get("name", "")),
        dataset=str((entry.get("dataset") or {}).get("source", "")),
        runtime=entry.get("runtime", ""),
        preprocessing={k: str(preprocessing[k]) for k in PREPROCESSING if preprocessing.get(k)},
        metrics={k: float(v) for k, v in (entry.get("metrics") or {}).items() if isinstance(v, (int, float))},
        default=bool(entry.get("default")) or entry["name"] == default,
    )


class _Connection:
    """The connection settings both HTTP clients take; ``_transport`` is httpx's client class."""

    _transport: type = httpx.Client

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        retries: int | RetryPolicy = 3,
        headers: dict | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        verify: bool = True,
    ):
        self.url, self.retry = url, policy(retries)
        self._http = self._transport(**_options(url, timeout, headers, token, ca_file, verify))


class HttpClient(_Connection, Closing):
    """Calls the service over HTTP.

    >>> with HttpClient("http://localhost:3000") as client:          # doctest: +SKIP
    ...     result = client.classify("cat.jpg", top_k=3)
    """

    def _call(self, method: str, path: str, **kwargs) -> dict:
        def once():
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                raise _transport_error(error, self.url) from None
            return _answer(response)

        return self.retry.call(once)

    def classify(self, images, model: str | None = None, version: int | None = None, top_k: int = 5) -> ClassifyResult:
        return _classified(self._call("POST", "/classify", json=_classify_body(images, model, version, top_k)))

    def predict(self, pixels, model: str | None = None, version: int | None = None) -> PredictResult:
        return _predicted(self._call("POST", "/predict", json=_predict_body(pixels, model, version)))

    def explain(self, image, model: str | None = None, class_index: int | None = None, version: int | None = None) -> ExplainResult:
        """The heatmap of what ``class_index`` (default: the top class) depends on in ``image``."""
        return _explained(self._call("POST", "/explain", json=_explain_body(image, model, version, class_index)))

    def feedback(
        self, image=None, label: str = "", model: str | None = None, version: int | None = None, request_id: str | None = None, index: int = 0
    ) -> FeedbackResult:
        """Sends ``image`` (or names a recent classify call's ``request_id`` and the image's ``index``
        in it) with its correct ``label``, a class id of the model; the server stores it for retraining."""
        return _fed_back(self._call("POST", "/feedback", json=_feedback_body(image, label, model, version, request_id, index)))

    def models(self) -> list[ModelInfo]:
        answer = self._call("GET", "/models")
        return [model_info(entry, answer.get("default")) for entry in answer["models"]]

    def model(self, name: str, version: int | None = None) -> ModelInfo:
        return model_info(self._call("GET", f"/models/{name}", params={"version": version} if version else None))

    def health(self) -> Health:
        def probe(path):
            try:
                return self._http.get(path).status_code == 200
            except httpx.HTTPError:
                return False

        return Health(live=probe("/livez"), ready=probe("/readyz"))

    def close(self) -> None:
        self._http.close()


class AsyncHttpClient(_Connection, AsyncClosing):
    """`HttpClient` for asyncio: the same methods, awaited.

    >>> async with AsyncHttpClient("http://localhost:3000") as client:   # doctest: +SKIP
    ...     result = await client.classify(["a.jpg", "b.png"])
    """

    _transport = httpx.AsyncClient

    async def _call(self, method: str, path: str, **kwargs) -> dict:
        async def once():
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                raise _transport_error(error, self.url) from None
            return _answer(response)

        return await self.retry.call_async(once)

    async def classify(self, images, model: str | None = None, version: int | None = None, top_k: int = 5) -> ClassifyResult:
        return _classified(await self._call("POST", "/classify", json=_classify_body(images, model, version, top_k)))

    async def predict(self, pixels, model: str | None = None, version: int | None = None) -> PredictResult:
        return _predicted(await self._call("POST", "/predict", json=_predict_body(pixels, model, version)))

    async def explain(self, image, model: str | None = None, class_index: int | None = None, version: int | None = None) -> ExplainResult:
        return _explained(await self._call("POST", "/explain", json=_explain_body(image, model, version, class_index)))

    async def feedback(
        self, image=None, label: str = "", model: str | None = None, version: int | None = None, request_id: str | None = None, index: int = 0
    ) -> FeedbackResult:
        return _fed_back(await self._call("POST", "/feedback", json=_feedback_body(image, label, model, version, request_id, index)))

    async def models(self) -> list[ModelInfo]:
        answer = await self._call("GET", "/models")
        return [model_info(entry, answer.get("default")) for entry in answer["models"]]

    async def model(self, name: str, version: int | None = None) -> ModelInfo:
        return model_info(await self._call("GET", f"/models/{name}", params={"version": version} if version else None))

    async def health(self) -> Health:
        async def probe(path):
            try:
                return (await self._http.get(path)).status_code == 200
            except httpx.HTTPError:
                return False

        return Health(live=await probe("/livez"), ready=await probe("/readyz"))

    async def close(self) -> None:
        await self._http.aclose()
