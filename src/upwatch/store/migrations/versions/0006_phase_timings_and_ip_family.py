"""Phase timings in results, and each monitor's address family (SPEC §9).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without a default: adding them rewrites no existing row on either
    # database, however many results are stored.
    op.add_column("check_results", sa.Column("dns_time_ms", sa.Integer(), nullable=True))
    op.add_column("check_results", sa.Column("connect_time_ms", sa.Integer(), nullable=True))
    op.add_column(
        "check_results", sa.Column("resolved_address", sa.LargeBinary(length=16), nullable=True)
    )
    op.add_column(
        "monitors",
        sa.Column("ip_family", sa.String(length=8), server_default="auto", nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table("monitors") as batch_op:
        batch_op.drop_column("ip_family")
    with op.batch_alter_table("check_results") as batch_op:
        batch_op.drop_column("resolved_address")
        batch_op.drop_column("connect_time_ms")
        batch_op.drop_column("dns_time_ms")
