"""Alembic's environment: the migrations run on the connection the server hands over.

``fallom serve`` and ``fallom serve migrate`` run them (fallom.server.migrations.upgrade),
inside their own transaction and lock; this file only passes that connection on.
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("run the migrations with: fallom serve migrate --db URL")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
