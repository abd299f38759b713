"""Controlled peers for the client's own behaviour (the client is what these tests check): an
HTTP server and a gRPC server that answer with a scripted status and record what they got, and a
TCP port that accepts connections but never answers."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
import time
from concurrent import futures

import grpc


def self_signed_certificate(folder) -> tuple[str, str]:
    """(certificate, key) PEM files for 'localhost' and 127.0.0.1, made with the openssl command."""
    import subprocess

    cert, key = str(folder / "server.crt"), str(folder / "server.key")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@contextlib.contextmanager
def scripted_http(statuses: list[int], body: dict | None = None, tls: tuple[str, str] | None = None, error_headers: dict | None = None):
    """Answers each request with the next status (the last one repeats; errors with ``error_headers``);
    records the headers, and when each request came (``_received``)."""
    seen: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            seen.append({**dict(self.headers), "_received": time.monotonic()})
            status = statuses[min(len(seen) - 1, len(statuses) - 1)]
            payload = json.dumps(body if status < 400 else {"error": f"scripted {status}"}).encode()
            self.send_response(status)
            for key, value in (error_headers or {}).items() if status >= 400 else ():
                self.send_header(key, value)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls:
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://localhost:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def scripted_grpc(codes: list[grpc.StatusCode], response: bytes = b"", tls: tuple[str, str] | None = None, trailing: tuple = ()):
    """A gRPC server whose every method aborts with the next code (with ``trailing`` metadata; OK
    answers `response`)."""
    seen: list[dict] = []

    def handle(request, context):
        seen.append({**dict(context.invocation_metadata()), "_received": time.monotonic()})
        code = codes[min(len(seen) - 1, len(codes) - 1)]
        if code != grpc.StatusCode.OK:
            context.set_trailing_metadata(trailing)
            context.abort(code, f"scripted {code.name}")
        return response

    class Generic(grpc.GenericRpcHandler):
        def service(self, details):
            return grpc.unary_unary_rpc_method_handler(handle, request_deserializer=lambda b: b, response_serializer=lambda b: b)

    server = grpc.server(futures.ThreadPoolExecutor(2), handlers=[Generic()])
    if tls:
        with open(tls[0], "rb") as cert, open(tls[1], "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"{'localhost' if tls else '127.0.0.1'}:{port}", seen
    finally:
        server.stop(0)


@contextlib.contextmanager
def silent_port():
    """A port that accepts TCP connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
