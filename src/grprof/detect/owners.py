"""Who owns a finding: a pprof label, a package prefix, or CODEOWNERS (docs/owners.md).

    owners = Owners.load(OwnersFile(label="team", prefixes={"example.com/pay": "payments"}),
                         source_dir=Path("checkout"))
    owner = owners.resolve(group.frames, labels)   # Owner("payments", OwnerBy("prefix", ...))

In this order, the first that answers decides:

1. `label`: the group's goroutines carry the pprof label named in config (e.g. `team`) with one
   value (several values: no answer, never a guess);
2. `prefixes`: the first *owned* frame's package starts with a configured prefix (the longest
   matching prefix wins);
3. CODEOWNERS: with `--source`, the first owned frame's file, mapped into the checkout, matched
   against the repository's CODEOWNERS (gitignore-style patterns, last match wins).

The first owned frame is found by walking the stack from the blocking frame outward, past the
standard library and the unowned prefixes (data/owners.yaml plus config `unowned:`). Nothing
answers: `unknown`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grprof import _cache
from grprof.detect.model import OwnerBy
from grprof.model import Frame

if TYPE_CHECKING:
    import pathspec  # imported where a CODEOWNERS file is read: most runs have none

    # The schema (pydantic) is imported where a file is validated: a run without `--owners`
    # reads data/owners.yaml from the user's cache and needs neither it nor pydantic.
    from grprof.detect.owners_yaml import OwnersFile

UNKNOWN = "unknown"
CODEOWNERS_PLACES = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS")
"""Where GitHub and GitLab look for the file, first found wins."""


@functools.cache
def default_unowned() -> tuple[str, ...]:
    """data/owners.yaml `unowned`, validated once and then read from the user's cache."""
    return _cache.shipped("owners.yaml", tuple, _parse_shipped)


def _parse_shipped(text: str) -> tuple[str, ...]:
    from grprof._yamlvalid import parse, validate
    from grprof.detect.owners_yaml import ShippedOwners

    data: ShippedOwners = validate(ShippedOwners, parse(text, "grprof/data/owners.yaml"))
    return data.unowned


def load_owners_file(path: str | Path) -> OwnersFile:
    """A `--owners` YAML file, validated; YamlError `FILE:LINE: key: message` when wrong."""
    from grprof._yamlvalid import read, validate
    from grprof.detect.owners_yaml import OwnersFile

    owners: OwnersFile = validate(OwnersFile, read(path, what="owners file"))
    return owners


def __getattr__(name: str) -> object:
    """`grprof.detect.owners.OwnersFile`, where it was before the schema moved out (PEP 562):
    imported on first use, not with this module."""
    if name == "OwnersFile":
        from grprof.detect.owners_yaml import OwnersFile

        return OwnersFile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, slots=True)
class Owner:
    """A finding's owner and what decided it (`by` None: nothing did, the owner is unknown)."""

    owner: str = UNKNOWN
    by: OwnerBy | None = None


def _under(package: str, prefix: str) -> bool:
    p = prefix.rstrip("/")
    return package == p or package.startswith(p + "/")


@dataclass(frozen=True, slots=True)
class CodeOwners:
    """A parsed CODEOWNERS file: (pattern, owners, line), in file order."""

    rules: tuple[tuple[str, tuple[str, ...], int], ...]
    specs: tuple[pathspec.GitIgnoreSpec, ...]

    @classmethod
    def parse(cls, text: str) -> CodeOwners:
        rules: list[tuple[str, tuple[str, ...], int]] = []
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith(("#", "[")):
                continue  # comments, GitLab [Section] headers
            parts = line.split()
            rules.append((parts[0], tuple(p for p in parts[1:] if not p.startswith("#")), n))
        import pathspec

        return cls(tuple(rules), tuple(pathspec.GitIgnoreSpec.from_lines([r[0]]) for r in rules))

    def owners_of(self, path: str) -> tuple[tuple[str, ...], str] | None:
        """The owners of a repository-relative path and the matching rule, last match wins;
        None when no rule matches. A matching rule without owners unowns the path: ((), rule)."""
        for (pattern, owners, n), spec in zip(reversed(self.rules), reversed(self.specs), strict=True):
            if spec.match_file(path):
                return owners, f"{pattern} (CODEOWNERS:{n})"
        return None


def _find_codeowners(source_dir: Path) -> tuple[Path, CodeOwners] | None:
    """The repository root and its CODEOWNERS: `source_dir` or the nearest parent with one
    (a module inside a monorepo), up to the git root."""
    d = source_dir.resolve()
    for base in (d, *d.parents):
        for place in CODEOWNERS_PLACES:
            f = base / place
            if f.is_file():
                try:
                    return base, CodeOwners.parse(f.read_text(encoding="utf-8", errors="replace"))
                except OSError:
                    return None
        if (base / ".git").exists():
            return None
    return None


@dataclass(frozen=True)
class Owners:
    """How findings get their owner: the label, the prefixes, the unowned code, CODEOWNERS."""

    label: str | None = None
    prefixes: tuple[tuple[str, str], ...] = ()
    """Longest prefix first."""
    unowned: tuple[str, ...] = ()
    source_dir: Path | None = None
    codeowners: tuple[Path, CodeOwners] | None = None

    @classmethod
    def load(cls, conf: OwnersFile | None = None, source_dir: Path | None = None) -> Owners:
        # No file: OwnersFile's defaults, without building one (that would import pydantic).
        prefixes = sorted(conf.prefixes.items(), key=lambda kv: (-len(kv[0]), kv[0])) if conf else []
        return cls(
            label=conf.label if conf else None,
            prefixes=tuple(prefixes),
            unowned=default_unowned() + (conf.unowned if conf else ()),
            source_dir=source_dir,
            codeowners=_find_codeowners(source_dir) if source_dir is not None else None,
        )

    def owned(self, frame: Frame) -> bool:
        """Code some team owns: not the standard library, not an unowned prefix."""
        if frame.is_stdlib:
            return False
        pkg = frame.package
        return not any(_under(pkg, p) for p in self.unowned)

    def first_owned(self, frames: Sequence[Frame]) -> Frame | None:
        """The first owned frame from the blocking frame (frames[0]) outward."""
        return next((f for f in frames if self.owned(f)), None)

    def resolve(self, frames: Sequence[Frame], labels: Mapping[str, Mapping[str, int]]) -> Owner:
        if self.label:
            values = [v for v, n in labels.get(self.label, {}).items() if n > 0 and v]
            if len(values) == 1:
                return Owner(values[0], OwnerBy("label", self.label))
        frame = self.first_owned(frames)
        if frame is None:
            return Owner()
        pkg = frame.package
        for prefix, owner in self.prefixes:
            if _under(pkg, prefix):
                return Owner(owner, OwnerBy("prefix", prefix, frame))
        if self.codeowners is not None and self.source_dir is not None:
            from grprof.detect.source import resolve_file

            root, co = self.codeowners
            path = resolve_file(self.source_dir, frame)
            if path is not None:
                try:
                    rel = path.resolve().relative_to(root).as_posix()
                except ValueError:
                    return Owner()
                hit = co.owners_of(rel)
                if hit is not None and hit[0]:
                    return Owner(",".join(hit[0]), OwnerBy("codeowners", hit[1], frame))
        return Owner()
