"""The HTTP front door: `app` (every route), `common` (the guard, bounded bodies, JSON, the error
body), one module per protocol (`imgclf`, `tf_serving`, `open_inference`) and `openapi` (the
document generated from `schemas` and `serving.core.errors`)."""
