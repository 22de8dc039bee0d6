"""HTTP serving of bundles: FastAPI app, micro-batching, auth and limits, Prometheus metrics."""
