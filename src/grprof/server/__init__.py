"""`grprof serve`'s HTTP side: the JSON API and `/metrics` (docs/api-server.md, docs/metrics.md).

- `grprof.server.waits`: wait-reason classes (`blocked_by_class`), data from wait_classes.yaml.
- `grprof.server.metrics`: `ServerMetrics`, a replica's instruments and registry, and
  `RuntimeCollector`, the Prometheus series of its state (read through `RuntimeView`).
- `grprof.server.runtime`: the in-memory state of a replica (`Runtime`, `TargetRuntime`),
  shared by the daemon that fills it, the API and the metrics.
- `grprof.server.api`: `create_app(store, runtime, capture=..., api_token=...)`, a FastAPI app.

Imports go down that list, never up (tests/test_imports.py).
"""
