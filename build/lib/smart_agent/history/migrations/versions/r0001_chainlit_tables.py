"""Chainlit 2.12's tables (users, threads, steps, elements, feedbacks) with every column it writes."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copy of schema.Json: a migration must not change when the live schema module does.
Json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    """Create the five tables and the indexes the sidebar and thread pages read by."""
    op.create_table(
        "users",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("identifier", sa.Text, nullable=False, unique=True),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("createdAt", sa.Text),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("createdAt", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("userId", sa.Text, sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("userIdentifier", sa.Text),
        sa.Column("tags", Json),
        sa.Column("metadata", Json),
    )
    op.create_index("ix_threads_user_created", "threads", ["userId", "createdAt", "id"])
    op.create_index("ix_threads_identifier", "threads", ["userIdentifier"])
    op.create_table(
        "steps",
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
    )
    op.create_index("ix_steps_thread_created", "steps", ["threadId", "createdAt"])
    op.create_table(
        "elements",
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
    )
    op.create_index("ix_elements_thread", "elements", ["threadId"])
    op.create_table(
        "feedbacks",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("forId", sa.Text, nullable=False),
        sa.Column("threadId", sa.Text, sa.ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
    )
    op.create_index("ix_feedbacks_for", "feedbacks", ["forId"])
    op.create_index("ix_feedbacks_thread_value", "feedbacks", ["threadId", "value"])


def downgrade() -> None:
    """Drop the five tables."""
    for table in ("feedbacks", "elements", "steps", "threads", "users"):
        op.drop_table(table)
