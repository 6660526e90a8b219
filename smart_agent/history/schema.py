"""The history tables: Chainlit 2.12's table and column names, JSON as JSON, tags as JSON lists."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# JSONB on PostgreSQL, JSON text on SQLite; Python None is SQL NULL, and rows come back as dicts and lists.
Json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Ids are TEXT, not UUID: an id from the browser that is not a UUID must be a non-matching id, not an error.
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("identifier", sa.Text, nullable=False, unique=True),
    sa.Column("metadata", Json, nullable=False),
    sa.Column("createdAt", sa.Text),
)

threads = sa.Table(
    "threads",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # NOT NULL (Chainlit: nullable): the sidebar pages by it; this layer always sets it.
    sa.Column("createdAt", sa.Text, nullable=False),
    sa.Column("name", sa.Text),
    sa.Column("userId", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("userIdentifier", sa.Text),
    sa.Column("tags", Json),
    sa.Column("metadata", Json),
    sa.Index("ix_threads_user_created", "userId", "createdAt", "id"),
    sa.Index("ix_threads_identifier", "userIdentifier"),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("threadId", sa.Text, sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
    sa.Column("parentId", sa.Text),
    sa.Column("command", sa.Text),
    sa.Column("modes", Json),
    sa.Column("streaming", sa.Boolean, nullable=False),
    sa.Column("waitForAnswer", sa.Boolean),
    sa.Column("isError", sa.Boolean),
    sa.Column("metadata", Json),
    sa.Column("tags", Json),
    sa.Column("input", sa.Text),
    sa.Column("output", sa.Text),
    sa.Column("createdAt", sa.Text),
    sa.Column("start", sa.Text),
    sa.Column("end", sa.Text),
    sa.Column("generation", Json),
    sa.Column("showInput", sa.Text),
    sa.Column("defaultOpen", sa.Boolean),
    sa.Column("autoCollapse", sa.Boolean),
    sa.Column("language", sa.Text),
    sa.Column("icon", sa.Text),
    sa.Index("ix_steps_thread_created", "threadId", "createdAt"),
)

elements = sa.Table(
    "elements",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("threadId", sa.Text, sa.ForeignKey("threads.id", ondelete="CASCADE")),
    sa.Column("type", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("chainlitKey", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display", sa.Text),
    sa.Column("objectKey", sa.Text),
    sa.Column("size", sa.Text),
    sa.Column("page", sa.Integer),
    sa.Column("language", sa.Text),
    sa.Column("forId", sa.Text),
    sa.Column("mime", sa.Text),
    sa.Column("props", Json),
    sa.Column("autoPlay", sa.Boolean),
    sa.Column("playerConfig", Json),
    sa.Index("ix_elements_thread", "threadId"),
)

feedbacks = sa.Table(
    "feedbacks",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("forId", sa.Text, nullable=False),
    sa.Column("threadId", sa.Text, sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Index("ix_feedbacks_for", "forId"),
    sa.Index("ix_feedbacks_thread_value", "threadId", "value"),
)

# Our own table, not Chainlit's `users.metadata`: Chainlit sends a user's metadata to the browser.
accounts = sa.Table(
    "smart_agent_accounts",
    metadata,
    sa.Column("identifier", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("createdAt", sa.Text, nullable=False),
)

# Our own table: an attachment's bytes (bounded by SMART_AGENT_ATTACHMENT_MAX_MB, judged by content),
# kept with its thread because Chainlit empties its `.files/` at shutdown and instances share nothing else.
attachments = sa.Table(
    "smart_agent_attachments",
    metadata,
    sa.Column("id", sa.Text, sa.ForeignKey("elements.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("mime", sa.Text, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
)
