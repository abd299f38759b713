"""The service's settings and metrics labels: bad values are refused with the variable's name."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from serving.core import metrics
from serving.core.errors import InvalidInput
from serving.core.settings import Settings


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


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("IMGCLF_ACCESS_LOG", "maybe", "IMGCLF_ACCESS_LOG must be 1/0"),
        ("IMGCLF_BATCHING", "2", "IMGCLF_BATCHING must be 1/0"),
        ("IMGCLF_ONNX_THREADS", "-1", "IMGCLF_ONNX_THREADS must be at least 0"),
        ("IMGCLF_ONNX_THREADS", "two", "IMGCLF_ONNX_THREADS must be an integer"),
        ("IMGCLF_QUEUE_SIZE", "0", "IMGCLF_QUEUE_SIZE must be at least 1"),
        ("IMGCLF_REQUEST_TIMEOUT_S", "soon", "IMGCLF_REQUEST_TIMEOUT_S must be a number"),
        ("IMGCLF_REQUEST_TIMEOUT_S", "inf", "IMGCLF_REQUEST_TIMEOUT_S must be a finite number"),
        ("IMGCLF_POLL_SECONDS", "-1", "IMGCLF_POLL_SECONDS must be a finite number of at least 0"),
        ("IMGCLF_KEEP_VERSIONS", "0", "IMGCLF_KEEP_VERSIONS must be at least 1"),
        ("IMGCLF_TOKENS", "short", "API tokens must be at least 16 printable characters"),
        ("IMGCLF_TOKEN_FILE", "/nonexistent/tokens", "IMGCLF_TOKEN_FILE '/nonexistent/tokens' cannot be read"),
        ("IMGCLF_TLS_CERT_FILE", "/etc/hostname", "set both IMGCLF_TLS_CERT_FILE and IMGCLF_TLS_KEY_FILE"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_a_cancelled_request_is_counted_as_cancelled_not_as_a_failure():
    assert metrics.outcome(asyncio.CancelledError()) == "cancelled"
    assert metrics.outcome(InvalidInput("bad")) == "invalid_argument"
    assert metrics.outcome(RuntimeError("boom")) == "internal"


def test_tokens_come_from_the_variable_and_the_file(monkeypatch, tmp_path):
    (tmp_path / "tokens").write_text("# one per line\nfile-token-0123456789abc\n\n")
    monkeypatch.setenv("IMGCLF_TOKENS", "env-token-0123456789abcd")
    monkeypatch.setenv("IMGCLF_TOKEN_FILE", str(tmp_path / "tokens"))
    settings = Settings.from_env()
    assert settings.tokens == ("env-token-0123456789abcd", "file-token-0123456789abc") and settings.auth_required
    assert "file-token" not in repr(settings)  # Never printed.
    (tmp_path / "empty").write_text("# nothing\n")
    monkeypatch.delenv("IMGCLF_TOKENS")
    monkeypatch.setenv("IMGCLF_TOKEN_FILE", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="holds no token"):
        Settings.from_env()


def test_the_token_check_takes_only_a_bearer_token_it_knows():
    from serving.core.errors import Unauthenticated
    from serving.core.guards import check_token

    settings = Settings(tokens=("right-token-0123456789",))
    check_token(settings, "Bearer right-token-0123456789")
    check_token(settings, "bearer right-token-0123456789")
    check_token(Settings(), None)  # No tokens configured: open.
    for header, message in (
        (None, "needs an API token"),
        ("Bearer", "must be 'Bearer TOKEN'"),
        ("Basic right-token-0123456789", "must be 'Bearer TOKEN'"),
        ("Bearer right-token-012345678", "not valid"),
        ("Bearer right-token-0123456789x", "not valid"),
    ):
        with pytest.raises(Unauthenticated, match=message):
            check_token(settings, header)


def _variables_read_by_the_code() -> set[str]:
    """Every IMGCLF_* name that settings.py's code (not its docstring) reads."""
    import ast

    import serving.core.settings as module

    tree = ast.parse(Path(module.__file__).read_text())
    docstring = ast.get_docstring(tree, clean=False)
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"IMGCLF_[A-Z0-9_]+", node.value)
        and node.value != docstring
    }


