"""RQ jobs and what they do with a recording: fetch, archive, react, catalog, with the account throttle and claims.

The job function is named here, at the package, because its dotted name is stored in every job
hash in Redis: modules inside the package can move without stranding a queued job."""

from workers.jobs.entry import process_recording

__all__ = ["process_recording"]
