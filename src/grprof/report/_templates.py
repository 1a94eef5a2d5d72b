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
