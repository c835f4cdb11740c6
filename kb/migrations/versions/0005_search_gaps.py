"""Searches keep how they were typed, and whether their results were weak.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("searches") as table:
        table.add_column(sa.Column("spelling", sa.String(500)))
        table.add_column(sa.Column("weak", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("searches") as table:
        table.drop_column("weak")
        table.drop_column("spelling")
