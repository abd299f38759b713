"""The OpenAPI 3.1 document: it validates, it lists exactly the app's routes (so neither can drift),
the service serves it and its page, and schemathesis, driven by it against the live server, finds
no 5xx and no response outside the documented statuses and schemas. The page in a browser:
tests/clients/test_page.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest
from starlette.routing import Match

from serving.http import openapi
from serving.http.app import app

# BentoML's own routes, which sit beside the app (not in it) and which the document describes too.
BENTOML_PATHS = {"/healthz", "/livez", "/readyz", "/metrics"}
EXAMPLES = {"name": "tiny", "version": "1", "file": "swagger-ui.css"}


def documented() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, operations in openapi.document()["paths"].items() for method in operations}


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation import OpenAPIV31SpecValidator

    validate(openapi.document(), cls=OpenAPIV31SpecValidator)
    assert openapi.document()["openapi"] == "3.1.0"


def test_every_documented_operation_is_a_route_of_the_app():
    for path, method in documented():
        if path in BENTOML_PATHS:
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: EXAMPLES[m[1]], path)
        scope = {"type": "http", "path": concrete, "method": method, "root_path": ""}
        matches = [route.matches(scope)[0] for route in app.routes]
        assert Match.FULL in matches, f"{method} {path} is documented but no route answers it"


def test_every_route_of_the_app_is_documented():
    paths = {path for path, _ in documented()}
    for route in app.routes:
        for method in route.methods - {"HEAD"}:
            if route.path == "/ui/":
                continue  # A redirect to /ui.
            if "{rest:" in route.path:  # TensorFlow Serving's REST API, one route for its six paths.
                prefix = route.path.split("{rest:")[0]
                tf_paths = [p for p, m in documented() if p.startswith(prefix) and m == method]
                assert len(tf_paths) >= 2, f"{method} {route.path} is not documented"
                continue
            assert route.path in paths and (route.path, method) in documented(), f"{method} {route.path} is not documented"


def test_the_document_and_its_page_are_served_without_a_token(make_state):
    from starlette.testclient import TestClient

    make_state(tokens=("a-token-for-this-test-0123",))
    with TestClient(app) as client:
        served = client.get("/openapi.json").json()
        assert served == openapi.document(("tiny",))
        (name,) = [p for p in served["paths"]["/v2/models/{name}/infer"]["post"]["parameters"] if p["name"] == "name"]
        assert name["example"] == "tiny" and name["schema"]["examples"] == ["tiny"]  # The served models, for "Try it out".
        page = client.get("/docs")
        assert page.status_code == 200 and "SwaggerUIBundle" in page.text
        for asset in openapi.ASSETS:
            served = client.get(f"/docs/assets/{asset}")
            assert served.status_code == 200 and len(served.content) > 10_000, asset
        missing = client.get("/docs/assets/../../settings.py")
        assert missing.status_code == 404
        assert client.get("/models").status_code == 401  # The document is open; the API is not.


@pytest.mark.slow
def test_schemathesis_finds_nothing_against_the_live_server(server, tmp_path):
    """Every operation with generated requests (bounded examples each): no 5xx, every status and
    body as documented; the server healthy afterwards."""
    report = tmp_path / "junit.xml"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{server.http}/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        "--max-examples",
        os.environ.get("IMGCLF_SCHEMATHESIS_EXAMPLES", "25"),
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--seed",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
    ]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=600)
    print(ran.stdout[-3000:])  # The summary (pytest -s or -rP shows it).
    assert ran.returncode == 0, ran.stdout[-8000:] + ran.stderr[-2000:]
    assert httpx.get(f"{server.http}/v2/health/ready", timeout=10).status_code == 200
    assert httpx.get(f"{server.http}/models", timeout=10).status_code == 200
