"""The client tests run against the session's real server (tests/serving/conftest.py)."""

from tests.serving.conftest import server  # noqa: F401 - the shared session fixture
