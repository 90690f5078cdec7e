"""Each rollup keeps its median response time, so that the dashboard's hours read
without sketches; the rollups already stored get theirs from their sketches here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from upwatch.sketch import medians

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLLUPS = sa.table(
    "rollups",
    sa.column("monitor_id", sa.String()),
    sa.column("span", sa.Integer()),
    sa.column("start", sa.BigInteger()),
    sa.column("rt_min", sa.Integer()),
    sa.column("rt_max", sa.Integer()),
    sa.column("sketch", sa.LargeBinary()),
    sa.column("rt_median", sa.Float()),
)


def upgrade() -> None:
    op.add_column("rollups", sa.Column("rt_median", sa.Float(), nullable=True))
    # A monitor at a time: 90 days of one monitor's hours are about 2,200 rows.
    bind = op.get_bind()
    r = _ROLLUPS.c
    of_monitor = sa.select(r.span, r.start, r.rt_min, r.rt_max, r.sketch).where(
        r.monitor_id == sa.bindparam("b_id")
    )
    fill = (
        sa.update(_ROLLUPS)
        .where(
            r.monitor_id == sa.bindparam("b_id"),
            r.span == sa.bindparam("b_span"),
            r.start == sa.bindparam("b_start"),
        )
        .values(rt_median=sa.bindparam("b_median"))
    )
    for monitor_id in bind.execute(sa.select(r.monitor_id).distinct()).scalars().all():
        rows = bind.execute(of_monitor, {"b_id": monitor_id}).all()
        found = medians(
            [x.sketch for x in rows], [x.rt_min for x in rows], [x.rt_max for x in rows]
        )
        params = [
            {"b_id": monitor_id, "b_span": x.span, "b_start": x.start, "b_median": float(m)}
            for x, m in zip(rows, found.tolist(), strict=True)
            if m == m  # NaN: no timed check, stays NULL
        ]
        if params:
            bind.execute(fill, params)


def downgrade() -> None:
    with op.batch_alter_table("rollups") as batch:
        batch.drop_column("rt_median")
