"""`python -m grprof.cli`: the `grprof` command."""

import sys

from grprof.cli import main

sys.exit(main())
