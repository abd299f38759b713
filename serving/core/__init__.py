"""The request path every protocol shares: `state` (the worker's state) -> `inference` (decode +
the shared bilinear resize + top-k) -> `batching` -> `repository` (the loaded models); `settings`
(every limit), `errors` (the one table of HTTP statuses and gRPC codes), `guards` (tokens and
deadlines), `metrics` (Prometheus). No transport code."""
