"""Assignment of tickets to agents, thread events, agents' presence, held replies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("assignee_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_tickets_assignee", "accounts", ["assignee_id"], ["id"])
    op.create_index("ix_tickets_assignee_id", "tickets", ["assignee_id"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("held_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("accounts.id")),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])
    op.create_table(
        "presence",
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id"), primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
        sa.Column("typing_at", sa.DateTime(timezone=True)),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_presence_seen_at", "presence", ["seen_at"])


def downgrade() -> None:
    op.drop_table("presence")
    op.drop_table("ticket_events")
    op.drop_index("ix_tickets_assignee_id", "tickets")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("held_at")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("fk_tickets_assignee", type_="foreignkey")
        batch.drop_column("assignee_id")
