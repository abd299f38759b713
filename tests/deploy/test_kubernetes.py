"""The Kubernetes manifests validate against a pinned Kubernetes version, and agree with the code:
ports, probes, grace periods and variables come from serving/core/settings.py and the service's routes,
and the training Job's cluster from training/cluster.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from serving.core.settings import Settings, table
from tests.conftest import ROOT
from training.cluster import VARIABLES as CLUSTER_VARIABLES
from training.cluster import tf_config_from_indexed_job

KUBERNETES_VERSION = "1.34.0"
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
SETTINGS_VARIABLES = set(re.findall(r"^\| (IMGCLF_\w+) ", table(), flags=re.M))
PROBE_PATHS = {"/livez", "/readyz"}  # BentoML's own health routes, open without a token.


def documents(path: Path) -> list[dict]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def by_kind(kind: str) -> list[tuple[Path, dict]]:
    return [(path, document) for path in MANIFESTS for document in documents(path) if document["kind"] == kind]


def server_deployments() -> list[tuple[Path, dict]]:
    return [(path, d) for path, d in by_kind("Deployment") if d["metadata"]["name"] == "imgclf"]


def env_of(container: dict) -> dict[str, str | None]:
    return {entry["name"]: entry.get("value") for entry in container.get("env", [])}


@pytest.mark.parametrize("path", MANIFESTS, ids=[path.name for path in MANIFESTS])
def test_every_manifest_validates_strictly(path):
    for document in documents(path):
        assert kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_refused():
    # The validator must be able to fail: a misspelt field is refused.
    _, deployment = server_deployments()[0]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="livenesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path,deployment", server_deployments(), ids=[path.name for path, _ in server_deployments()])
def test_the_server_deployment_agrees_with_the_settings(path, deployment):
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = env_of(container)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": 3000, "grpc": int(env["IMGCLF_GRPC_PORT"])}
    assert int(env["IMGCLF_GRPC_PORT"]) == Settings().grpc_port
    # Workers follow the CPU limit.
    workers = next(entry for entry in container["env"] if entry["name"] == "IMGCLF_WORKERS")
    assert workers["valueFrom"]["resourceFieldRef"]["resource"] == "limits.cpu"
    # Every IMGCLF_ variable is one the service reads.
    assert set(name for name in env if name.startswith("IMGCLF_")) <= SETTINGS_VARIABLES
    # Probes: liveness on /livez, readiness on /readyz, on the HTTP port (or gRPC health on the gRPC port).
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container[kind]
        if "grpc" in probe:
            assert probe["grpc"]["port"] == ports["grpc"]
        else:
            assert probe["httpGet"]["path"] in PROBE_PATHS and probe["httpGet"]["port"] == "http"
            tls = "IMGCLF_TLS_CERT_FILE" in env
            assert probe["httpGet"].get("scheme", "HTTP") == ("HTTPS" if tls else "HTTP"), (kind, tls)
    # SIGTERM: the pod is given the preStop wait, the drain grace and a margin to exit.
    grace = float(env.get("IMGCLF_SHUTDOWN_GRACE_S") or Settings().shutdown_grace_s)
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert spec["terminationGracePeriodSeconds"] >= pre_stop + grace + 1
    # Secrets mounted where the variables point.
    mounts = {mount["name"]: mount["mountPath"] for mount in container.get("volumeMounts", [])}
    secrets = {volume["name"]: volume["secret"]["secretName"] for volume in spec["volumes"] if "secret" in volume}
    for variable in ("IMGCLF_TOKEN_FILE", "IMGCLF_TLS_CERT_FILE", "IMGCLF_TLS_KEY_FILE"):
        if variable in env:
            volume = next(name for name, where in mounts.items() if env[variable].startswith(where + "/"))
            assert volume in secrets, (variable, volume)
    assert container["resources"]["limits"]["cpu"] == container["resources"]["requests"]["cpu"]
    # The feedback folder is a volume every replica shares (ReadWriteMany), not the pod's own disk.
    if "IMGCLF_FEEDBACK_ROOT" in env:
        volume = next(name for name, where in mounts.items() if env["IMGCLF_FEEDBACK_ROOT"] == where)
        claim = next(v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if v["name"] == volume)
        claims = [doc for doc in yaml.safe_load_all((path.parent / "feedback-volume.yaml").read_text()) if doc["kind"] == "PersistentVolumeClaim"]
        assert [c["spec"]["accessModes"] for c in claims if c["metadata"]["name"] == claim] == [["ReadWriteMany"]]


def test_service_autoscaler_and_budget_point_at_the_server():
    (service,) = [d for _, d in by_kind("Service") if d["metadata"]["name"] == "imgclf"]
    _, deployment = server_deployments()[0]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {port["name"] for port in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} == ports
    assert {port["name"]: port["appProtocol"] for port in service["spec"]["ports"]} == {"http": "https", "grpc": "grpc"}
    ((_, autoscaler),) = by_kind("HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "imgclf"}
    ((_, budget),) = by_kind("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < autoscaler["spec"]["minReplicas"]


def test_the_training_job_names_its_workers_as_the_headless_service_does():
    ((_, job),) = by_kind("Job")
    (service,) = [d for _, d in by_kind("Service") if d["metadata"]["name"] == "imgclf-train"]
    spec = job["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = env_of(container)
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == int(env["IMGCLF_TRAIN_WORKERS"])
    assert service["spec"]["clusterIP"] == "None" and spec["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    assert service["spec"]["selector"] == {"job-name": job["metadata"]["name"]} and env["IMGCLF_TRAIN_JOB"] == job["metadata"]["name"]
    assert service["spec"]["ports"][0]["port"] == int(env["IMGCLF_TRAIN_PORT"]) == container["ports"][0]["containerPort"]
    assert container["command"][:4] == ["python", "-m", "training", "train"] and "multi-worker" in container["command"]
    assert set(CLUSTER_VARIABLES) <= set(env)
    config = json.loads(tf_config_from_indexed_job({**env, "JOB_COMPLETION_INDEX": "1"}))
    assert config == {
        "cluster": {"worker": ["imgclf-train-0.imgclf-train:12345", "imgclf-train-1.imgclf-train:12345"]},
        "task": {"type": "worker", "index": 1},
    }


def test_tf_config_is_only_built_in_an_indexed_job_and_names_what_is_missing():
    assert tf_config_from_indexed_job({}) is None
    with pytest.raises(ValueError, match="needs IMGCLF_TRAIN_SERVICE, IMGCLF_TRAIN_WORKERS"):
        tf_config_from_indexed_job({"JOB_COMPLETION_INDEX": "0", "IMGCLF_TRAIN_JOB": "j"})
    with pytest.raises(ValueError, match="JOB_COMPLETION_INDEX 2 is not below IMGCLF_TRAIN_WORKERS 2"):
        tf_config_from_indexed_job({"JOB_COMPLETION_INDEX": "2", "IMGCLF_TRAIN_JOB": "j", "IMGCLF_TRAIN_SERVICE": "s", "IMGCLF_TRAIN_WORKERS": "2"})


@pytest.mark.slow
def test_the_probe_paths_answer_without_a_token_on_the_live_service(server):
    import httpx

    for path in sorted(PROBE_PATHS):
        assert httpx.get(f"{server.http}{path}", timeout=10).status_code == 200, path
