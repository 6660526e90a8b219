"""Attachments' bytes, one row per stored element, deleted with it (and so with its thread)."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the attachments table."""
    op.create_table(
        "smart_agent_attachments",
        sa.Column("id", sa.Text, sa.ForeignKey("elements.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("mime", sa.Text, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    """Drop the attachments table."""
    op.drop_table("smart_agent_attachments")
