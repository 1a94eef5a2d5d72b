"""`grprof serve`: the configuration from file and flags, then the daemon (docs/serve.md).

The parser is built at every start of `grprof`; the daemon and its dependencies (aiohttp,
pydantic, uvicorn) are imported when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grprof.cli._common import EXIT_BAD_INPUT, EXIT_OK, UsageError, duration, error

if TYPE_CHECKING:
    from pydantic import ValidationError

    from grprof.config import Config


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    s: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="scrape many services continuously: history, detection, an API and Prometheus metrics",
        description="Scrape every target's pprof endpoint on a schedule, keep the history (SQLite or "
        "PostgreSQL), detect leaks, and serve an API (/api/v1, docs at /docs) and /metrics.",
    )
    s.add_argument("--config", metavar="FILE", help="YAML configuration (reloaded on SIGHUP and on change)")
    s.add_argument(
        "--target", action="append", default=[], metavar="URL", help="a service's base URL (repeatable)"
    )
    s.add_argument("--interval", type=duration, metavar="DURATION", help="scrape interval (default 15s)")
    s.add_argument("--listen", metavar="HOST:PORT", help="API address (default 127.0.0.1:8080)")
    s.add_argument(
        "--db", metavar="PATH_OR_URL", help="SQLite file (default ./grprof.db) or postgresql://..."
    )
    s.add_argument("--shard", metavar="I/N", help="scrape only the targets of shard I of N (hash of the URL)")
    s.add_argument("--api-token-file", metavar="FILE", help="require this bearer token on the API")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return s


def effective_config(args: argparse.Namespace) -> Config:
    from pydantic import ValidationError

    from grprof.config import Config, load_config

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


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import sys

    from grprof import _gc
    from grprof.collect.shard import parse_shard
    from grprof.serve import Daemon, cli_targets

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
        error(f"serve: {e.strerror or e}")
        return EXIT_BAD_INPUT
    return EXIT_OK
