"""The SDK's public names and its error family: no name shadows a built-in, and the names that did
(`ConnectionError`, `TimeoutError`) still import, with a warning, for one release."""

from __future__ import annotations

import builtins
import warnings

import pytest

import imgclf_client
from imgclf_client import errors


def test_all_is_the_public_surface_and_shadows_no_builtin():
    public = {name for name in vars(imgclf_client) if not name.startswith("_")} - {
        "errors",
        "grpc_client",
        "http_client",
        "results",
        "retry",
        "inputs",
        "lifecycle",
        "overlay",
        "cli",
    }
    assert set(imgclf_client.__all__) == public
    assert not set(imgclf_client.__all__) & set(dir(builtins))
    namespace: dict = {}
    exec("from imgclf_client import *", namespace)
    assert namespace.get("ConnectionError") is None and namespace.get("TimeoutError") is None


@pytest.mark.parametrize("module", [imgclf_client, errors])
@pytest.mark.parametrize("old,new", [("ConnectionError", "APIConnectionError"), ("TimeoutError", "APITimeoutError")])
def test_the_old_names_still_work_with_a_deprecation_warning(module, old, new):
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated .* use {new}"):
        alias = getattr(module, old)
    assert alias is getattr(errors, new)
    # Code that caught the old name still catches what the clients raise, and so does the built-in.
    with pytest.raises(alias), warnings.catch_warnings():
        raise errors.for_grpc_code("DEADLINE_EXCEEDED", "late") if new == "APITimeoutError" else errors.APIConnectionError("down")
    assert issubclass(alias, getattr(builtins, old)) and issubclass(alias, errors.ImgclfError)


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        imgclf_client.Nope  # noqa: B018
