"""Alembic environment: the connection comes from kb (kb.db.upgrade, which holds the migration
lock in it), never from an ini file."""

from alembic import context

from kb.tables import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with config.attributes["engine"].begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
