"""Articles read by establishments (the context of their tickets); canned replies used;
tickets opened by support (their channel); the establishments' ratings.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("channel", sa.String(20), nullable=False, server_default="web"))
        batch.add_column(sa.Column("opened_by_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_tickets_opened_by", "accounts", ["opened_by_id"], ["id"])
    op.create_table(
        "article_reads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("slug", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_article_reads_account_id", "article_reads", ["account_id"])
    op.create_index("ix_article_reads_at", "article_reads", ["at"])
    op.create_table(
        "ratings",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), primary_key=True),
        sa.Column("satisfied", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("agent_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ratings_at", "ratings", ["at"])
    op.create_table(
        "canned_uses",
        sa.Column("slug", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("uses", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("canned_uses")
    op.drop_table("ratings")
    op.drop_table("article_reads")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("fk_tickets_opened_by", type_="foreignkey")
        batch.drop_column("opened_by_id")
        batch.drop_column("channel")
