"""The reconciler: lists recordings at Twilio and queues those no callback brought.

The job function is named here, at the package, because its dotted name is stored in every
scheduled job hash in Redis: modules inside the package can move without stranding one."""

from workers.reconcile.job import reconcile

__all__ = ["reconcile"]
