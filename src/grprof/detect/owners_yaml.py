"""The schema of an owners file (`--owners`, serve's `owners:`) and of data/owners.yaml (pydantic).

Imported only to validate one (`grprof.detect.owners.load_owners_file`, the serve config, the
shipped file when the user's cache has no entry for it): a plain `grprof analyze` imports
neither this module nor pydantic (start-up time, issue 9). Imports nothing of
`grprof.detect.owners`, which imports it where it validates.
"""

from __future__ import annotations

from pydantic import Field

from grprof._yamlvalid import Strict


class OwnersFile(Strict):
    """`--owners FILE`, the serve config's `owners:` section."""

    label: str | None = None
    """A pprof label key whose value names the owner (`team`)."""
    prefixes: dict[str, str] = Field(default_factory=dict)
    """Go import path prefix -> owner (`example.com/shop/payments: payments`)."""
    unowned: tuple[str, ...] = ()
    """More import path prefixes no team owns (vendored SDKs), added to data/owners.yaml's."""


class ShippedOwners(Strict):
    """`grprof/data/owners.yaml`."""

    unowned: tuple[str, ...]
