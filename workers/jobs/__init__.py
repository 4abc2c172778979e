"""RQ jobs and what they do with a recording: fetch, archive, react, catalog, delete at Twilio, with the account throttle and claims.

The job functions are named here, at the package, because its dotted name is stored in every job
hash in Redis: modules inside the package can move without stranding a queued job."""

from workers.jobs.announce import deliver_webhook, run_reaction
from workers.jobs.deletion import delete_recording
from workers.jobs.entry import process_recording

__all__ = ["delete_recording", "deliver_webhook", "process_recording", "run_reaction"]
