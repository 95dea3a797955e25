"""Alembic environment: runs on the connection (and transaction) hnlab hands in."""

from alembic import context

from hnlab.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
