"""Hostile dumps through the HTML report: markup in every string a dump or a finding carries.

Go function names, file paths, label keys and values, panic messages, source names and the
text of findings reach the page. The dumps here are debug=2 text made up in the test and read
by the real parser; each carries the payloads below. The page must show them as text, never as
markup: parsed with `html.parser` it has only the elements and attributes the templates emit,
no event-handler attributes, one script and one style (exactly those the CSP hashes), and in
Chromium no dialog opens and the Content-Security-Policy reports no violation.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from html.parser import HTMLParser

import pytest
from test_html import ALLOWED_TAGS, Browser, browser, needs_chromium  # noqa: F401 (a fixture)

import grprof
from grprof.detect.detector import Options, detect
from grprof.detect.model import Evidence, Finding, SourceReport
from grprof.model import Snapshot
from grprof.report._templates import content_security_policy, environment
from grprof.report.html import render
from grprof.report.model import GroupFilter, Report, build_report

PAYLOADS = (
    "<script>alert(1)</script>",
    '"onload="x',
    "</style><script>",
    "'--><img src=x onerror=alert(1)>",
    "{{7*7}}",
)
MARKUP = PAYLOADS[:4]
"""The payloads with characters HTML must escape (`{{7*7}}` is plain text to HTML)."""
ALL = " ".join(PAYLOADS)

# Every attribute the templates emit (html.parser lower-cases names: viewBox -> viewbox).
ALLOWED_ATTRS = {
    "lang", "charset", "name", "content", "http-equiv", "class", "id", "href", "title", "type",
    "placeholder", "aria-label", "data-fn", "xmlns", "width", "height", "viewbox", "font-family",
    "font-size", "data-char-width", "data-total", "data-hidden-nodes", "data-id", "data-parent",
    "data-depth", "data-function", "data-count", "data-self", "data-loc", "data-label",
    "data-verdict", "data-finding", "x", "y", "fill", "rx", "text-anchor",
}  # fmt: skip


def q(s: str) -> str:
    """A Go-quoted string (as the runtime prints label keys and values)."""
    return json.dumps(s, ensure_ascii=False)


def dump(k: int, crash: bool) -> bytes:
    """The k-th debug=2 dump of a service whose handlers leak: five groups, one per payload,
    growing 5 a dump, their creator gone; the crash ends with a panic whose every string is hostile."""
    lines: list[str] = []
    if crash:
        lines += [f"panic: {ALL}", f"\t[recovered] {PAYLOADS[3]}", "", "goroutine 1 [running]:"]
        lines += [f"main.{PAYLOADS[0]}(...)", f"\t/app/{PAYLOADS[3]}/{PAYLOADS[2]}.go:12 +0x1d"]
    else:
        lines += ["goroutine 1 [select]:"]
    lines += ["main.main()", "\t/app/main.go:5 +0x1d", ""]
    for i, p in enumerate(PAYLOADS):
        for j in range(5 * (k + 1)):
            labels = f"{q('k')}: {q(p)}, {q(p)}: {q(ALL)}"
            lines += [
                f"goroutine {100 + 1000 * i + j} [chan receive, {3 + k} minutes labels:{{{labels}}}]:",
                f"main.(*T[{p}]).Wait(0xc000010000)",
                f"\t/src/{p}.go:{20 + i} +0x3d",
                f"example.com/{p}.Run()",
                "\t/src/run.go:7 +0x1",
                f"created by main.spawn{i} in goroutine 99",
                f"\t/app/{p}.go:9 +0x25",
                "",
            ]
    return "\n".join(lines).encode()


def snapshots() -> list[Snapshot]:
    return [grprof.load(dump(k, crash=k == 2), name=f"{PAYLOADS[k]}.txt") for k in range(3)]


def hostile_finding(f: Finding, n: int, id: str) -> Finding:
    """`f` with every free-text field carrying the payloads, about the group of track `id`."""
    p = PAYLOADS[n % len(PAYLOADS)]
    return dataclasses.replace(
        f,
        id=id,
        members=(),
        verdict="suspect" if n % 2 else "leak",
        category=p,
        title=f"{p} title {ALL}",
        explanation=f"explained: {ALL}",
        fix=f"fix: {ALL}",
        state=p,
        evidence=[Evidence("growth", f"evidence {ALL}")],
        source=SourceReport(f"/src/{p}.go", 3, p, f"snippet {ALL}", f"go {p}()", p, True, f"do {ALL}"),
    )


@pytest.fixture(scope="module")
def report() -> Report:
    snaps = snapshots()
    d = detect(snaps, Options(interval=60.0))
    assert d.findings, "the leaking groups are found"
    # Five findings: one creator goroutine starting five different functions is not one unit.
    real, *others = d.findings
    assert len(others) == 4 and not real.members
    # A finding about each other group, leak or suspect, with hostile text everywhere.
    hostile = [hostile_finding(real, n, o.id) for n, o in enumerate(others, 1)]
    d = dataclasses.replace(d, findings=[*hostile, real])
    # The filter's patterns are shown too; this one matches nothing.
    flt = GroupFilter(exclude=re.compile(re.escape(PAYLOADS[2]) + "x^"))
    return build_report(snaps, flt=flt, detection=d)


@pytest.fixture(scope="module")
def page(report: Report) -> str:
    return render(report)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.comments: list[str] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.raw:
            self._in = tag
            self.raw[tag].append("")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self.raw[self._in][-1] += data
        else:
            self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


def b64sha(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_the_dumps_carry_the_payloads(report: Report) -> None:
    s = report.snapshots[-1].snapshot
    assert s.prologue.startswith(f"panic: {ALL}")
    functions = {f.function for g in s.goroutines for f in g.frames}
    files = {f.file for g in s.goroutines for f in g.frames}
    labels = {(k, v) for g in s.goroutines for k, v in g.labels.items()}
    for p in PAYLOADS:
        assert f"main.(*T[{p}]).Wait" in functions and f"/src/{p}.go" in files
        assert ("k", p) in labels and (p, ALL) in labels
    assert f"main.{PAYLOADS[0]}" in functions
    assert {f.verdict for f in report.findings} == {"leak", "suspect"}


def test_only_the_template_markup_is_markup(page: str) -> None:
    doc = parse(page)
    tags = {t for t, _ in doc.tags}
    assert tags <= ALLOWED_TAGS, tags - ALLOWED_TAGS
    assert not {"img", "iframe", "object", "embed", "link", "base", "form"} & tags
    assert doc.comments == []  # `-->` closed nothing and opened nothing
    for tag, attrs in doc.tags:
        assert set(attrs) <= ALLOWED_ATTRS, (tag, set(attrs) - ALLOWED_ATTRS)
        assert not any(k.startswith("on") or k in {"src", "style", "srcdoc"} for k in attrs), (tag, attrs)
        for k, v in attrs.items():
            if k == "href":
                assert v is not None and v.startswith("#"), v
            assert "javascript:" not in (v or "").lower(), (tag, k, v)
    # One script and one style, without attributes: the template's, byte for byte.
    scripts = [a for t, a in doc.tags if t == "script"]
    styles = [a for t, a in doc.tags if t == "style"]
    assert scripts == [{}] and styles == [{}]
    env = environment()
    assert doc.raw["script"] == [env.get_template("report.js.j2").render()]
    assert doc.raw["style"] == [env.get_template("report.css.j2").render()]


def test_payloads_appear_only_escaped(page: str) -> None:
    for p in MARKUP:
        assert p not in page, p  # never raw, anywhere
    # Escaped, they are there: text in the page and attribute values (which decode to them).
    doc = parse(page)
    text = "".join(doc.text)
    for p in PAYLOADS:
        assert p in text, p
    assert "49" not in text  # `{{7*7}}` is not a template expression either
    values = " ".join(v or "" for _, a in doc.tags for v in a.values())
    for p in PAYLOADS:
        assert p in values, p
    # Every field that carries them, in the text.
    for needle in (
        f"panic: {ALL}",  # the crash banner and the summary's prologue
        f"main.{PAYLOADS[0]}",  # the crashed goroutine's function
        f"/app/{PAYLOADS[3]}/{PAYLOADS[2]}.go:12",  # its file
        f"explained: {ALL}", f"fix: {ALL}", f"evidence {ALL}", f"snippet {ALL}", f"do {ALL}",
        f"{PAYLOADS[1]}.txt",  # a source name
        f"{PAYLOADS[2]}x^",  # the filter's pattern
    ):  # fmt: skip
        assert needle in text, needle
    for p in PAYLOADS:
        assert f"{p} ({15})" in text  # a label value with its count
        assert f"main.(*T[{p}]).Wait" in text


def test_csp_hashes_the_exact_style_and_script(page: str) -> None:
    doc = parse(page)
    metas = [a for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert len(metas) == 1
    csp = metas[0]["content"]
    assert csp is not None
    (script,), (style,) = doc.raw["script"], doc.raw["style"]
    assert csp == content_security_policy(style, script)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'sha256-{b64sha(script)}'"
    assert directives["style-src"] == f"'sha256-{b64sha(style)}'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # The CSP is the first thing in the head a payload could follow.
    assert page.index("Content-Security-Policy") < page.index("<title>")


def test_crash_comes_first_with_its_message(page: str, report: Report) -> None:
    i = page.index('<section class="crash"')
    assert i < page.index('id="findings"') < page.index('class="snapshot"')
    text = "".join(parse(page[i : page.index("</section>", i)]).text)
    assert f"panic: {ALL}" in text and "Crashed here:" in text and f"main.{PAYLOADS[0]}" in text
    last = page.index('id="snap2"')
    first_row = re.search(r'<tr id="s2-g-[^"]+"><td class="num">1<div class="tags">(.*?)</div>', page[last:])
    assert first_row and "crashed here" in first_row.group(1)


def test_flame_colours_the_findings_groups(page: str) -> None:
    doc = parse(page)
    frames = [a for t, a in doc.tags if t == "g" and "f" in (a.get("class") or "").split()]
    leak = [a for a in frames if a.get("data-verdict") == "leak"]
    suspect = [a for a in frames if a.get("data-verdict") == "suspect"]
    assert leak and suspect
    for a in leak + suspect:
        assert a["data-verdict"] in (a.get("class") or "").split()
        assert f"{a['data-verdict']} finding: " in (a.get("data-finding") or "")
    fns = {a["data-function"] for a in leak + suspect}
    assert fns <= {f"main.(*T[{p}]).Wait" for p in PAYLOADS} | {f"example.com/{p}.Run" for p in PAYLOADS}
    # A frame shared with healthy goroutines (main.main's root) keeps its colour.
    root = [a for a in frames if "root" in (a.get("class") or "").split()]
    assert root and all("data-verdict" not in a for a in root)
    assert "leak finding" in "".join(parse(page).text)  # the legend


# -- a real browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def page_url(page: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hostile") / "report.html"
    path.write_text(page, encoding="utf-8")
    return path.as_uri()


def settle(b: Browser) -> None:
    b.js("new Promise(r => setTimeout(r, 100))")


@needs_chromium
def test_browser_runs_no_payload(browser: Browser, page_url: str) -> None:  # noqa: F811
    b = browser
    b.open(page_url)
    settle(b)
    assert b.js("document.scripts.length") == 1
    assert b.js("document.querySelectorAll('img,iframe,object,embed,link,base').length") == 0
    handlers = "[...document.querySelectorAll('*')].some(e=>[...e.attributes].some(a=>/^on/i.test(a.name)))"
    assert b.js(handlers) is False
    # The script works on the hostile page: zoom into a hostile frame, search, find, hover.
    fn = f"main.(*T[{PAYLOADS[3]}]).Wait"
    sel = f"#flame2 g.f[data-function={json.dumps(fn)}] rect"
    b.click(sel)
    assert b.js("location.hash").startswith("#zoom=flame2-n")
    b.click(f"#snap2 button.find[data-fn={json.dumps(fn)}]")
    assert b.js("document.querySelectorAll('#flame2 g.match').length") == 1
    b.js("document.querySelector('#snap2 input.search').value = ''")  # `find` filled it in
    b.click("#snap2 input.search")
    b.send("Input.insertText", text=PAYLOADS[2])  # a regular expression matching itself
    assert b.js("document.querySelector('#snap2 .matched').textContent").startswith("Matched 15 of")
    x, y = b.js(
        f"(function(){{var r=document.querySelector({json.dumps(sel)}).getBoundingClientRect();"
        "return [r.left+3,r.top+3]})()"
    )
    b.mouse("mouseMoved", x, y)
    status = b.js("document.querySelector('#snap2 .status').textContent")
    assert status.startswith(fn) and "finding: " in status
    # Every details element opened: what they show stays text.
    b.js("document.querySelectorAll('details').forEach(d => d.open = true)")
    settle(b)
    assert b.js("window.__dialogs") == []
    assert not [e for e in b.events if e.get("method") == "Page.javascriptDialogOpening"]
    assert b.csp_violations() == []
    assert b.console_errors() == []


# -- the highlighted fix ---------------------------------------------------------------------


class FixBlocks(HTMLParser):
    """The text of each `<pre class="fix">` and the tags inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.inner: list[tuple[str, dict[str, str | None]]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self._depth += 1
            self.inner.append((tag, dict(attrs)))
        elif tag == "pre" and "fix" in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self.blocks.append("")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.blocks[-1] += data


def fix_blocks(page: str) -> FixBlocks:
    p = FixBlocks()
    p.feed(page)
    p.close()
    return p


def test_hostile_fix_is_highlighted_text(page: str, report: Report) -> None:
    """Each finding's fix is a highlighted block whose text is exactly the fix: the payloads
    are tokenised like any Go text (a `1` inside `alert(1)` is a number span) and every token
    escaped, so the only markup inside is `<code>` and `<span class="hl-X">`."""
    doc = fix_blocks(page)
    fixes = [f.fix for f in report.detection.findings if f.fix] if report.detection else []
    assert fixes and f"fix: {ALL}" in fixes
    assert sorted(doc.blocks) == sorted(fixes)
    assert {t for t, _ in doc.inner} == {"code", "span"}
    spans = {a.get("class") for t, a in doc.inner if t == "span"}
    assert spans <= {"hl-k", "hl-t", "hl-b", "hl-s", "hl-n", "hl-c"} and "hl-n" in spans
    assert all(set(a) == {"class"} for _, a in doc.inner)


def test_highlight_go_keeps_the_text_and_marks_go() -> None:
    from grprof.report._templates import highlight_go

    code = 'func f() {\n\tdefer close(c) // done <b>\n\treturn fmt.Errorf("x %d", 3)\n}\n'
    out = str(highlight_go(code))
    assert '<span class="hl-k">func' in out and '<span class="hl-b">close</span>' in out
    assert '<span class="hl-s">&quot;x %d&quot;</span>' in out and '<span class="hl-n">3</span>' in out
    assert '<span class="hl-c">// done &lt;b&gt;' in out
    for text in (code, ALL, "", "\n\n\t", "x := 'a' + `raw\n<`"):
        got = fix_blocks(f'<pre class="fix">{highlight_go(text)}</pre>').blocks
        assert got == [text], text
