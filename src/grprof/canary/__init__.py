"""`grprof canary` and `POST /api/v1/canary`: a canary's goroutines judged against its
baseline's, the Kayenta way (docs/canary.md).

- `grprof.canary.stats`: Mann-Whitney U, Hodges-Lehmann shift and confidence interval.
- `grprof.canary.config`: data/canary.yaml (metrics, weights, thresholds), validated.
- `grprof.canary.judge`: the judgement (pure computation).
- `grprof.canary.collect`: snapshots from files, live services, or a `grprof serve` store.
- `grprof.canary.text`, `grprof.canary.cli`, `grprof.canary.api`: text, command, HTTP routes.
"""
