"""The gRPC server interceptor: the API token and the call's deadline, for every call but health
and reflection (the HTTP side does the same in `serving.http.imgclf`)."""

from __future__ import annotations

import time

import grpc

from serving.core import guards, metrics
from serving.core.errors import Unauthenticated
from serving.grpc.common import abort


class Guard(grpc.aio.ServerInterceptor):
    """Every call but health and reflection: the API token (``authorization`` metadata) is checked,
    and the call's own deadline becomes the request's (`guards.DEADLINE`)."""

    def __init__(self, settings):
        self.settings = settings

    async def intercept_service(self, continuation, details):
        handler = await continuation(details)
        if handler is None or details.method.startswith(guards.OPEN_GRPC_SERVICES):
            return handler
        authorization = next((value for key, value in details.invocation_metadata or () if key == "authorization"), None)
        try:
            guards.check_token(self.settings, authorization)
        except Unauthenticated as error:
            return _refusal(handler, error)
        kind = _kind(handler)
        return handler._replace(**{kind: _with_deadline(getattr(handler, kind), handler.response_streaming)})


def _refusal(handler, error: Unauthenticated):
    """``handler`` with its behaviour replaced by an UNAUTHENTICATED answer."""

    async def refuse(request, context):
        metrics.record_error(None, "grpc", error)
        await abort(context, error)

    async def refuse_stream(request, context):
        await refuse(request, context)
        yield  # pragma: no cover (never reached: abort raises)

    return handler._replace(**{_kind(handler): refuse_stream if handler.response_streaming else refuse})


def _kind(handler) -> str:
    return f"{'stream' if handler.request_streaming else 'unary'}_{'stream' if handler.response_streaming else 'unary'}"


def _with_deadline(behavior, streaming: bool):
    def begin(context) -> None:
        remaining = context.time_remaining()
        if remaining is not None:
            guards.DEADLINE.set(time.monotonic() + remaining)

    if streaming:

        async def stream(request, context):
            begin(context)
            async for response in behavior(request, context):
                yield response

        return stream

    async def unary(request, context):
        begin(context)
        return await behavior(request, context)

    return unary
