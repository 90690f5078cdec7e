"""Reminders: a monitor's remindEveryMinutes, and when an incident was last notified.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("notified_at", sa.BigInteger(), nullable=True))
    op.add_column(
        "monitors",
        sa.Column("remind_every_minutes", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("monitors") as batch_op:
        batch_op.drop_column("remind_every_minutes")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("notified_at")
