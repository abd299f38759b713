"""The private descriptor pool of the wire-compatible protos (TensorFlow Serving's and the Open
Inference Protocol's, compiled into protos/descriptors.binpb by `python -m protos.generate`),
and message classes from it.

A private pool, not generated modules: a worker that also imports TensorFlow (for the TensorFlow
runtime), or a test process that imports tensorflow-serving-api or tritonclient, registers the
same package names in the default pool, and the two would clash.
"""

from __future__ import annotations

import functools
from pathlib import Path

DESCRIPTORS = Path(__file__).resolve().parents[2] / "protos" / "descriptors.binpb"


@functools.cache
def pool():
    """The pool, which also holds imgclf.v1, health and reflection, so that one pool answers
    every reflection query."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_health.v1 import health_pb2
    from grpc_reflection.v1alpha import reflection_pb2

    from protos.imgclf.v1 import classifier_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes()).file
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        pool.Add(file)
    for module in (classifier_pb2, health_pb2, reflection_pb2):
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        pool.Add(proto)
    return pool


@functools.cache
def message(name: str):
    """The message class of a full name, e.g. ``inference.ModelInferRequest``."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(pool().FindMessageTypeByName(name))
