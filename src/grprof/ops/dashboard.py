"""`grprof dashboard`: a Grafana dashboard for grprof's metrics (docs/dashboard.md), built with
Grafana's own dashboards-as-code library, grafana-foundation-sdk (docs/dashboard.md says why
that one).

Rows: fleet overview, per target (goroutines, findings, largest groups), growth, blocked
goroutines by wait class, scrape health. Variables: `datasource`, `service` (a static label,
`--service-label`), `shard` (the grprof replica: Prometheus' `instance` of the grprof job), and
`target`. Every query filters on all three, so "All" everywhere is the whole fleet.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from grprof.errors import GrprofError
from grprof.ops.alerts import apply_overrides, check_ui_url, load_spec, read_overrides

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders.dashboard import Dashboard

DEFAULT_UID = "grprof-goroutines"
DEFAULT_TITLE = "grprof: goroutine leaks"
SCHEMA_VERSION = 39
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# Grafana variables in the queries, and what stands in for them when the tests hand the
# queries to Prometheus' parser (`promql_for_check`).
VARIABLE_STAND_INS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$service": ".*",
    "$shard": ".*",
    "$target": ".*",
}


class DashboardError(GrprofError):
    """A flag of `grprof dashboard` is wrong, or the library is missing; one line."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "dashboard",
        help="write a Grafana dashboard (JSON) for grprof's metrics",
        description="Write a Grafana dashboard for the metrics `grprof serve` exposes: fleet "
        "overview, goroutines and findings per target, growth, blocked goroutines by wait class, "
        "scrape health. Import it in Grafana (Dashboards > New > Import) or provision it.",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument(
        "--service-label",
        default="service",
        metavar="LABEL",
        help="the static target label that names a service, for the `service` variable (default service)",
    )
    p.add_argument("--uid", default=DEFAULT_UID, help=f"dashboard uid (default {DEFAULT_UID})")
    p.add_argument("--title", default=DEFAULT_TITLE, help=f"dashboard title (default {DEFAULT_TITLE!r})")
    p.add_argument(
        "--ui-url",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="grprof's base URL as Grafana users reach it, for the links to findings",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an alert threshold (as `grprof rules --set`), drawn on the panels it applies to",
    )
    p.add_argument("--overrides", metavar="FILE", help="the override file given to `grprof rules`")
    return p


def run(args: argparse.Namespace) -> int:
    from grprof.ops.rules import _sets

    if not _LABEL.match(args.service_label) or args.service_label.startswith("__"):
        raise DashboardError(f"--service-label: not a valid Prometheus label name: {args.service_label!r}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", args.uid):
        raise DashboardError(f"--uid: want 1-40 letters, digits, '-' or '_', got {args.uid!r}")
    spec = load_spec()
    if args.overrides:
        spec = apply_overrides(spec, read_overrides(args.overrides), source=args.overrides)
    if args.set:
        spec = apply_overrides(spec, {"thresholds": _sets(args.set)}, source="--set")
    thresholds = {k: t.value for k, t in spec.thresholds.items()}
    data = dashboard_json(
        service_label=args.service_label,
        uid=args.uid,
        title=args.title,
        ui_url=check_ui_url(args.ui_url),
        thresholds=thresholds,
    )
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise DashboardError(f"{args.output}: cannot write: {e.strerror or e}") from None
    else:
        print(text, end="")
    return 0


