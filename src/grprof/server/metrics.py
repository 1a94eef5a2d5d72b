"""`/metrics`: this replica's targets as Prometheus series (docs/metrics.md).

`RuntimeCollector` reads `Runtime` at scrape time, so the exposition is always the latest
state and a removed target's series vanish with it. Every per-target series carries `target`
plus the target's static labels (sanitised), the same set for every series of one target.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from grprof import __version__

if TYPE_CHECKING:
    from grprof.server.runtime import Runtime, TargetRuntime

# Label names the metrics themselves use: a static label of that name is exposed as
# `exported_<name>` (Prometheus' own convention for clashes), so it never overrides them.
RESERVED_LABELS = frozenset(
    {"target", "kind", "result", "le", "quantile", "class", "verdict", "category", "group", "site", "state"}
)
_INVALID = re.compile(r"[^a-zA-Z0-9_]")
Labels = dict[str, str]


def label_name(key: str) -> str:
    """A valid Prometheus label name for `key`: `team.name` -> `team_name`, `1x` -> `_1x`."""
    name = _INVALID.sub("_", key)
    if not name or name[0].isdigit():
        name = "_" + name
    if name.startswith("__"):  # reserved for Prometheus' internal labels
        name = "_" + name.lstrip("_")
    return name


def static_labels(labels: Mapping[str, str]) -> Labels:
    """A target's static labels as Prometheus labels, deterministically (sorted by key).

    Keys starting with `__` (file_sd's `__meta_*`, `__address__`) are Prometheus-internal and
    dropped; names clashing with a metric's own labels get `exported_`; two keys that sanitise
    to one name get `_2`, `_3`, ... in key order.
    """
    out: Labels = {}
    for key in sorted(labels):
        if key.startswith("__"):
            continue
        name = label_name(key)
        if name in RESERVED_LABELS:
            name = "exported_" + name
        base, i = name, 1
        while name in out:
            i += 1
            name = f"{base}_{i}"
        out[name] = str(labels[key])
    return out


def target_labels(tr: TargetRuntime) -> Labels:
    return {"target": tr.target.name, **static_labels(tr.target.labels)}


class _Family:
    """One metric family whose series have varying label sets (plain `Metric` allows it)."""

    def __init__(self, name: str, doc: str, typ: str = "gauge") -> None:
        self.metric = Metric(name, doc, typ)

    def add(self, labels: Labels, value: float, **extra: str) -> None:
        self.metric.add_sample(self.metric.name, {**labels, **extra}, float(value))


class RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime, *, top_n: int = 10) -> None:
        self.runtime = runtime
        self.top_n = top_n

    def collect(self) -> Iterator[Metric]:
        # A copy (one C-level step under the GIL): the daemon may add or drop targets meanwhile.
        targets = sorted(self.runtime.targets.values(), key=lambda t: t.target.name)
        labelsets = {t.target.name: target_labels(t) for t in targets}
        yield from self._targets(targets, labelsets)
        yield from self._findings(targets, labelsets)
        yield self._groups(targets, labelsets)
        yield from self._scrapes(labelsets)
        info = _Family("grprof_build_info", "grprof's version and the Python running it; always 1.")
        info.add({"version": __version__, "python": platform.python_version()}, 1)
        yield info.metric

    def _targets(self, targets: list[TargetRuntime], labelsets: Mapping[str, Labels]) -> Iterator[Metric]:
        from grprof.server.runtime import wait_classes

        up = _Family("grprof_target_up", "1 when the latest goroutine scrape of the target succeeded.")
        total = _Family("grprof_target_goroutines", "Goroutines in the target's latest snapshot.")
        growth = _Family(
            "grprof_goroutines_growth_rate",
            "Growth of the target's goroutine count, goroutines per minute over the detection window.",
        )
        last = _Family(
            "grprof_target_last_success_timestamp_seconds",
            "Unix time of the target's latest successful goroutine scrape.",
        )
        leakp = _Family(
            "grprof_target_leak_profile",
            "1 when the target serves the goroutineleak profile, 0 when it does not (unknown: absent).",
        )
        lag = _Family(
            "grprof_scrape_lag_seconds",
            "How late the target's latest goroutine scrape started after it was due (jitter and "
            "waits for the concurrency limit included); growing values mean grprof is overloaded.",
        )
        blocked = _Family(
            "grprof_blocked_goroutines",
            "Goroutines in the target's latest snapshot by wait-reason class (running: not blocked).",
        )
        classes = wait_classes().names
        for t in targets:
            lab = labelsets[t.target.name]
            up.add(lab, 1 if t.up else 0)
            if t.goroutines is not None:
                total.add(lab, t.goroutines)
                for cls in classes:  # every class, zeros included: a bounded, stable set
                    blocked.add(lab, t.blocked.get(cls, 0), **{"class": cls})
            if t.growth_per_minute is not None:
                growth.add(lab, t.growth_per_minute)
            if t.last_success is not None:
                last.add(lab, t.last_success.timestamp())
            if t.leak_profile is not None:
                leakp.add(lab, 1 if t.leak_profile else 0)
            if t.scrape_lag is not None:
                lag.add(lab, t.scrape_lag)
        return iter([f.metric for f in (up, total, growth, blocked, last, leakp, lag)])

    def _findings(self, targets: list[TargetRuntime], labelsets: Mapping[str, Labels]) -> Iterator[Metric]:
        suspects = _Family(
            "grprof_leak_suspects", "Findings of the latest detection run, by verdict and category."
        )
        leaked = _Family(
            "grprof_leaked_goroutines",
            "Goroutines in the latest detection run's findings, by verdict and category.",
        )
        for t in targets:
            per: dict[tuple[str, str], list[int]] = {}
            for f in list(t.findings):
                n = per.setdefault((f.verdict, f.category), [0, 0])
                n[0] += 1
                n[1] += f.count
            for (verdict, category), (count, goroutines) in sorted(per.items()):
                lab = labelsets[t.target.name]
                suspects.add(lab, count, verdict=verdict, category=category)
                leaked.add(lab, goroutines, verdict=verdict, category=category)
        return iter([suspects.metric, leaked.metric])

    def _groups(self, targets: list[TargetRuntime], labelsets: Mapping[str, Labels]) -> Metric:
        fam = _Family(
            "grprof_group_goroutines",
            f"Goroutines in each of the target's {self.top_n} largest groups (latest snapshot).",
        )
        for t in targets:
            top = sorted(t.top_groups, key=lambda g: (-g.count, g.signature))[: self.top_n]
            for g in top:
                site = g.site
                fam.add(
                    labelsets[t.target.name],
                    g.count,
                    group=g.signature,
                    site=site.function if site else "",
                    state=g.state,
                )
        return fam.metric

    def _scrapes(self, labelsets: Mapping[str, Labels]) -> Iterator[Metric]:
        """The Runtime's histogram and counter, with each target's static labels added."""
        for source in (self.runtime.scrape_duration, self.runtime.scrapes_total):
            for m in source.collect():
                out = Metric(m.name, m.documentation, m.type)
                for s in m.samples:
                    if s.name.endswith("_created"):  # creation times: noise on a dashboard
                        continue
                    base = labelsets.get(s.labels["target"])
                    if base is None:  # dropped from the configuration (its series linger in
                        continue  # the Histogram unless the daemon called remove_target)
                    out.add_sample(s.name, {**base, **s.labels}, s.value)
                yield out


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format (0.0.4) of everything in `registry`."""
    return generate_latest(registry)


__all__ = [
    "RESERVED_LABELS",
    "RuntimeCollector",
    "exposition",
    "label_name",
    "static_labels",
    "target_labels",
]
