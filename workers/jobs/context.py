"""Per-process resources jobs share: settings, Redis, the catalog, Twilio clients, an HTTP pool."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import httpx
from redis import Redis

from receiver.kernel.accounts import Account, AccountBook, load_accounts
from receiver.kernel.enqueue_script import SyncEnqueuer
from receiver.kernel.job_template import JobTemplate
from receiver.kernel.redis_client import sync_redis
from workers.jobs.archive_claim import ArchiveClaims
from workers.jobs.catalog import Catalog
from workers.jobs.job_stats import JobStats
from workers.jobs.throttle import AccountThrottle
from workers.outbound.delivery import egress_for as webhook_egress
from workers.settings import WorkerSettings
from workers.storage import open_store
from workers.storage.seam import Store
from workers.twilio_rest.client import TwilioRest
from workers.twilio_rest.egress import Egress, origins

# As many downloads at once as the HTTP pool has connections; threads start only when needed.
DOWNLOAD_THREADS = 64


@dataclass
class WorkerContext:
    settings: WorkerSettings

    @cached_property
    def accounts(self) -> AccountBook:
        return load_accounts(self.settings)

    @cached_property
    def redis(self) -> Redis:
        if not self.settings.redis_configured:
            raise RuntimeError("REDIS_URL (or REDIS_SENTINELS) is not set")
        return sync_redis(self.settings, socket_timeout=10, socket_connect_timeout=5)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.redis)

    @cached_property
    def enqueuer(self) -> SyncEnqueuer:
        """Dedupe-and-enqueue exactly as the receiver does it, for reconciler passes and replays."""
        s = self.settings
        return SyncEnqueuer(self.redis, JobTemplate(s.queue_name, s.job_timeout_seconds, s.retry_max), s.ledger_ttl_seconds)

    @cached_property
    def stats(self) -> JobStats:
        return JobStats(self.redis)

    @cached_property
    def claims(self) -> ArchiveClaims:
        # Renewed while its holder lives: a holder killed mid-download frees it within one lease,
        # about when RQ retries the job it was running.
        return ArchiveClaims(self.redis, self.settings.worker_lease_seconds)

    @cached_property
    def store(self) -> Store:
        return open_store(self.settings)

    @cached_property
    def throttle(self) -> AccountThrottle:
        return AccountThrottle(self.redis)

    @cached_property
    def rest(self) -> TwilioRest:
        return TwilioRest(self.settings, on_call=self.stats.twilio_call)

    @cached_property
    def http(self) -> httpx.Client:
        # Never follows redirects itself: `egress` checks every hop before it is sent.
        timeout = httpx.Timeout(self.settings.twilio_timeout_seconds, read=60.0)
        hooks = {"response": [lambda response: self.stats.twilio_response(response.status_code)]}
        return httpx.Client(
            timeout=timeout, follow_redirects=False, limits=httpx.Limits(max_connections=64), event_hooks=hooks
        )

    @cached_property
    def downloads(self) -> ThreadPoolExecutor:
        """Where a job's media download runs while its thread fetches the metadata: one pool for
        the process, since starting a thread per job cost a tenth of a busy worker's CPU."""
        return ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS, thread_name_prefix="media")

    @cached_property
    def egress(self) -> Egress:
        s = self.settings
        return Egress(self.http, origins((s.twilio_api_base_url, s.twilio_video_base_url, s.twilio_media_base_url)))

    @cached_property
    def webhook_http(self) -> httpx.Client:
        # Its own pool: webhook answers are not Twilio's, and never follow a redirect.
        return httpx.Client(timeout=self.settings.webhook_timeout_seconds, follow_redirects=False,
                            limits=httpx.Limits(max_connections=16))

    @cached_property
    def webhook_egress(self) -> Egress:
        return webhook_egress(self.settings, self.webhook_http)

    def close(self) -> None:
        """Close the connections this context opened (only the parts that were ever built)."""
        built = self.__dict__
        if "http" in built:
            self.http.close()
        if "webhook_http" in built:
            self.webhook_http.close()
        if "rest" in built:
            self.rest.close()
        if "redis" in built:
            self.redis.close()
        if "store" in built:
            self.store.close()
        if "downloads" in built:
            self.downloads.shutdown(wait=True)

    def account(self, account_sid: str) -> Account:
        account = self.accounts.get(account_sid)
        if account is None:
            raise LookupError(f"account {account_sid} is not configured")
        return account


_lock = threading.Lock()
_current: WorkerContext | None = None


def current() -> WorkerContext:
    """The process's context, built from the environment on first use (RQ imports jobs by name)."""
    global _current
    with _lock:
        if _current is None:
            _current = WorkerContext(WorkerSettings())
        return _current


def install(context: WorkerContext) -> None:
    global _current
    with _lock:
        _current = context
