"""Usage: article views, searches and votes, aggregated per day.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_views",
        sa.Column("slug", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("views", sa.Integer, nullable=False),
    )
    op.create_table(
        "searches",
        sa.Column("query", sa.String(500), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("results", sa.Integer, nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "votes",
        sa.Column("slug", sa.String(200), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("helpful", sa.Integer, nullable=False),
        sa.Column("unhelpful", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("votes")
    op.drop_table("searches")
    op.drop_table("article_views")