def _table_rows(text: str) -> dict[str, str]:
    rows = [line.split("|")[1:3] for line in text.splitlines() if line.startswith("| IMGCLF_")]
    return {name.strip(): default.strip() for name, default in rows}


def test_the_settings_table_lists_every_variable_with_its_default():
    from serving.core import settings as module

    rows = _table_rows(module.table())
    assert set(rows) == _variables_read_by_the_code()
    defaults = Settings()
    for name, default in rows.items():
        field = name.removeprefix("IMGCLF_").lower()
        value = getattr(defaults, field)
        if default.replace(".", "", 1).isdigit():  # Numbers and 0/1 flags must be the dataclass's default.
            assert float(default) == float(value), (name, default, value)


def test_the_settings_page_holds_the_settings_table_of_settings_py():
    from serving.core.settings import table
    from tests.conftest import ROOT

    page = (ROOT / "docs" / "settings.md").read_text()
    start, end = "<!-- settings table: serving.core.settings.table() -->\n", "\n<!-- end of settings table -->"
    assert start in page and end in page, "docs/settings.md lost its settings-table markers"
    copy = page.split(start, 1)[1].split(end, 1)[0]
    assert copy == table(), "docs/settings.md's table differs from serving/core/settings.py: paste serving.core.settings.table() between the markers"


def test_tls_files_that_cannot_serve_are_named(monkeypatch, tmp_path):
    (tmp_path / "notes.txt").write_text("not a certificate")
    (tmp_path / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n")
    for cert, key, message in (
        (tmp_path, tmp_path / "cert.pem", "IMGCLF_TLS_CERT_FILE .* is not a file"),
        (tmp_path / "cert.pem", tmp_path / "missing.pem", "IMGCLF_TLS_KEY_FILE .* is not a file"),
        (tmp_path / "notes.txt", tmp_path / "cert.pem", "IMGCLF_TLS_CERT_FILE .* holds no PEM certificate"),
        (tmp_path / "cert.pem", tmp_path / "cert.pem", "IMGCLF_TLS_KEY_FILE .* holds no PEM private key"),
    ):
        monkeypatch.setenv("IMGCLF_TLS_CERT_FILE", str(cert))
        monkeypatch.setenv("IMGCLF_TLS_KEY_FILE", str(key))
        with pytest.raises(ValueError, match=message):
            Settings.from_env()


def test_the_tensorflow_runtime_without_tensorflow_names_the_extra(monkeypatch):
    import importlib.util

    monkeypatch.setenv("IMGCLF_TENSORFLOW_MODELS", "digits-cnn")
    assert Settings.from_env().tensorflow_models == ("digits-cnn",)  # TensorFlow is installed here.
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "tensorflow" else real(name, *args))
    with pytest.raises(ValueError, match=r"IMGCLF_TENSORFLOW_MODELS names digits-cnn, but TensorFlow is not installed.*serve-tf"):
        Settings.from_env()


def test_the_configured_models_are_read_by_a_plain_static_method():
    # @classmethod stacked on @staticmethod worked on Python 3.9-3.12 only.
    import inspect

    from serving.core.errors import ModelNotFound
    from serving.core.repository import ModelRepository

    assert isinstance(inspect.getattr_static(ModelRepository, "configured"), staticmethod)
    available = {"a": {1: "a/1", 2: "a/2"}, "b": {1: "b/1"}}
    assert ModelRepository.configured(Settings(models=("a:2", "b")), available) == ({"a": {2}}, ["b"])
    with pytest.raises(ModelNotFound, match="model a has no version 3"):
        ModelRepository.configured(Settings(models=("a:3",)), available)
