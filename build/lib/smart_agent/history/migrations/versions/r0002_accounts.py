"""smart-agent's login accounts: a name and its argon2id hash, apart from Chainlit's tables."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the accounts table."""
    op.create_table(
        "smart_agent_accounts",
        sa.Column("identifier", sa.Text, primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("createdAt", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop the accounts table."""
    op.drop_table("smart_agent_accounts")
