"""Serving: one BentoML service that serves the exported models over HTTP and gRPC.

`service.py` is the BentoML shell (`bentoml serve serving.service:Classifier`); the request path is
`state.py` (per-worker state) -> `inference.py` (decode + resize with `training.preprocessing`,
top-k) -> `batching.py` -> `repository.py` (the loaded models). The front doors: `http_api.py`
and `tf_serving_rest.py` (HTTP), `grpc_server.py` with `grpc_classifier.py` and
`tf_serving_grpc.py` (gRPC). Limits and options: `settings.py`.
"""
