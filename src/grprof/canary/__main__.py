"""`python -m grprof.canary ...` runs `grprof canary ...` (tests; until the command is wired)."""

import sys

from grprof.canary.cli import main

sys.exit(main())
