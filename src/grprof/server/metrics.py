"""`/metrics`: this replica's targets as Prometheus series (docs/metrics.md).

`ServerMetrics` owns a replica's instruments (the scrape histogram and counter) and its
registry; `RuntimeCollector` reads the replica's state (`grprof.server.runtime.Runtime`, seen
through `RuntimeView`: this module does not import it) at scrape time, so the exposition is always the latest
state and a removed target's series vanish with it. Every per-target series carries `target`
plus the target's static labels (sanitised), the same set for every series of one target.
"""

from __future__ import annotations

import bisect
import datetime as dt
import platform
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import escape_label_name, escape_metric_name
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from grprof import __version__, schema
from grprof.collect.model import ScrapeResult, Target
from grprof.detect.cost import STACK_MIN
from grprof.detect.model import Finding
from grprof.model import Group
from grprof.server.waits import wait_classes
from grprof.store.model import WriteStats

# Seconds: a loopback debug=1 scrape takes milliseconds, a 40,000-goroutine debug=2 seconds.
SCRAPE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Label names the metrics themselves use: a static label of that name is exposed as
# `exported_<name>` (Prometheus' own convention for clashes), so it never overrides them.
RESERVED_LABELS = frozenset(
    {
        "target",
        "kind",
        "result",
        "le",
        "quantile",
        "class",
        "verdict",
        "category",
        "owner",
        "group",
        "site",
        "state",
    }
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


class TargetView(Protocol):
    """What `/metrics` reads of a target (`grprof.server.runtime.TargetRuntime`)."""

    @property
    def target(self) -> Target: ...
    @property
    def up(self) -> bool: ...
    @property
    def goroutines(self) -> int | None: ...
    @property
    def growth_per_minute(self) -> float | None: ...
    @property
    def blocked(self) -> Mapping[str, int]: ...
    @property
    def top_groups(self) -> Sequence[Group]: ...
    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def last_success(self) -> dt.datetime | None: ...
    @property
    def leak_profile(self) -> bool | None: ...
    @property
    def scrape_lag(self) -> float | None: ...


class RuntimeView(Protocol):
    """What `/metrics` reads of a replica (`grprof.server.runtime.Runtime`)."""

    @property
    def targets(self) -> Mapping[str, TargetView]: ...


class FederationView(Protocol):
    """What the API and `/metrics` read of a federation (`grprof.serving.federation.Federation`,
    docs/serve.md#federation): its members' last-known targets and open findings, each tagged
    with its `cluster`, and the members' states."""

    def targets(self) -> Sequence[schema.Target]: ...
    def findings(self) -> Sequence[schema.StoredFinding]: ...
    def status(self) -> schema.FederationResponse: ...


def target_labels(tr: TargetView) -> Labels:
    return {"target": tr.target.name, **static_labels(tr.target.labels)}


class _Family:
    """One metric family whose series have varying label sets (plain `Metric` allows it)."""

    def __init__(self, name: str, doc: str, typ: str = "gauge") -> None:
        self.metric = Metric(name, doc, typ)

    def add(self, labels: Labels, value: float, **extra: str) -> None:
        self.metric.add_sample(self.metric.name, {**labels, **extra}, float(value))


_go_float = cast(Callable[[float], str], floatToGoString)  # untyped there
_DURATION = (
    "grprof_scrape_duration_seconds",
    "Duration of scrapes of a target's pprof endpoint, request start to last byte.",
)
_RESULTS = ("grprof_scrapes", "Scrapes of a target's pprof endpoint, by kind and result.")
_LE = [*(_go_float(b) for b in SCRAPE_BUCKETS), "+Inf"]


@dataclass(slots=True)
class _Durations:
    """One (target, kind)'s histogram: scrapes per bucket (not cumulative; the last one above
    every bound) and the sum of their durations."""

    counts: list[int]
    total: float = 0.0


class ServerMetrics:
    """One replica's instruments and the registry `/metrics` exposes: the scrape histogram and
    counter (owned here) and a `RuntimeCollector` over the replica's state.

    The histogram and the counter are plain counts under a lock, not prometheus_client's
    `Histogram` and `Counter`: each series is exposed with its target's static labels added,
    which their fixed label names cannot carry, and reading 3,000 labelled children back
    through their `collect()` to add them took about a third of a `/metrics` exposition at
    1,000 targets."""

    def __init__(self, runtime: RuntimeView, *, top_n: int = 10) -> None:
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._durations: dict[tuple[str, str], _Durations] = {}
        self._results: dict[tuple[str, str, str], int] = {}
        self.federation: FederationView | None = None
        """Set by a federating daemon: its members' series join this replica's, with `cluster`."""
        self.store_writes: Callable[[], WriteStats] | None = None
        """Set by the daemon once its store is open: the store's batched writes."""
        self.registry.register(RuntimeCollector(runtime, self, top_n=top_n))

    def observe_scrape(self, result: ScrapeResult) -> None:
        seconds = max(result.duration, 0.0)
        with self._lock:
            h = self._durations.get((result.target, result.kind))
            if h is None:
                h = self._durations[result.target, result.kind] = _Durations([0] * len(_LE))
            h.counts[bisect.bisect_left(SCRAPE_BUCKETS, seconds)] += 1  # `le`: bound included
            h.total += seconds
            key = (result.target, result.kind, result.status)
            self._results[key] = self._results.get(key, 0) + 1

    def forget(self, name: str) -> None:
        """Drop a removed target's scrape series."""
        with self._lock:
            for k in [k for k in self._durations if k[0] == name]:
                del self._durations[k]
            for r in [r for r in self._results if r[0] == name]:
                del self._results[r]

    def scrape_families(self, labelsets: Mapping[str, Labels]) -> tuple[Metric, Metric]:
        """The histogram and the counter, each series with its target's labels (`labelsets`;
        a target not in it is left out)."""
        with self._lock:
            durations = [(k, list(h.counts), h.total) for k, h in self._durations.items()]
            results = list(self._results.items())
        hist = Metric(*_DURATION, "histogram")
        name = hist.name
        for (target, kind), counts, total in durations:
            base = labelsets.get(target)
            if base is None:
                continue
            labels = {**base, "kind": kind}
            n = 0
            for le, c in zip(_LE, counts, strict=True):
                n += c
                hist.samples.append(Sample(f"{name}_bucket", {**labels, "le": le}, float(n)))
            hist.samples.append(Sample(f"{name}_count", labels, float(n)))
            hist.samples.append(Sample(f"{name}_sum", labels, total))
        count = Metric(*_RESULTS, "counter")
        for (target, kind, status), n in results:
            base = labelsets.get(target)
            if base is not None:
                count.samples.append(
                    Sample(f"{count.name}_total", {**base, "kind": kind, "result": status}, float(n))
                )
        return hist, count


class RuntimeCollector(Collector):
    def __init__(self, runtime: RuntimeView, instruments: ServerMetrics, *, top_n: int = 10) -> None:
        self.runtime = runtime
        self.instruments = instruments
        self.top_n = top_n

    def collect(self) -> Iterator[Metric]:
        # A copy (one C-level step under the GIL): the daemon may add or drop targets meanwhile.
        targets = sorted(self.runtime.targets.values(), key=lambda t: t.target.name)
        labelsets = {t.target.name: target_labels(t) for t in targets}
        families = [*self._targets(targets, labelsets), *self._findings(targets, labelsets)]
        federation = self.instruments.federation
        if federation is not None:  # into the same families: one HELP/TYPE per metric name
            families += federated(families, federation)
        yield from families
        yield self._groups(targets, labelsets)
        yield from self.instruments.scrape_families(labelsets)
        if self.instruments.store_writes is not None:
            yield from _store_families(self.instruments.store_writes())
        info = _Family("grprof_build_info", "grprof's version and the Python running it; always 1.")
        info.add({"version": __version__, "python": platform.python_version()}, 1)
        yield info.metric

    def _targets(self, targets: list[TargetView], labelsets: Mapping[str, Labels]) -> Iterator[Metric]:
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

    def _findings(self, targets: list[TargetView], labelsets: Mapping[str, Labels]) -> Iterator[Metric]:
        suspects = _Family(
            "grprof_leak_suspects",
            "Findings of the latest detection run, by verdict, category and owner.",
        )
        leaked = _Family(
            "grprof_leaked_goroutines",
            "Goroutines in the latest detection run's findings, by verdict, category and owner.",
        )
        stack = _Family(
            "grprof_leaked_stack_bytes",
            "Stack bytes the latest detection run's findings hold, by verdict, category and owner "
            "(a lower bound: 2 KiB per goroutine, docs/owners.md).",
        )
        for t in targets:
            # `owner`: one value per team that owns a finding (docs/owners.md), `unknown` when
            # nothing names one: bounded by the teams, not by the findings.
            per: dict[tuple[str, str, str], list[int]] = {}
            for f in list(t.findings):
                n = per.setdefault((f.verdict, f.category, f.owner), [0, 0, 0])
                n[0] += 1
                n[1] += f.count
                n[2] += f.stack.bytes if f.stack else f.count * STACK_MIN
            for (verdict, category, owner), (count, goroutines, nbytes) in sorted(per.items()):
                lab = labelsets[t.target.name]
                suspects.add(lab, count, verdict=verdict, category=category, owner=owner)
                leaked.add(lab, goroutines, verdict=verdict, category=category, owner=owner)
                stack.add(lab, nbytes, verdict=verdict, category=category, owner=owner)
        return iter([suspects.metric, leaked.metric, stack.metric])

    def _groups(self, targets: list[TargetView], labelsets: Mapping[str, Labels]) -> Metric:
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


def federated_labels(t: schema.Target) -> Labels:
    """A federated target's labels: `cluster`, `target` and its static labels (a static label
    named `cluster` is exposed as `exported_cluster`)."""
    static = static_labels(t["labels"])
    if "cluster" in static:
        static["exported_cluster"] = static.pop("cluster")
    return {"cluster": t["cluster"] or "", "target": t["name"], **static}


def federated(families: Sequence[Metric], view: FederationView) -> list[Metric]:
    """Add the federation members' series to this replica's `families` (by name: target up,
    goroutines, growth; findings by verdict, category and owner) and return the members' own:
    `grprof_federation_member_up` and `grprof_federation_member_age_seconds`."""
    fams = {m.name: m for m in families}

    def add(name: str, labels: Labels, value: float) -> None:
        fams[name].add_sample(name, labels, float(value))

    labelsets: dict[tuple[str, str], Labels] = {}
    for t in view.targets():
        lab = labelsets[t["cluster"] or "", t["name"]] = federated_labels(t)
        if t["up"] is not None:
            add("grprof_target_up", lab, 1 if t["up"] else 0)
        if t["goroutines"] is not None:
            add("grprof_target_goroutines", lab, t["goroutines"])
        if t["growth_per_minute"] is not None:
            add("grprof_goroutines_growth_rate", lab, t["growth_per_minute"])
    per: dict[tuple[str, str, str, str, str], list[int]] = {}
    for f in view.findings():
        key = (f.get("cluster") or "", f["target"], f["verdict"], f["category"], f.get("owner", "unknown"))
        n = per.setdefault(key, [0, 0, 0])
        n[0] += 1
        n[1] += f["count"]
        n[2] += f.get("stack_bytes", f["count"] * STACK_MIN)
    for (cluster, target, verdict, category, owner), (count, goroutines, nbytes) in sorted(per.items()):
        lab = {
            **labelsets.get((cluster, target), {"cluster": cluster, "target": target}),
            "verdict": verdict,
            "category": category,
            "owner": owner,
        }
        add("grprof_leak_suspects", lab, count)
        add("grprof_leaked_goroutines", lab, goroutines)
        add("grprof_leaked_stack_bytes", lab, nbytes)
    up = _Family("grprof_federation_member_up", "1 when the latest pull of the federation member succeeded.")
    age = _Family(
        "grprof_federation_member_age_seconds",
        "Seconds since the federation member answered its last successful pull (absent: never).",
    )
    for m in view.status()["members"]:
        up.add({"cluster": m["cluster"]}, 1 if m["up"] else 0)
        if m["age_seconds"] is not None:
            age.add({"cluster": m["cluster"]}, m["age_seconds"])
    return [up.metric, age.metric]


def _store_families(w: WriteStats) -> Iterator[Metric]:
    """The store's batched writes (`grprof.store.commits`): one series each, no target labels."""
    queued = Metric(
        "grprof_store_queued_writes",
        "Scrapes waiting to be written to the store (committed in batches, at most every 0.25 s).",
        "gauge",
    )
    queued.add_sample(queued.name, {}, float(w.queued))
    batches = Metric("grprof_store_batches", "Transactions that committed queued writes.", "counter")
    batches.add_sample(f"{batches.name}_total", {}, float(w.batches))
    writes = Metric(
        "grprof_store_writes", "Writes to the store by result; a failed one is logged and lost.", "counter"
    )
    writes.add_sample(f"{writes.name}_total", {"result": "ok"}, float(w.written))
    writes.add_sample(f"{writes.name}_total", {"result": "failed"}, float(w.failed))
    return iter([queued, batches, writes])


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format (0.0.4) of everything in `registry`, byte for byte what
    prometheus_client's `generate_latest` writes, at about a quarter of its cost here.

    Why not `generate_latest`: it escapes and joins every label of every sample anew, and
    1,000 targets are some 80,000 samples whose labels are mostly the same few hundred
    (name, value) pairs, their target's; it took 0.65 s of CPU per scrape of `/metrics`
    (performance.md). Here each pair, name and value is written once per exposition."""
    out: list[str] = []
    pairs: dict[tuple[str, str], str] = {}
    names: dict[str, str] = {}
    values: dict[float, str] = {}

    def name_of(n: str) -> str:
        e = names.get(n)
        if e is None:
            e = names[n] = escape_metric_name(n)
        return e

    def line(sample: Sample) -> str:
        labels = ""
        if sample.labels:
            parts = []
            for kv in sorted(sample.labels.items()):
                text = pairs.get(kv)
                if text is None:
                    k, v = kv
                    text = pairs[kv] = f'{escape_label_name(k)}="{_escape_value(v)}"'
                parts.append(text)
            labels = "{" + ",".join(parts) + "}"
        x = sample.value
        value = values.get(x)
        if value is None:
            value = values[x] = _go_float(x)
        stamp = f" {int(float(sample.timestamp) * 1000):d}" if sample.timestamp is not None else ""
        return f"{name_of(sample.name)}{labels} {value}{stamp}\n"

    for metric in registry.collect():
        mname, mtype = metric.name, _TYPES.get(metric.type, metric.type)
        mname += _NAME_SUFFIXES.get(metric.type, "")
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name_of(mname)} {doc}\n# TYPE {name_of(mname)} {mtype}\n")
        # OpenMetrics-only samples go into gauges of their own after the family (as there).
        special = {metric.name + suffix: suffix for suffix in ("_created", "_gsum", "_gcount")}
        om: dict[str, list[str]] = {}
        for sample in metric.samples:
            suffix = special.get(sample.name)
            if suffix is None:
                out.append(line(sample))
            else:
                om.setdefault(suffix, []).append(line(sample))
        for suffix, lines in sorted(om.items()):
            n = name_of(metric.name + suffix)
            out.append(f"# HELP {n} {doc}\n# TYPE {n} gauge\n")
            out.extend(lines)
    return "".join(out).encode("utf-8")


_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_NAME_SUFFIXES = {"counter": "_total", "info": "_info"}


def _escape_value(v: str) -> str:
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


__all__ = [
    "RESERVED_LABELS",
    "SCRAPE_BUCKETS",
    "FederationView",
    "RuntimeCollector",
    "RuntimeView",
    "ServerMetrics",
    "TargetView",
    "exposition",
    "federated",
    "federated_labels",
    "label_name",
    "static_labels",
    "target_labels",
]
