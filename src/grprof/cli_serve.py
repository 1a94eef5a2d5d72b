"""The `grprof serve` command: configuration from file and flags, then the daemon."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

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
    try:
        return Config.model_validate({**config.model_dump(), **{k: _dump(v) for k, v in update.items()}})
    except ValidationError as e:
        raise UsageError(_flag_error(e, args)) from None


_FLAGS = {"listen": "--listen", "db": "--db", "scrape": "--interval"}


def _flag_error(err: ValidationError, args: argparse.Namespace) -> str:
    """`--listen nonsense: must be HOST:PORT, ...`: the flag and value, then pydantic's reason."""
    e = err.errors()[0]
    key = str(e["loc"][0]) if e["loc"] else ""
    flag = _FLAGS.get(key, key)
    value = getattr(args, flag.removeprefix("--"), None) if flag.startswith("--") else None
    where = f"{flag} {value}" if value is not None else flag or "configuration"
    return f"{where}: {str(e['msg']).removeprefix('Value error, ')}"


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
