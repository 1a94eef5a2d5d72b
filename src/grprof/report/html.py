"""The HTML report: one self-contained page (inline CSS, SVG and script; nothing fetched).

It renders the same `Report` as the text and JSON outputs: a summary and state counts per
snapshot, the groups table with collapsible stacks, and an interactive icicle of the stack tree.
Every string from a dump goes through `escape`: Go names carry `<`, `>`, `&`, quotes and brackets.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

import grprof
from grprof.detect.model import Finding
from grprof.formats.traceback import crashed_goroutine
from grprof.model import Frame, Group
from grprof.report.flame import render_svg
from grprof.report.model import Report, SnapshotReport

MAX_GROUPS = 1000
"""Groups listed per snapshot; the rest are counted in a note (the flame graph still has them)."""
TOP_LABEL_VALUES = 3
FLAME_WIDTH = 1200


def render(report: Report, *, max_groups: int = MAX_GROUPS, flame_width: int = FLAME_WIDTH) -> str:
    """The whole page as a string; it loads nothing from anywhere, so it works from file://."""
    title = "grprof: " + ", ".join(s.snapshot.source for s in report.snapshots)
    body = [
        _header(report),
        _findings(report),
        _toc(report),
        *(_snapshot(i, s, max_groups, flame_width) for i, s in enumerate(report.snapshots)),
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Forbid every fetch, so a stray reference fails loudly instead of phoning home.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        + "\n".join(b for b in body if b)
        + f"\n<script>{SCRIPT}</script>\n</body></html>\n"
    )


# -- page parts ------------------------------------------------------------------------------


def _header(report: Report) -> str:
    f = report.filter
    filt = [f"similarity <b>{escape(report.similarity)}</b>"]
    if f.include is not None:
        filt.append(f"include <code>{escape(f.include.pattern)}</code>")
    if f.exclude is not None:
        filt.append(f"exclude <code>{escape(f.exclude.pattern)}</code>")
    if f.min_count > 1:
        filt.append(f"min count {f.min_count}")
    return (
        f'<header><h1>Goroutine report</h1><p class="meta">grprof {escape(grprof.__version__)} · '
        + " · ".join(filt)
        + "</p></header>"
    )


