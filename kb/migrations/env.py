"""Alembic environment: the engine comes from kb (kb.db.upgrade), never from an ini file."""

from alembic import context

from kb.db import metadata

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    context.run_migrations()
