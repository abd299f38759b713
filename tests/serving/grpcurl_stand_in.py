"""A stand-in for `grpcurl -plaintext -d JSON HOST:PORT SERVICE/METHOD` (grpcurl itself cannot be
installed here): like grpcurl, it learns the method's messages from the server's reflection
service, parses the JSON body with protobuf's JSON mapping, calls the method and prints the
answer as JSON. It lets the suite run the exact grpcurl line that `make demo` prints."""

from __future__ import annotations

import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def main(argv: list[str]) -> int:
    args = list(argv)
    if "-plaintext" not in args:
        print("this stand-in only speaks plaintext", file=sys.stderr)
        return 2
    args.remove("-plaintext")
    body = args[args.index("-d") + 1]
    del args[args.index("-d") : args.index("-d") + 2]
    target, method = args
    service_name, method_name = method.rsplit("/", 1)
    with grpc.insecure_channel(target) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method_descriptor = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        request_class = message_factory.GetMessageClass(method_descriptor.input_type)
        response_class = message_factory.GetMessageClass(method_descriptor.output_type)
        request = json_format.Parse(body, request_class())
        call = channel.unary_unary(
            f"/{service_name}/{method_name}", request_serializer=request_class.SerializeToString, response_deserializer=response_class.FromString
        )
        try:
            response = call(request, timeout=30)
        except grpc.RpcError as error:
            print(f"ERROR:\n  Code: {error.code().name}\n  Message: {error.details()}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(response))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