def _findings(report: Report) -> str:
    """Leak findings first: most certain and largest first, each with cause, evidence and fix."""
    findings = report.findings
    if report.detection is None:
        return ""
    thin = report.detection.thin
    note = f'<p class="thin"><b>Not enough evidence for a verdict:</b> {escape(thin)}</p>' if thin else ""
    if not findings:
        body = note or '<p class="ok">No leak found.</p>'
        return f'<section id="findings"><h2>Findings</h2>{body}</section>'
    rows = "".join(_finding(n, f) for n, f in enumerate(findings, 1))
    return (
        f'<section id="findings"><h2>Findings</h2>{note}<table class="findings"><thead><tr>'
        "<th>verdict</th><th>confidence</th><th>category</th><th>count</th><th>growth</th>"
        f"<th>site</th><th>what</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _finding(n: int, f: Finding) -> str:
    growth = f"{f.growth_per_minute:+.3g}/min" if f.growth_per_minute else "-"
    site = _frame(f.site) if f.site else "-"
    evidence = "".join(f"<li>{escape(e.summary)}</li>" for e in f.evidence)
    source = ""
    if f.source is not None:
        src = f.source
        source = (
            f"<p>Source <code>{escape(src.file)}:{src.line}</code> in <code>{escape(src.function)}</code>"
            + (f" · pattern <b>{escape(src.pattern)}</b>" if src.pattern else "")
            + f"</p><pre>{escape(src.snippet)}</pre>"
            + (f"<p>Spawned by</p><pre>{escape(src.go_statement)}</pre>" if src.go_statement else "")
            + (f"<p>Suggestion: {escape(src.suggestion)}</p>" if src.suggestion else "")
        )
    members = "".join(
        f"<li>{m.count:,} · {escape(m.state)} · {_frame(m.site) if m.site else '-'}</li>" for m in f.members
    )
    if members:
        members = f"<p>Related groups (one unit)</p><ul>{members}</ul>"
    detail = f"<p>{escape(f.explanation)}</p><ul>{evidence}</ul>{members}{source}" + (
        f"<p>Fix</p><pre>{escape(f.fix)}</pre>" if f.fix else ""
    )
    return (
        f'<tr class="finding {escape(f.verdict)}" id="finding-{escape(f.id)}">'
        f'<td class="verdict">{escape(f.verdict)}</td><td class="num">{f.confidence:.0%}</td>'
        f'<td>{escape(f.category)}</td><td class="num">{_num(f.count)}</td><td class="num">{growth}</td>'
        f"<td>{site}</td><td><details><summary>{escape(f.title)}</summary>{detail}</details></td></tr>"
    )


def _toc(report: Report) -> str:
    if len(report.snapshots) < 2:
        return ""
    items = "".join(
        f'<li><a href="#snap{i}">{escape(s.snapshot.source)}</a> ({s.snapshot.total} goroutines)</li>'
        for i, s in enumerate(report.snapshots)
    )
    return f'<nav><h2>Snapshots</h2><ol class="toc">{items}</ol></nav>'


def _snapshot(i: int, sr: SnapshotReport, max_groups: int, flame_width: int) -> str:
    s = sr.snapshot
    return (
        f'<section class="snapshot" id="snap{i}"><h2>{escape(s.source)}</h2>'
        + _summary(sr)
        + _states(sr)
        + _flame(i, sr, flame_width)
        + _groups(i, sr, max_groups)
        + "</section>"
    )


def _summary(sr: SnapshotReport) -> str:
    s = sr.snapshot
    rows: list[tuple[str, str]] = [
        ("Source", escape(s.source)),
        ("Format", escape(s.format)),
        ("Profile", escape(s.profile)),
        ("Time", escape(s.time.isoformat()) if s.time else "not recorded"),
    ]
    if s.mtime is not None:
        rows.append(("File modified", escape(s.mtime.isoformat())))
    rows += [
        ("Goroutines", f"<b>{s.total}</b>"),
        (
            "Truncated",
            '<b class="warn">yes: the dump was cut, the last goroutine is partial</b>'
            if s.truncated
            else "no",
        ),
        ("Go version", escape(s.go_version) if s.go_version else "unknown"),
    ]
    crashed = crashed_goroutine(s)
    if crashed is not None:
        rows.append(("Crashed", f'<b class="warn">goroutine {crashed}</b> (its group is listed first)'))
    if s.format != "debug=2":
        rows.append(("States", "inferred from the stacks: this format carries no goroutine states"))
    if sr.hidden_groups:
        rows.append(("Hidden by filter", f"{sr.hidden_groups} groups ({sr.hidden_goroutines} goroutines)"))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    prologue = f'<pre class="prologue">{escape(s.prologue)}</pre>' if s.prologue.strip() else ""
    return f'<table class="summary">{table}</table>{prologue}'


def _states(sr: SnapshotReport) -> str:
    total = sum(sr.states.values()) or 1
    rows = "".join(
        f'<tr><td>{escape(state)}</td><td class="num">{n}</td>'
        f'<td class="bar"><span style="width:{n / total * 100:.1f}%"></span></td></tr>'
        for state, n in sr.states.items()
    )
    head = "<tr><th>State</th><th>Goroutines</th><th></th></tr>"
    return f'<h3>States</h3><table class="states">{head}{rows}</table>'


def _flame(i: int, sr: SnapshotReport, width: int) -> str:
    svg = render_svg(sr.tree, width=width, svg_id=f"flame{i}")
    return (
        '<h3>Flame graph</h3><div class="flamebox">'
        '<div class="controls"><input type="search" class="search" placeholder="Search functions (regex)" '
        'aria-label="Search functions"> <button type="button" class="reset">Reset zoom</button> '
        '<span class="matched"></span></div>'
        '<p class="hint">Click a frame to zoom into it; click the top bar or "Reset zoom" to zoom out. '
        "Width is proportional to goroutines.</p>"
        f'<div class="svgwrap">{svg}</div><div class="status">&nbsp;</div></div>'
    )


def _groups(i: int, sr: SnapshotReport, max_groups: int) -> str:
    aggregated = sr.snapshot.table.aggregated
    # A crash's failing goroutine first, then largest first.
    crashed_id = crashed_goroutine(sr.snapshot)
    crashed = None if crashed_id is None else next((g for g in sr.groups if crashed_id in g.ids), None)
    ordered = sr.groups if crashed is None else [crashed, *(g for g in sr.groups if g is not crashed)]
    shown = ordered[:max_groups]
    head = (
        "<tr><th>#</th><th>Goroutines</th><th>State</th><th>Max wait</th><th>Leaked</th>"
        '<th>Orphans</th><th title="The innermost frame outside the Go runtime and standard library">'
        "Site and stack</th><th>Created by</th>"
        "<th>Labels</th></tr>"
    )
    rows = "".join(_group_row(f"s{i}", n, g, aggregated, g is crashed) for n, g in enumerate(shown, 1))
    rest = ordered[max_groups:]
    note = (
        f'<p class="note">{len(rest)} smaller groups ({sum(g.count for g in rest)} goroutines) are not '
        "listed; they are in the flame graph. Narrow the report with --filter or --min-count.</p>"
        if rest
        else ""
    )
    if not shown:
        return '<h3>Groups</h3><p class="note">No groups.</p>'
    return f'<h3>Groups ({len(sr.groups)})</h3><table class="groups">{head}{rows}</table>{note}'


_CRASHED = (
    '<div class="tags"><b class="warn" title="The goroutine the crash dump says failed">crashed</b></div>'
)
_INFERRED_TIP = "Inferred from the stack: this format carries no goroutine states"


def _group_row(snap: str, n: int, g: Group, aggregated: bool, crashed: bool = False) -> str:
    states = ", ".join(f"{escape(s)}" + (f" ({c})" if len(g.states) > 1 else "") for s, c in g.states.items())
    if g.state_inferred:
        states += f' <span class="tags" title="{_INFERRED_TIP}">(inferred)</span>'
    # Aggregated formats (debug=0/1) carry no wait times or goroutine ids: say unknown, not 0.
    wait = "–" if aggregated else (f"{g.max_wait_minutes} min" if g.max_wait_minutes else "&lt;1 min")
    orphans = "–" if aggregated else _num(len(g.orphans))
    tags = [f"{g.locked_to_thread} locked to thread"] if g.locked_to_thread else []
    if g.partial:
        tags.append(f'<span class="warn">{g.partial} partial (dump cut here)</span>')
    if tags:
        states += '<div class="tags">' + ", ".join(tags) + "</div>"
    return (
        # Ids carry the snapshot: the same stack in two snapshots has the same signature.
        f'<tr id="{snap}-g-{escape(g.signature)}"><td class="num">{n}{_CRASHED if crashed else ""}</td>'
        f'<td class="num"><b>{g.count}</b></td>'
        f'<td>{states}</td><td class="num">{wait}</td><td class="num">{_num(g.leaked)}</td>'
        f'<td class="num">{orphans}</td><td class="site">{_stack(g)}</td>'
        f"<td>{_frame(g.created_by) if g.created_by else '–'}</td><td>{_labels(g.labels)}</td></tr>"
    )


def _num(n: int) -> str:
    return f'<b class="warn">{n}</b>' if n else "0"


def _frame(f: Frame) -> str:
    return f'<span class="fn">{escape(f.function)}</span> <span class="loc">{escape(f.file)}:{f.line}</span>'


def _stack(g: Group) -> str:
    site = g.site
    summary = _frame(site) if site else "(no frames)"
    find = (
        f' <button type="button" class="find" data-fn="{escape(site.function)}" '
        'title="Highlight this function in the flame graph">find</button>'
        if site
        else ""
    )
    frames = "".join(f"<li>{_frame(f)}</li>" for f in g.frames)
    if g.frames_elided:
        frames += '<li class="elided">…frames elided…</li>'
    if g.created_by:
        frames += f'<li class="created">created by {_frame(g.created_by)}</li>'
    return f'{find}<details><summary>{summary}</summary><ol class="stack">{frames}</ol></details>'


def _labels(labels: dict[str, dict[str, int]]) -> str:
    def vals(v: dict[str, int]) -> Iterable[str]:
        for value, c in list(v.items())[:TOP_LABEL_VALUES]:
            yield f"{escape(value)} ({c})"
        if len(v) > TOP_LABEL_VALUES:
            yield f"+{len(v) - TOP_LABEL_VALUES} more"

    items = "".join(f"<li><code>{escape(k)}</code>: {', '.join(vals(v))}</li>" for k, v in labels.items())
    return f'<ul class="labels">{items}</ul>' if items else ""


# -- inline assets ---------------------------------------------------------------------------

CSS = """
:root{--fg:#1d232a;--muted:#5b6672;--line:#d9dee4;--warn:#b3261e;--accent:#0b63c5}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);margin:0 auto;
 padding:16px 24px 48px;max-width:1400px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);
 padding-bottom:4px;word-break:break-all}h3{font-size:15px;margin:20px 0 6px}
.meta,.hint,.note{color:var(--muted);margin:4px 0}.warn{color:var(--warn)}
code,.fn,.loc,pre,.stack{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
.loc{color:var(--muted)}
table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px solid var(--line);text-align:left;
 vertical-align:top}th{background:#f3f5f7;font-weight:600}
.summary th{width:140px}.num{text-align:right;white-space:nowrap}
.states td.bar{width:260px}.states .bar span{display:block;height:10px;background:#7aa7d8;border-radius:2px}
.groups{width:100%}.groups td{overflow-wrap:anywhere}.groups td.site{min-width:320px}
.groups td .loc{display:block}.groups .stack .loc{display:inline}
details summary{cursor:pointer}.stack{margin:4px 0 4px 18px;padding:0}
.stack li.created{list-style:none;margin-left:-18px}.stack li.elided{list-style:none;color:var(--muted)}
.labels{margin:0;padding:0;list-style:none}.tags{color:var(--muted);font-size:12px}
pre.prologue{background:#fff4f2;border:1px solid #f0c8c2;padding:8px;max-height:240px;overflow:auto;
 white-space:pre-wrap}
button.find{float:right;border:1px solid var(--line);border-radius:3px;background:#fff;cursor:pointer;
 color:var(--accent);padding:0 4px;
 font-size:11px;line-height:1.4;margin-left:6px}
#findings{border:1px solid #f0c8c2;background:#fffaf9;padding:4px 16px;margin-top:12px}
table.findings tr.leak td.verdict{color:#b3261e;font-weight:bold}
table.findings tr.suspect td.verdict{color:#8a5a00;font-weight:bold}
table.findings tr.inconclusive td.verdict{color:#1f5fa8;font-weight:bold}
table.findings pre{background:#f6f6f6;padding:6px;overflow:auto}
#findings p.ok{color:#1e6b2e}
.flamebox .controls{display:flex;gap:8px;align-items:center}
.flamebox input.search{width:320px;padding:4px 6px}.matched{color:var(--accent);font-weight:600}
.svgwrap{overflow-x:auto;border:1px solid var(--line);padding:4px;margin-top:6px}
.status{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;min-height:18px;
 color:var(--muted);padding:2px 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
svg.flame g.f{cursor:pointer}svg.flame g.f rect{stroke:#fff;stroke-width:.5}
svg.flame g.f:hover rect{stroke:#111;stroke-width:1}
svg.flame g.f text{pointer-events:none;fill:#111}
svg.flame g.f.match rect{fill:#e040c8}
svg.flame g.f.anc{opacity:.55}
svg.flame g.f.hidden{display:none}svg.flame g.f.other{cursor:default}
"""

# Hand-written, no build step. Zoom rewrites rect/text positions from the layout the SVG was
# rendered with; the fragment (#zoom=flame0-n12&search=regex) selects a zoom and a search on load.
SCRIPT = r"""
(function () {
"use strict";
var PAD = 3;
function flameLabel(name, w, cw) {
  var n = Math.floor((w - 2 * PAD) / cw);
  if (n < 3) return "";
  return name.length <= n ? name : name.slice(0, n - 1) + "\u2026";
}
function pct(a, b) { return b ? (a / b * 100).toFixed(1) + "%" : "0%"; }

function Flame(box) {
  var svg = box.querySelector("svg.flame"), wrap = svg.parentNode;
  // Rects keep the layout they were rendered with (W0 wide); the drawing fits the page (W wide).
  var W0 = +svg.getAttribute("width"), W = W0, cw = +svg.getAttribute("data-char-width");
  var H = +svg.getAttribute("height");
  var total = +svg.getAttribute("data-total");
  var els = svg.querySelectorAll("g.f"), nodes = [];
  for (var i = 0; i < els.length; i++) {
    var g = els[i], r = g.querySelector("rect");
    nodes.push({g: g, rect: r, text: g.querySelector("text"), id: +g.getAttribute("data-id"),
      parent: +g.getAttribute("data-parent"), x: +r.getAttribute("x"), w: +r.getAttribute("width"),
      count: +g.getAttribute("data-count"), fn: g.getAttribute("data-function"),
      label: g.getAttribute("data-label") || g.getAttribute("data-function")});
  }
  // Ids are document order, so nodes[id] is the node, and parents precede children.
  var self = this, zoomed = 0;
  var input = box.querySelector("input.search"), matched = box.querySelector(".matched");
  var status = box.querySelector(".status");

  function place(n, x, w) {
    n.rect.setAttribute("x", x.toFixed(3));
    n.rect.setAttribute("width", w.toFixed(3));
    n.text.setAttribute("x", (x + PAD).toFixed(3));
    n.text.textContent = flameLabel(n.label, w, cw);
  }
  this.svg = svg;
  this.fit = function () {
    W = Math.max(400, Math.floor(wrap.clientWidth - 10));
    svg.setAttribute("width", String(W));
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    self.zoom(zoomed);
  };
  this.zoom = function (id) {
    var z = nodes[id] || nodes[0], inside = [], onPath = {};
    for (var a = z; a; a = nodes[a.parent]) onPath[a.id] = true;
    var scale = W / z.w;
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      inside[i] = n === z || (n.parent >= 0 && inside[n.parent]);
      n.g.classList.toggle("anc", onPath[n.id] === true && n !== z);
      n.g.classList.toggle("hidden", !inside[i] && !onPath[n.id]);
      if (onPath[n.id]) place(n, 0, W);
      else if (inside[i]) place(n, (n.x - z.x) * scale, n.w * scale);
    }
    zoomed = z.id;
    svg.setAttribute("data-zoom", String(z.id));
  };
  this.search = function (q) {
    var re = null;
    if (q) {
      try { re = new RegExp(q, "i"); }
      catch (e) { re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i"); }
    }
    // Goroutines under a match count once even when a frame recurses.
    var hit = [], covered = [], sum = 0, frames = 0;
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      hit[i] = re !== null && i > 0 && n.fn !== "" && re.test(n.fn);
      covered[i] = hit[i] || (n.parent >= 0 && covered[n.parent]);
      n.g.classList.toggle("match", hit[i]);
      if (hit[i]) { frames++; if (!(n.parent >= 0 && covered[n.parent])) sum += n.count; }
    }
    matched.textContent = re ? "Matched " + sum + " of " + total + " goroutines (" + pct(sum, total) +
      ") in " + frames + " frames" : "";
    svg.setAttribute("data-matched", re ? String(sum) : "");
    if (input.value !== q) input.value = q;
  };
  svg.addEventListener("click", function (ev) {
    var g = ev.target.closest("g.f");
    if (!g || g.classList.contains("other")) return;
    var id = +g.getAttribute("data-id");
    if (id === zoomed && id !== 0) id = nodes[id].parent;
    self.zoom(id);
    setHash(id ? g.id : "", null);
  });
  svg.addEventListener("mouseover", function (ev) {
    var g = ev.target.closest("g.f");
    if (!g) return;
    var n = nodes[+g.getAttribute("data-id")], z = nodes[zoomed];
    var loc = g.getAttribute("data-loc");
    status.textContent = (n.fn || n.label) + " \u2014 " + n.count + " goroutines (" + pct(n.count, total) +
      " of all" +
      (zoomed ? ", " + pct(n.count, z.count) + " of zoomed" : "") + "), self " +
      g.getAttribute("data-self") + (loc ? " \u2014 " + loc : "");
  });
  box.querySelector("button.reset").addEventListener("click", function () {
    self.zoom(0);
    setHash("", null);
  });
  input.addEventListener("input", function () { self.search(input.value); setHash(null, input.value); });
}

var flames = [];
var boxes = document.querySelectorAll(".flamebox");
for (var i = 0; i < boxes.length; i++) flames.push(new Flame(boxes[i]));
function fitAll() { for (var i = 0; i < flames.length; i++) flames[i].fit(); }
var resizing = false;
window.addEventListener("resize", function () {
  if (resizing) return;
  resizing = true;
  requestAnimationFrame(function () { resizing = false; fitAll(); });
});

function params() {
  var out = {}, parts = location.hash.replace(/^#/, "").split("&");
  for (var i = 0; i < parts.length; i++) {
    var kv = parts[i].split("=");
    if (kv.length > 1) out[kv[0]] = decodeURIComponent(kv.slice(1).join("="));
  }
  return out;
}
function setHash(zoom, search) {
  var p = params();
  if (zoom !== null) p.zoom = zoom;
  if (search !== null) p.search = search;
  var s = [];
  if (p.zoom) s.push("zoom=" + encodeURIComponent(p.zoom));
  if (p.search) s.push("search=" + encodeURIComponent(p.search));
  history.replaceState(null, "", s.length ? "#" + s.join("&") : location.pathname + location.search);
}
function applyHash() {
  var p = params();
  for (var i = 0; i < flames.length; i++) {
    var f = flames[i], el = p.zoom ? document.getElementById(p.zoom) : null;
    f.zoom(el && f.svg.contains(el) ? +el.getAttribute("data-id") : 0);
    f.search(p.search || "");
  }
}
window.addEventListener("hashchange", applyHash);
fitAll();
applyHash();

// The magnifier next to a group's site searches its function in that snapshot's flame graph.
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button.find");
  if (!b) return;
  var box = b.closest("section").querySelector(".flamebox");
  var q = "^" + b.getAttribute("data-fn").replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$";
  for (var i = 0; i < flames.length; i++) if (box.contains(flames[i].svg)) flames[i].search(q);
  setHash(null, q);
  box.scrollIntoView({behavior: "smooth"});
});
})();
"""