def dashboard_json(
    *,
    service_label: str = "service",
    uid: str = DEFAULT_UID,
    title: str = DEFAULT_TITLE,
    ui_url: str = "http://127.0.0.1:8080",
    thresholds: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dashboard as JSON data (what Grafana imports)."""
    try:
        from grafana_foundation_sdk.cog.encoder import JSONEncoder
    except ImportError:
        raise DashboardError(
            "grafana-foundation-sdk is not installed (pip install grafana-foundation-sdk)"
        ) from None
    board = build(
        service_label=service_label, uid=uid, title=title, ui_url=ui_url, thresholds=thresholds or {}
    ).build()
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board))
    for i, p in enumerate(panels(data), start=1):  # Grafana keys panel state by id
        p["id"] = i
    # Without it Grafana takes the JSON for its oldest format and migrates it; 39 is Grafana
    # 10.3+'s (later versions migrate it forward themselves).
    data.setdefault("schemaVersion", SCHEMA_VERSION)
    return data


def build(*, service_label: str, uid: str, title: str, ui_url: str, thresholds: dict[str, Any]) -> Dashboard:
    from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
    from grafana_foundation_sdk.builders.common import (
        GraphThresholdsStyleConfig,
        ReduceDataOptions,
        StackingConfig,
        VizLegendOptions,
    )
    from grafana_foundation_sdk.builders.dashboard import (
        Dashboard,
        DashboardLink,
        DatasourceVariable,
        QueryVariable,
        Row,
        ThresholdsConfig,
    )
    from grafana_foundation_sdk.builders.prometheus import Dataquery
    from grafana_foundation_sdk.models.common import (
        BigValueGraphMode,
        GraphThresholdsStyleMode,
        LegendDisplayMode,
        LegendPlacement,
        StackingMode,
    )
    from grafana_foundation_sdk.models.dashboard import (
        DashboardLinkType,
        DataSourceRef,
        Threshold,
        ThresholdsMode,
        VariableRefresh,
        VariableSort,
    )
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

    ds = DataSourceRef(type_val="prometheus", uid="${datasource}")
    sel = f'{service_label}=~"$service", instance=~"$shard", target=~"$target"'

    def q(expr: str, legend: str = "", ref: str = "A") -> Dataquery:
        d = Dataquery().expr(expr).ref_id(ref).datasource(ds)
        return d.legend_format(legend) if legend else d

    def instant_table(expr: str) -> Dataquery:
        return q(expr).instant().format(PromQueryFormat.TABLE)

    def steps(*pairs: tuple[float | None, str]) -> ThresholdsConfig:
        return (
            ThresholdsConfig()
            .mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=v, color=c) for v, c in pairs])
        )

    def ts(title_: str, *targets: Dataquery, unit: str = "short", desc: str = "") -> timeseries.Panel:
        p = timeseries.Panel().title(title_).datasource(ds).unit(unit).height(8).span(12)
        p = p.legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
        )
        for t in targets:
            p = p.with_target(t)
        return p.description(desc) if desc else p

    def st(title_: str, expr: str, th: ThresholdsConfig, desc: str) -> stat.Panel:
        return (
            stat.Panel()
            .title(title_)
            .description(desc)
            .datasource(ds)
            .with_target(q(expr))
            .graph_mode(BigValueGraphMode.AREA)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .thresholds(th)
            .height(4)
            .span(4)
        )

    growth_limit = float(thresholds.get("growth_per_minute", 10))
    lag_limit = float(thresholds.get("lag_seconds", 5))
    blocked_classes = str(thresholds.get("blocked_classes", "channel|select|sync"))
    findings = f"{ui_url}/api/v1/findings"
    green_red = steps((None, "green"), (1, "red"))

    b = (
        Dashboard(title)
        .uid(uid)
        .description(
            "Goroutine leaks found by grprof serve (docs/metrics.md): fleet, targets, growth, "
            "blocked goroutines, scrape health. Generated by `grprof dashboard`."
        )
        .tags(["grprof", "go", "goroutines"])
        .editable()
        .refresh("30s")
        .time("now-6h", "now")
        .links(
            [
                DashboardLink("grprof findings")
                .type(DashboardLinkType.LINK)
                .url(findings)
                .target_blank(True)
                .tooltip("grprof's API: every finding with its cause, fix and stack")
            ]
        )
        .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
        .with_variable(
            QueryVariable("service")
            .label("Service")
            .description(f"the targets' `{service_label}` label (grprof dashboard --service-label)")
            .datasource(ds)
            .query(f"label_values(grprof_target_up, {service_label})")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            QueryVariable("shard")
            .label("Shard (grprof replica)")
            .description("the grprof serve replica that scrapes the target: Prometheus' instance label")
            .datasource(ds)
            .query(f'label_values(grprof_target_up{{{service_label}=~"$service"}}, instance)')
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
        .with_variable(
            QueryVariable("target")
            .label("Target")
            .datasource(ds)
            .query(
                f'label_values(grprof_target_up{{{service_label}=~"$service", instance=~"$shard"}}, target)'
            )
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )

    # Fleet overview
    b = b.with_row(Row("Fleet overview"))
    b = b.with_panel(
        st(
            "Targets leaking",
            f'count(sum by (target) (grprof_leaked_goroutines{{verdict="leak", {sel}}}) > 0) or vector(0)',
            green_red,
            "Targets with at least one confirmed leak finding.",
        )
    )
    b = b.with_panel(
        st(
            "Leaked goroutines",
            f'sum(grprof_leaked_goroutines{{verdict="leak", {sel}}}) or vector(0)',
            green_red,
            "Goroutines in confirmed leak findings, all targets.",
        )
    )
    b = b.with_panel(
        st(
            "Suspects",
            f'sum(grprof_leak_suspects{{verdict="suspect", {sel}}}) or vector(0)',
            steps((None, "green"), (1, "yellow")),
            "Suspect findings: growth grprof cannot yet call a leak.",
        )
    )
    b = b.with_panel(
        st(
            "Targets down",
            f"count(grprof_target_up{{{sel}}} == 0) or vector(0)",
            green_red,
            "Targets whose latest goroutine scrape failed.",
        )
    )
    b = b.with_panel(
        st(
            "Targets",
            f"count(grprof_target_up{{{sel}}}) or vector(0)",
            steps((None, "blue")),
            "Targets scraped by the selected replicas.",
        )
    )
    b = b.with_panel(
        st(
            "Goroutines",
            f"sum(grprof_target_goroutines{{{sel}}}) or vector(0)",
            steps((None, "blue")),
            "Goroutines in the targets' latest snapshots.",
        )
    )
    b = b.with_panel(
        bargauge.Panel()
        .title("Leaked goroutines by category")
        .datasource(ds)
        .with_target(
            q(f'sum by (category) (grprof_leaked_goroutines{{verdict="leak", {sel}}})', "{{category}}")
        )
        .thresholds(steps((None, "orange")))
        .height(8)
        .span(8)
    )
    b = b.with_panel(
        table.Panel()
        .title("Findings by target")
        .description(f"Open the target's findings in grprof: {findings}?target=<target>")
        .datasource(ds)
        .with_target(instant_table(f"sum by (target, verdict, category) (grprof_leak_suspects{{{sel}}})"))
        .height(8)
        .span(16)
    )

    # Per target
    b = b.with_row(Row("Per target"))
    b = b.with_panel(ts("Goroutines per target", q(f"grprof_target_goroutines{{{sel}}}", "{{target}}")))
    b = b.with_panel(
        ts(
            "Findings per target",
            q(f"sum by (target, verdict) (grprof_leak_suspects{{{sel}}})", "{{target}} {{verdict}}"),
            desc="Findings of the latest detection run, by verdict.",
        )
    )
    b = b.with_panel(
        table.Panel()
        .title("Largest goroutine groups")
        .description("Each target's 10 largest groups of its latest snapshot: site, state, signature.")
        .datasource(ds)
        .with_target(instant_table(f"topk(10, grprof_group_goroutines{{{sel}}})"))
        .height(8)
        .span(24)
    )

    # Growth
    b = b.with_row(Row("Growth"))
    growth = ts(
        "Growth (goroutines per minute)",
        q(f"grprof_goroutines_growth_rate{{{sel}}}", "{{target}}"),
        unit="short",
        desc=f"Robust slope over the detection window; GoroutineGrowth fires above {growth_limit:g}/min "
        "(averaged, grprof rules).",
    )
    growth = growth.thresholds(steps((None, "green"), (growth_limit, "red"))).thresholds_style(
        GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE)
    )
    b = b.with_panel(growth)
    b = b.with_panel(
        table.Panel()
        .title("Fastest growing targets")
        .datasource(ds)
        .with_target(instant_table(f"topk(10, grprof_goroutines_growth_rate{{{sel}}})"))
        .height(8)
        .span(12)
    )

    # Blocked by wait class
    b = b.with_row(Row("Blocked goroutines by wait class"))
    b = b.with_panel(
        ts(
            "Goroutines by wait class",
            q(f"sum by (class) (grprof_blocked_goroutines{{{sel}}})", "{{class}}"),
            desc="Latest snapshot's goroutines by wait-reason class (running: not blocked).",
        ).stacking(StackingConfig().mode(StackingMode.NORMAL))
    )
    b = b.with_panel(
        ts(
            f"Share blocked on {blocked_classes.replace('|', ', ')}",
            q(
                f'sum by (target) (grprof_blocked_goroutines{{class=~"{blocked_classes}", {sel}}})'
                f" / sum by (target) (grprof_target_goroutines{{{sel}}})",
                "{{target}}",
            ),
            unit="percentunit",
        )
    )

    # Scrape health
    b = b.with_row(Row("Scrape health"))
    b = b.with_panel(
        ts(
            "Targets up",
            q(f"grprof_target_up{{{sel}}}", "{{target}}"),
            desc="1: the latest goroutine scrape succeeded.",
        )
        .min(0)
        .max(1)
        .span(8)
    )
    lag = ts(
        "Scrape lag",
        q(f"max by (instance, target) (grprof_scrape_lag_seconds{{{sel}}})", "{{instance}} {{target}}"),
        unit="s",
        desc="How late scrapes start; above the jitter (10 % of the interval) grprof is overloaded.",
    ).span(8)
    lag = lag.thresholds(steps((None, "green"), (lag_limit, "red"))).thresholds_style(
        GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE)
    )
    b = b.with_panel(lag)
    b = b.with_panel(
        ts(
            "Since last successful scrape",
            q(f"time() - grprof_target_last_success_timestamp_seconds{{{sel}}}", "{{target}}"),
            unit="s",
        ).span(8)
    )
    b = b.with_panel(
        ts(
            "Scrape duration p95 by kind",
            q(
                "histogram_quantile(0.95, sum by (le, kind) "
                f"(rate(grprof_scrape_duration_seconds_bucket{{{sel}}}[$__rate_interval])))",
                "{{kind}}",
            ),
            unit="s",
        )
    )
    return b.with_panel(
        ts(
            "Scrape failures by result",
            q(
                f'sum by (result) (rate(grprof_scrapes_total{{result!="ok", {sel}}}[$__rate_interval]))',
                "{{result}}",
            ),
            unit="reqps",
        )
    )


def panels(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel of dashboard JSON, rows' collapsed panels included."""
    for p in data.get("panels", []):
        yield p
        yield from p.get("panels", [])


def queries(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and query variable."""
    out = [(p.get("title", ""), t["expr"]) for p in panels(data) for t in p.get("targets", []) if "expr" in t]
    for v in data.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            query = v["query"]
            text = query.get("query", "") if isinstance(query, dict) else query
            out.append((f"variable {v['name']}", text))
    return out


def promql_for_check(expr: str) -> str:
    """A query with Grafana's variables replaced, for Prometheus' parser; `label_values(M, L)`
    (a Grafana function, not PromQL) becomes its series selector M."""
    m = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)\s*", expr, re.S)
    if m:
        expr = m.group(1)
    for var, value in sorted(VARIABLE_STAND_INS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(var, value)
    return expr
