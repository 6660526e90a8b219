"""Alembic's entry point: migrates the connection `migrate.upgrade` passes in; no alembic.ini needed."""

from alembic import context

from smart_agent.history.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=context.config.attributes["version_table"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
