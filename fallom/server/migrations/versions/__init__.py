"""The revisions, oldest first: each file one step of the schema (Alembic loads them by path)."""
