"""The gRPC server that runs inside each API worker (grpc.aio, on the worker's event loop).

It serves `imgclf.v1.ClassifierService` (protos/imgclf/v1/classifier.proto), TensorFlow Serving's
`tensorflow.serving.PredictionService` (see tf_serving.py), the Open Inference Protocol's
`inference.GRPCInferenceService` (open_inference.py), `grpc.health.v1` and server
reflection, on one port shared by every worker (SO_REUSEPORT). BentoML's own ``serve-grpc``
cannot be used: its stubs do not import under protobuf 6+, which TensorFlow 2.21 requires.
"""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from serving.core.state import ServiceState
from serving.grpc import imgclf, open_inference, proto_pool, tf_serving
from serving.grpc.guard import Guard

log = logging.getLogger("imgclf.serving")


async def start(state: ServiceState, port: int) -> grpc.aio.Server:
    """Starts the gRPC server on ``port`` (shared between workers); returns it, serving."""
    limit = state.settings.max_body_bytes
    server = grpc.aio.server(
        interceptors=(Guard(state.settings),),
        options=[
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    imgclf.add_to_server(state, server)
    tf_serving_names = tf_serving.add_to_server(state, server)
    v2_names = open_inference.add_to_server(state, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (imgclf.SERVICE_NAME, *tf_serving_names, *v2_names, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server, pool=proto_pool.pool())
    settings = state.settings
    if settings.tls:
        with open(settings.tls_key_file, "rb") as key, open(settings.tls_cert_file, "rb") as cert:
            credentials = grpc.ssl_server_credentials(((key.read(), cert.read()),))
        bound = server.add_secure_port(f"[::]:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"[::]:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen for gRPC on port {port}")
    await server.start()
    server.port, server.health, server.service_names = (
        bound,
        health_servicer,
        ("", imgclf.SERVICE_NAME, *tf_serving_names, *v2_names),
    )  # What a drain marks NOT_SERVING.
    for name in server.service_names:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC serving on port %d%s: %s", bound, " (TLS)" if settings.tls else "", ", ".join(names))
    return server
