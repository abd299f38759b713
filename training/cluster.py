"""The cluster of a multi-worker run on Kubernetes: TF_CONFIG built from an Indexed Job's pod.

A pod of an Indexed Job knows its index (``JOB_COMPLETION_INDEX``, set by Kubernetes) and, from
deploy/kubernetes/training-job.yaml, the job's name, worker count and port, and the headless
Service that gives each pod the DNS name ``<job>-<index>.<service>``. `python -m training train
--strategy multi-worker` builds TF_CONFIG from those when it is not set. No TensorFlow import.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

VARIABLES = ("IMGCLF_TRAIN_JOB", "IMGCLF_TRAIN_SERVICE", "IMGCLF_TRAIN_WORKERS")


def tf_config_from_indexed_job(environ: Mapping[str, str]) -> str | None:
    """TF_CONFIG for this pod of an Indexed Job, or None outside one (no JOB_COMPLETION_INDEX)."""
    if "JOB_COMPLETION_INDEX" not in environ:
        return None
    missing = [name for name in VARIABLES if not environ.get(name)]
    if missing:
        raise ValueError(f"an Indexed Job pod needs {', '.join(missing)} to build TF_CONFIG (see deploy/kubernetes/training-job.yaml)")
    try:
        index, workers = int(environ["JOB_COMPLETION_INDEX"]), int(environ["IMGCLF_TRAIN_WORKERS"])
        port = int(environ.get("IMGCLF_TRAIN_PORT") or 12345)
    except ValueError as error:
        raise ValueError(f"JOB_COMPLETION_INDEX, IMGCLF_TRAIN_WORKERS and IMGCLF_TRAIN_PORT must be integers: {error}") from None
    if not 0 <= index < workers:
        raise ValueError(f"JOB_COMPLETION_INDEX {index} is not below IMGCLF_TRAIN_WORKERS {workers}")
    job, service = environ["IMGCLF_TRAIN_JOB"], environ["IMGCLF_TRAIN_SERVICE"]
    hosts = [f"{job}-{k}.{service}:{port}" for k in range(workers)]
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})
