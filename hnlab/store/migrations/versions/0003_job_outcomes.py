"""job outcomes: each scheduled job's last outcome, for hnlab status and the runner's lines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_outcomes",
        sa.Column("job_id", sa.String(100), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("failing_since", TS),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("runner", sa.String(300), nullable=False),
        sa.CheckConstraint("outcome IN ('succeeded', 'failed')", name="ck_job_outcomes_outcome"),
    )


def downgrade() -> None:
    op.drop_table("job_outcomes")
