"""The parts of the `grprof serve` daemon below its supervisor (`grprof.serve`).

- `window`: a target's detection window (its recent snapshots and leak profiles).
- `judge`: one detection pass over a window, the one way `serve` and `watch` judge one.
- `pipeline`: what happens to each scrape of a target: parse → window → store → detect, and
  the target's health and findings in the replica's runtime.
- `fleet`: which targets to scrape (the configuration's, the command line's, the discovered
  ones, this shard's) against the ones scraped now, and reconciling the two.
"""
