"""What every gRPC service here shares: answering a call or ending it with a `ServingError`, and
parsing request bytes ourselves so that a malformed message gets INVALID_ARGUMENT."""

from __future__ import annotations

from serving.core import metrics
from serving.core.errors import InvalidInput, Overloaded, ServingError


async def abort(context, error: ServingError) -> None:
    """Ends the call with the error's code and message; an overload also says when to retry."""
    trailing = (("retry-after", str(error.retry_after)),) if isinstance(error, Overloaded) else ()
    await context.abort(error.grpc_code, error.message, trailing_metadata=trailing)


async def answer(work, context, model: str | None, protocol: str):
    """What ``work`` (a coroutine) returns; a `ServingError` is counted under ``protocol`` and
    ``model`` and ends the call with its code and message."""
    try:
        return await work
    except ServingError as error:
        metrics.record_error(model, protocol, error)
        await abort(context, error)


def parsing(handler, message_class, streaming: bool = False):
    """Wraps a handler to take raw bytes and parse them itself, so that a malformed message gets
    INVALID_ARGUMENT (grpc's own deserializer failure would be INTERNAL)."""
    from google.protobuf.message import DecodeError

    def parse(data: bytes):
        try:
            return message_class.FromString(data)
        except DecodeError as error:
            raise InvalidInput(f"malformed {message_class.DESCRIPTOR.full_name} message: {error}") from None

    if streaming:

        async def stream(request_iterator, context):
            async def parsed():
                async for data in request_iterator:
                    try:
                        yield parse(data)
                    except InvalidInput as error:
                        await abort(context, error)

            async for response in handler(parsed(), context):
                yield response

        return stream

    async def unary(data, context):
        try:
            request = parse(data)
        except InvalidInput as error:
            await abort(context, error)
        return await handler(request, context)

    return unary


def serialize(response) -> bytes:
    return response.SerializeToString()
