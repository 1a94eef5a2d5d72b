#!/usr/bin/env python3
"""Regenerate src/grprof/data/go_lines.yaml: where each standard-library function lies in
the source of each Go minor version, for the functions the recorded fixtures show.

    .venv/bin/python scripts/go_lines.py            # downloads the toolchains it lacks (Go module proxy)

For every (function, file) that a frame of tests/fixtures/{states,crash,zoo} names inside a
GOROOT, it finds the function's definition in that file of each Go release below (`func F(`,
`func (r *T) M(`, a `//go:linkname` local name, `TEXT ·F(SB)` in assembly) and writes the
first and last line of its body, merged over the patch releases of one minor version. A
frame's line then rules out every minor version whose body of that function does not hold
it. The script refuses to write if any recorded frame lies outside its own version's range.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src" / "grprof" / "data" / "go_lines.yaml"
# Several patch releases of the old minors, where grprof has no other way to tell them apart.
RELEASES = (
    "1.18.10 1.19 1.19.8 1.19.13 1.20 1.20.14 1.21.13 1.22.12 1.23.12 1.24.11 1.25.0 1.26.8 1.27.3"
).split()
FIXTURES = ("states", "crash", "zoo")
GOROOT_IN_PATH = re.compile(r"(?:/usr/local/go|/usr/lib/go-1\.\d+|toolchain@v0\.0\.1-go[^/]*)/src/(.+)$")
FUNC = re.compile(r"^func (?:\((?:\w+\s+)?(\*?)(\w+)(?:\[[^\]]*\])?\)\s*)?(\w+)(?:\[[^\]]*\])?\(")
TEXT = re.compile(r"^TEXT\s+[\w/]*·(\w+)(?:<\w+>)?\(SB\)")

Span = tuple[int, int]


def goroot(release: str) -> Path:
    env = {**os.environ, "GOTOOLCHAIN": f"go{release}", "GOFLAGS": "-mod=mod"}
    out = subprocess.run(
        ["go", "env", "GOROOT"], cwd="/tmp", env=env, capture_output=True, text=True, check=True
    )
    root = Path(out.stdout.strip())
    version = (root / "VERSION").read_text().split()[0]
    if version != f"go{release}":
        sys.exit(f"go_lines: asked for go{release}, got {version} at {root}")
    return root


class Source:
    """Function spans of one file of one release, by name (`F`, `(*T).M`, `T.M`) and linkname."""

    def __init__(self, path: Path) -> None:
        self.spans: dict[str, Span] = {}
        self.links: dict[str, str] = {}
        try:
            lines = path.read_text(errors="replace").split("\n")
        except FileNotFoundError:
            return
        if path.suffix == ".s":
            starts = [(m[1], i) for i, line in enumerate(lines, 1) if (m := TEXT.match(line))]
            for k, (name, start) in enumerate(starts):
                end = starts[k + 1][1] - 1 if k + 1 < len(starts) else len(lines)
                self.spans[name] = (start, end)
            return
        for i, line in enumerate(lines, 1):
            if line.startswith("//go:linkname "):
                parts = line.split()
                if len(parts) >= 3:
                    self.links[parts[2]] = parts[1]
            m = FUNC.match(line)
            if m is None:
                continue
            star, recv, name = m[1], m[2], m[3]
            key = name if not recv else (f"(*{recv}).{name}" if star else f"{recv}.{name}")
            if line.rstrip().endswith("}"):
                self.spans[key] = (i, i)
                continue
            end = next((j for j in range(i, len(lines)) if lines[j] == "}"), len(lines) - 1) + 1
            self.spans[key] = (i, end)

    def find(self, function: str, rel: str) -> Span | None:
        if function == "panic" and rel == "runtime/panic.go":  # how runtime.gopanic prints
            return self.spans.get("gopanic")
        slash = function.rfind("/")
        dot = function.find(".", slash + 1)
        pkg, rest = (function[:dot], function[dot + 1 :]) if dot >= 0 else (function, "")
        if pkg == rel.rsplit("/", 1)[0] and rest in self.spans:
            return self.spans[rest]
        local = self.links.get(function)
        return self.spans.get(local) if local else None


def recorded_frames() -> dict[tuple[str, str], set[tuple[int, int]]]:
    """(function, file under GOROOT/src) -> {(line, minor)} over the fixtures."""
    sys.path.insert(0, str(REPO / "src"))
    import grprof

    out: dict[tuple[str, str], set[tuple[int, int]]] = collections.defaultdict(set)
    for sub in FIXTURES:
        for p in sorted((REPO / "tests" / "fixtures" / sub).rglob("*")):
            if not p.is_file() or not (p.name.endswith((".txt", ".pb.gz")) and p.name != "skipped.txt"):
                continue
            minor = re.search(r"go1\.(\d+)", str(p.relative_to(REPO)))
            m = 26 if sub == "zoo" else int(minor[1]) if minor else None  # the zoo is Go 1.26
            for snap in grprof.load_all(p):
                for st in snap.table.stacks:
                    for f in (*st.frames, *((st.created_by,) if st.created_by else ())):
                        g = GOROOT_IN_PATH.search(f.file)
                        if (
                            g is None
                            or f.line <= 0
                            or re.search(r"\.func\d|\.gowrap\d|\[|\.init\.\d", f.function)
                        ):
                            continue
                        if m is not None:
                            out[f.function, g[1]].add((f.line, m))
    return out


def main() -> None:
    roots = {r: goroot(r) for r in RELEASES}
    frames = recorded_frames()
    cache: dict[Path, Source] = {}
    table: dict[tuple[str, str], dict[int, Span]] = {}
    for (function, rel), seen in sorted(frames.items()):
        per: dict[int, Span] = {}
        for release, root in roots.items():
            path = root / "src" / rel
            src = cache.get(path) or cache.setdefault(path, Source(path))
            span = src.find(function, rel)
            if span is None:
                continue
            minor = int(release.split(".")[1])
            a, b = per.get(minor, span)
            per[minor] = (min(a, span[0]), max(b, span[1]))
        if not per:
            continue
        for line, minor in seen:
            span = per.get(minor)
            if span is None or not span[0] <= line <= span[1]:
                sys.exit(f"go_lines: {function} {rel}:{line} recorded by Go 1.{minor} lies outside {span}")
        table[function, rel] = per
    minors = sorted({int(r.split(".")[1]) for r in RELEASES})
    lines = [
        "# Where standard-library functions lie in the source of each Go minor version: a frame's",
        "# line number rules out the versions whose body of that function does not hold it.",
        "# Generated by scripts/go_lines.py from the Go releases",
        f"# {', '.join(RELEASES)}",
        "# (patch releases of one minor merged), for the functions the recorded fixtures show. Do not",
        "# edit by hand. Read by grprof.formats.goversion when no GOROOT path names the version.",
        "#",
        '# frames: "FUNCTION FILE": {MINOR: [FIRST_LINE, LAST_LINE]}; a minor missing from an entry',
        "# has no such function in that file. `minors` are the versions the table covers.",
        f"minors: [{', '.join(map(str, minors))}]",
        "frames:",
    ]
    for (function, rel), per in table.items():
        spans = ", ".join(f"{m}: [{a}, {b}]" for m, (a, b) in sorted(per.items()))
        lines.append(f'  "{function} {rel}": {{{spans}}}')
    OUT.write_text("\n".join(lines) + "\n")
    print(f"go_lines: {len(table)} functions, Go 1.{minors[0]} to 1.{minors[-1]} -> {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
