"""Operating grprof with Prometheus and Grafana: `grprof rules` (alerting and recording rules,
docs/alerts.md) and `grprof dashboard` (a Grafana dashboard, docs/dashboard.md)."""
