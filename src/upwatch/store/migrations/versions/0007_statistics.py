"""Statistics (SPEC §9): rollups, the results pending for them, and pause history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    lock = op.create_table(
        "rollup_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_lock")),
    )
    op.bulk_insert(lock, [{"id": 1}])
    op.create_table(
        "rollup_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("results", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_pending")),
    )
    op.create_table(
        "monitor_pauses",
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_monitor_pauses_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_monitor_pauses_monitor", "monitor_pauses", ["monitor_id", "started_at"])
    # Monitors paused before this upgrade: paused since their last change, the best
    # record there is.
    op.execute(
        "INSERT INTO monitor_pauses (monitor_id, started_at, ended_at) "
        "SELECT id, updated_at, NULL FROM monitors WHERE NOT is_enabled"
    )
    op.create_table(
        "rollups",
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("span", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("up", sa.Integer(), nullable=False),
        sa.Column("down", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("rt_sum", sa.BigInteger(), nullable=False),
        sa.Column("rt_min", sa.Integer(), nullable=True),
        sa.Column("rt_max", sa.Integer(), nullable=True),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name=op.f("fk_rollups_monitor_id_monitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("monitor_id", "span", "start", name=op.f("pk_rollups")),
    )
    op.create_index("ix_rollups_start", "rollups", ["start"])


def downgrade() -> None:
    op.drop_table("rollups")
    op.drop_table("monitor_pauses")
    op.drop_table("rollup_pending")
    op.drop_table("rollup_lock")
