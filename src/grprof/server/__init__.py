"""`grprof serve`'s HTTP side: the JSON API and `/metrics` (docs/api-server.md, docs/metrics.md).

- `grprof.server.runtime`: the in-memory state of a replica (`Runtime`, `TargetRuntime`),
  shared by the daemon that fills it, the API and the metrics; wait-reason classes.
- `grprof.server.api`: `create_app(store, runtime, capture=..., api_token=...)`, a FastAPI app.
- `grprof.server.metrics`: `RuntimeCollector`, the Prometheus series of a `Runtime`.
"""
