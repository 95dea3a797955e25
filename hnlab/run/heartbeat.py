"""The runner heartbeat job: each runner refreshes its row in ``runners`` every minute.

``hnlab status`` lists the runners whose beat is recent, with their next run time.
"""

from __future__ import annotations

from hnlab.jobs import Job, register

HEARTBEAT_JOB_ID = "runner_heartbeat"

register(
    Job(
        HEARTBEAT_JOB_ID,
        "Runner heartbeat",
        None,
        trigger=lambda settings: "* * * * *",
        build=lambda runtime: runtime.beat,
    )
)
