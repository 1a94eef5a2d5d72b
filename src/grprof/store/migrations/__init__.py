"""Alembic migrations of the store, run by `SQLStore.open` (see docs/storage.md)."""
