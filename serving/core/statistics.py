"""Per model version inference statistics, the Open Inference Protocol's statistics extension
(Triton's ``GET /v2/models/{name}/stats`` and ``ModelStatistics``), kept as Prometheus counters so
that every API worker adds to the same totals (BentoML runs prometheus_client in multiprocess
mode) and the answer covers the whole server, whichever worker gives it.

    imgclf_inference_total{model, version, outcome}                 requests: success, fail
    imgclf_inference_seconds_total{model, version, phase}           success, fail, queue, compute_input, compute_infer, compute_output
    imgclf_inference_images_total{model, version}                   images (or arrays) inferred
    imgclf_model_executions_total{model, version}                   model runs (a batch is one)
    imgclf_last_inference_timestamp_seconds{model, version}         when the version last answered
"""

from __future__ import annotations

import dataclasses
import os
import time

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

PHASES = ("queue", "compute_input", "compute_infer", "compute_output")
OUTCOMES = ("success", "fail")

REQUESTS = Counter("imgclf_inference", "Inference requests by model version and outcome", ["model", "version", "outcome"])
SECONDS = Counter("imgclf_inference_seconds", "Seconds spent per model version, by outcome and phase", ["model", "version", "phase"])
IMAGES = Counter("imgclf_inference_images", "Images and arrays inferred per model version", ["model", "version"])
EXECUTIONS = Counter("imgclf_model_executions", "Model runs per model version (a batch is one)", ["model", "version"])
LAST = Gauge("imgclf_last_inference_timestamp_seconds", "When the model version last answered", ["model", "version"], multiprocess_mode="livemax")


@dataclasses.dataclass
class Timing:
    """One request's time in each phase (seconds), filled in as it goes."""

    queue: float = 0.0
    compute_input: float = 0.0
    compute_infer: float = 0.0
    compute_output: float = 0.0


def record(name: str, version: int, ok: bool, seconds: float, images: int, timing: Timing) -> None:
    labels = (name, str(version))
    outcome = "success" if ok else "fail"
    REQUESTS.labels(*labels, outcome).inc()
    SECONDS.labels(*labels, outcome).inc(seconds)
    if ok:
        IMAGES.labels(*labels).inc(images)
        for phase in PHASES:
            SECONDS.labels(*labels, phase).inc(getattr(timing, phase))
        LAST.labels(*labels).set(time.time())


def executed(name: str, version: int) -> None:
    EXECUTIONS.labels(name, str(version)).inc()


def _samples() -> dict[str, dict[tuple, float]]:
    """Every sample of the metrics above, summed over the server's workers."""
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    wanted = {"imgclf_inference_total", "imgclf_inference_seconds_total", "imgclf_inference_images_total", "imgclf_model_executions_total"}
    wanted.add("imgclf_last_inference_timestamp_seconds")
    found: dict[str, dict[tuple, float]] = {name: {} for name in wanted}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in wanted:
                key = tuple(sorted(sample.labels.items()))
                found[sample.name][key] = found[sample.name].get(key, 0.0) + sample.value
    return found


def model_statistics(versions: list[tuple[str, int]]) -> list[dict]:
    """The statistics extension's ``model_stats`` for each (name, version), in its JSON form."""
    samples = _samples()

    def value(metric: str, name: str, version: int, **extra) -> float:
        key = tuple(sorted({"model": name, "version": str(version), **extra}.items()))
        return samples[metric].get(key, 0.0)

    def duration(count: float, seconds: float) -> dict:
        return {"count": int(count), "ns": int(round(seconds * 1e9))}

    stats = []
    for name, version in versions:
        successes = value("imgclf_inference_total", name, version, outcome="success")
        inference = {
            outcome: duration(
                value("imgclf_inference_total", name, version, outcome=outcome), value("imgclf_inference_seconds_total", name, version, phase=outcome)
            )
            for outcome in OUTCOMES
        }
        inference.update({phase: duration(successes, value("imgclf_inference_seconds_total", name, version, phase=phase)) for phase in PHASES})
        inference.update({"cache_hit": duration(0, 0), "cache_miss": duration(0, 0)})
        stats.append(
            {
                "name": name,
                "version": str(version),
                "last_inference": int(value("imgclf_last_inference_timestamp_seconds", name, version) * 1000),
                "inference_count": int(value("imgclf_inference_images_total", name, version)),
                "execution_count": int(value("imgclf_model_executions_total", name, version)),
                "inference_stats": inference,
                "batch_stats": [],
            }
        )
    return stats
