"""The gRPC front door: `server` (one grpc.aio server per worker), `guard` (tokens and deadlines),
`common` (aborts and parsing), one servicer module per protocol (`imgclf`, `tf_serving`,
`open_inference`) and `proto_pool` (the wire-compatible protos' private descriptor pool)."""
