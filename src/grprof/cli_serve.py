"""The `grprof serve` command: configuration from file and flags, then the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from grprof import _gc
from grprof.cli import EXIT_BAD_INPUT, UsageError
from grprof.collect.shard import parse_shard
from grprof.config import Config, load_config
from grprof.serve import Daemon, cli_targets


def effective_config(args: argparse.Namespace) -> Config:
    config = load_config(args.config) if args.config else Config()
    update: dict[str, object] = {}
    if args.listen:
        update["listen"] = args.listen
    if args.db:
        update["db"] = args.db
    if args.interval:
        scrape = config.scrape.model_copy(
            update={"interval": args.interval, "timeout": min(config.scrape.timeout, args.interval)}
        )
        update["scrape"] = scrape
    # Re-validate: flags go through the same checks as the file.
    return Config.model_validate({**config.model_dump(), **{k: _dump(v) for k, v in update.items()}})


def _dump(v: object) -> object:
    return v.model_dump() if hasattr(v, "model_dump") else v


def read_token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise UsageError(f"--api-token-file {path}: {e.strerror or e}") from None
    if not token:
        raise UsageError(f"--api-token-file {path}: the file is empty")
    return token


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are routine, not news
    try:
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as e:
        raise UsageError(f"--shard: {e}") from None
    for url in args.target:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--target {url}: must start with http:// or https://")
    config = effective_config(args)
    daemon = Daemon(
        config,
        config_path=Path(args.config) if args.config else None,
        extra_targets=cli_targets(args.target),
        shard=shard,
        api_token=read_token(args.api_token_file),
    )
    _gc.tune(freeze=True)
    try:
        asyncio.run(daemon.run())
    except OSError as e:  # the listen address is taken, the db path is not writable...
        print(f"grprof: serve: {e.strerror or e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0
