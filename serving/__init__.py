"""Serving: one BentoML service that serves the exported models over HTTP and gRPC, in three
protocols (imgclf's own, TensorFlow Serving's and the Open Inference Protocol v2).

    service.py, startup.py  the BentoML shell (`bentoml serve serving.service:Classifier`); start-up timing
    core/                   what every protocol shares: the per-worker state, decode + resize + top-k,
                            batching, the served models, settings, errors, guards, metrics
    protocols/              what a protocol means apart from its transport (the v2 tensors)
    http/                   the HTTP front door: one ASGI app, one module per protocol, the OpenAPI document
    grpc/                   the gRPC front door: one server, one servicer module per protocol, the guard
    ui/                     the browser page

Both front doors name their modules by protocol (`imgclf`, `tf_serving`, `open_inference`) and hand
every handler the worker's `core.state.ServiceState` as an argument.
"""
