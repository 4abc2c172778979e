"""Where archives are kept: one seam (`Store`) over a local directory or S3-compatible object storage."""

from __future__ import annotations

from workers.settings import WorkerSettings
from workers.storage.seam import Store


def open_store(settings: WorkerSettings) -> Store:
    """The store STORAGE_URL names (a local directory unless it is s3://)."""
    bucket = settings.storage_bucket
    if bucket is None:
        from workers.storage.local import LocalStore

        return LocalStore(settings.storage_path)
    # Imported only for s3://: boto3 and an S3 client cost ~37 MB of RSS and ~0.7 s to load.
    from workers.storage.s3 import S3Options, S3Store

    name, prefix = bucket
    options = S3Options(
        endpoint_url=settings.storage_endpoint_url, sse=settings.storage_sse,
        kms_key_id=settings.storage_sse_kms_key_id, storage_class=settings.storage_class,
    )
    return S3Store(name, prefix, options)
