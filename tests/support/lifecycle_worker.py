"""`python -m tests.support.lifecycle_worker worker …`: the worker CLI, also allowed the stand-in jobs the lifecycle tests enqueue."""

from __future__ import annotations

from workers.commands.cli import main
from workers.runtime.rq_internals.job_allowlist import AllowlistedJob

# Jobs whose only point is to take a while or say which process ran them.
STAND_IN_JOBS = frozenset({"os.getpid", "time.sleep"})

if __name__ == "__main__":
    AllowlistedJob.allowed_functions = AllowlistedJob.allowed_functions | STAND_IN_JOBS
    main()
