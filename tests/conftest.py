"""Shared fixtures: `postgres` starts one throwaway PostgreSQL server per test worker."""

from pgserver import postgres  # noqa: F401
