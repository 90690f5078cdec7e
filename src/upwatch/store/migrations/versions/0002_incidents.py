"""Monitor state and incidents (SPEC §7).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Plain ADD COLUMNs (no batch copy of ``monitors`` on SQLite: every new column is
nullable or has a default), so the upgrade is quick at any table size.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _monitor_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("confirmation_checks", sa.Integer(), server_default="2", nullable=False),
        sa.Column("recovery_checks", sa.Integer(), server_default="1", nullable=False),
        sa.Column("state", sa.String(16), server_default="unknown", nullable=False),
        sa.Column("state_changed_at", sa.BigInteger(), nullable=True),
        sa.Column("open_incident_id", sa.String(32), nullable=True),
        sa.Column("run_failing", sa.Boolean(), nullable=True),
        sa.Column("run_length", sa.Integer(), server_default="0", nullable=False),
        sa.Column("run_started_at", sa.BigInteger(), nullable=True),
        sa.Column("cause_status", sa.String(16), nullable=True),
        sa.Column("cause_error", sa.String(255), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("monitor_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("cause_status", sa.String(16), nullable=False),
        sa.Column("cause_error", sa.String(255), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_incidents_status"),
        sa.ForeignKeyConstraint(
            ["monitor_id"],
            ["monitors.id"],
            name="fk_incidents_monitor_id_monitors",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name="fk_incidents_team_id_teams", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_monitor_newest", "incidents", ["monitor_id", "started_at", "id"])
    op.create_index("ix_incidents_team_newest", "incidents", ["team_id", "started_at", "id"])
    for column in _monitor_columns():
        op.add_column("monitors", column)


def downgrade() -> None:
    with op.batch_alter_table("monitors") as batch_op:
        for column in reversed(_monitor_columns()):
            batch_op.drop_column(column.name)
    op.drop_index("ix_incidents_team_newest", table_name="incidents")
    op.drop_index("ix_incidents_monitor_newest", table_name="incidents")
    op.drop_table("incidents")
