"""The service's settings and metrics labels: bad values are refused with the variable's name."""

from __future__ import annotations

import asyncio

import pytest

from serving import metrics
from serving.errors import InvalidInput
from serving.settings import Settings


def test_defaults_and_overrides(monkeypatch):
    for name in ("IMGCLF_ONNX_THREADS", "IMGCLF_ACCESS_LOG", "IMGCLF_TRACING", "IMGCLF_BATCHING"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.onnx_threads, settings.access_log, settings.tracing, settings.batching) == (1, False, False, True)
    monkeypatch.setenv("IMGCLF_ONNX_THREADS", "0")
    monkeypatch.setenv("IMGCLF_ACCESS_LOG", "yes")
    monkeypatch.setenv("IMGCLF_BATCHING", "false")
    settings = Settings.from_env()
    assert (settings.onnx_threads, settings.access_log, settings.batching) == (0, True, False)


@pytest.mark.parametrize("name, value, message", [
    ("IMGCLF_ACCESS_LOG", "maybe", "IMGCLF_ACCESS_LOG must be 1/0"),
    ("IMGCLF_BATCHING", "2", "IMGCLF_BATCHING must be 1/0"),
    ("IMGCLF_ONNX_THREADS", "-1", "IMGCLF_ONNX_THREADS must be at least 0"),
    ("IMGCLF_ONNX_THREADS", "two", "IMGCLF_ONNX_THREADS must be an integer"),
])
def test_bad_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_a_cancelled_request_is_counted_as_cancelled_not_as_a_failure():
    assert metrics.outcome(asyncio.CancelledError()) == "cancelled"
    assert metrics.outcome(InvalidInput("bad")) == "invalid_argument"
    assert metrics.outcome(RuntimeError("boom")) == "internal"
