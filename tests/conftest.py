"""Shared fixtures: `postgres` starts one throwaway PostgreSQL server per test worker.

In CI (`GRPROF_CI=1`, set by .ci/run) hypothesis runs derandomized: the same examples on
every run, so a red build always means a change, never the luck of the draw. Locally it
explores new examples each run.

The tests (and the commands they start) keep grprof's cache of validated data files
(grprof._cache) in a directory of their own, not in the user's ~/.cache.
"""

import os
import tempfile

from hypothesis import settings
from pgserver import postgres  # noqa: F401

os.environ.setdefault("GRPROF_CACHE_DIR", tempfile.mkdtemp(prefix="grprof-test-cache-"))

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("GRPROF_CI"):
    settings.load_profile("ci")
