"""Errors grprof raises for bad input; each renders as one line naming the input."""

from __future__ import annotations


class GrprofError(Exception):
    """Base class: `str(err)` is a complete one-line message for the user."""


class SourceError(GrprofError):
    """The input could not be read: missing file, unreachable URL, HTTP error, size limit."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


class ParseError(GrprofError):
    """The input was read but is not a goroutine dump grprof understands.

    `position` is the byte offset (in the decompressed input) where parsing stopped, or None
    when the problem is not at one place.
    """

    def __init__(self, source: str, message: str, position: int | None = None) -> None:
        where = f" at byte {position}" if position is not None else ""
        super().__init__(f"{source}: {message}{where}")
        self.source = source
        self.message = message
        self.position = position


class SettingError(GrprofError, ValueError):
    """A part of grprof (the scraper) refuses a setting's value, though the configuration let it
    through: raised where the setting is taken (`ScrapeSettings`, `check_target`), before
    anything runs with it, so a caller can refuse the whole configuration and keep the old one.

    `subject` is what the setting belongs to (`scrape settings`, `target 'api'`), `key` the
    setting as that part names it (`interval`, `auth`), `message` what is wrong. A ValueError
    too, for the callers that predate it.
    """

    def __init__(self, subject: str, key: str, message: str) -> None:
        super().__init__(f"{subject}: {key}: {message}")
        self.subject = subject
        self.key = key
        self.message = message
