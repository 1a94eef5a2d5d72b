"""The templates every HTML page of grprof is rendered from (`grprof/data/templates`): one
Jinja2 environment with autoescape on, and the Content-Security-Policy of a self-contained page.

Strings from a dump (function names, label values, panic messages) are attacker-controlled:
they are escaped by the template engine, never by hand, and a page runs nothing but its own
style and script, allowed by hash.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from typing import Any

import jinja2
from markupsafe import Markup
from pygments.lexers.go import GoLexer  # type: ignore[import-untyped]
from pygments.token import Comment, Keyword, Name, Number, String  # type: ignore[import-untyped]

TEMPLATES = "data/templates"
"""Where the templates live, inside the `grprof` package."""


def _escape(value: Any) -> Markup:
    """Autoescape's output step, with the standard library's escaping.

    `Environment(finalize=...)` sees every `{{ ... }}` value before autoescape: a value already
    `Markup` (our CSS, script and CSP) passes; anything else is escaped here with
    `html.escape(quote=True)`, which escapes the same five characters as MarkupSafe but
    spells quotes `&quot;` / `&#x27;`, as the SVG of `grprof.report.flame` always did.
    """
    if isinstance(value, Markup):
        return value
    if hasattr(value, "__html__"):
        return Markup(value.__html__())
    return Markup(html.escape(str(value), quote=True))


_HIGHLIGHT = (
    (Comment, "c"),
    (String, "s"),
    (Number, "n"),
    (Keyword.Type, "t"),
    (Keyword, "k"),
    (Name.Builtin, "b"),
)
"""Pygments token types (a subtype matches its parent: `Keyword.Declaration` is a keyword) to
the `hl-*` classes the stylesheets colour, most specific first. Anything else (names,
operators, punctuation, text, errors) is plain text."""


@functools.lru_cache(maxsize=1)
def _go_lexer() -> Any:
    # The text must come back exactly: no newline added or stripped, tabs kept.
    return GoLexer(stripnl=False, ensurenl=False, tabsize=0)


def highlight_go(code: Any) -> Markup:
    """Go code as HTML: its text escaped, keywords, types, builtins, strings, numbers and
    comments in `<span class="hl-X">` (coloured by the stylesheets, dark and light).

    Why this way: the pages' Content-Security-Policy forbids `style` attributes, so colours
    come from classes; a fix is finding text (a rule's, or a finding's from a stored or hostile
    source), so every token's text goes through the environment's own escaping (`_escape`), and
    the only markup added is the span with a fixed class name. The text of the result is
    exactly `code`; text that is not Go comes out as plain text with a few spans.
    """
    text = str(code)
    out: list[str] = []
    run_cls: str | None = None
    run: list[str] = []

    def flush() -> None:
        if run:
            body = "".join(_escape(t) for t in run)
            out.append(f'<span class="hl-{run_cls}">{body}</span>' if run_cls else body)
            run.clear()

    for ttype, value in _go_lexer().get_tokens(text):
        cls = next((c for t, c in _HIGHLIGHT if ttype in t), None)
        if cls != run_cls and value.strip():
            flush()
            run_cls = cls
        run.append(value)
    flush()
    return Markup("".join(out))


def make_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        finalize=_escape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["highlight_go"] = highlight_go
    return env


@functools.lru_cache(maxsize=8)
def environment(templates: str | None = None) -> jinja2.Environment:
    """The Jinja2 environment of the report: the package's templates, autoescape on.

    `templates`: a directory searched first, so a file there named like one of the package's
    (`report.html.j2`, `report_snapshot.html.j2`, `report.css.j2`, ...) replaces it.
    """
    package = jinja2.PackageLoader("grprof", TEMPLATES)
    loader: jinja2.BaseLoader = package
    if templates is not None:
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(templates), package])
    return make_environment(loader)


def csp_hash(text: str) -> str:
    """The CSP source expression allowing an inline element whose text is exactly `text`."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(css: str, script: str | None = None) -> str:
    """Nothing may load; only the page's own style and script (if it has one) run, by hash (no
    inline handlers, no `javascript:` URLs, no `style` attributes)."""
    scripts = f" script-src {csp_hash(script)};" if script is not None else ""
    return f"default-src 'none'; style-src {csp_hash(css)};{scripts} base-uri 'none'; form-action 'none'"
