"""The S3-compatible store: media streamed in parts, every write create-only, every object read back.

Library: boto3 (botocore). Compared on what this store needs:
- boto3: multipart by hand (create/upload_part/complete) streams from any iterator with one part
  buffered; `IfNoneMatch="*"` on put_object and on complete_multipart_upload, so even a multipart
  write is create-only; SSE, KMS key and storage class are plain arguments; sync, which suits our
  threaded RQ workers. botocore is 32 MB installed; loading it with a client costs a worker ~37 MB
  of RSS, so it is imported only for s3://.
- obstore: streams multipart uploads from an iterator, but its create-only mode falls back to one
  in-memory PUT: a 500 MB recording would sit in memory. One Rust wheel, no botocore.
- aioboto3/aiobotocore: boto3's API on asyncio, each release pinned to a narrow botocore range; our workers
  are threads, so it would add an event loop for nothing.
- s3fs: a file-like layer over aiobotocore, so the same pins; installed unpinned beside boto3 it
  resolved to an s3fs from 2020. Its write path hides the multipart calls we need to condition.
Checksums: the store's own (ETag, x-amz-checksum-*) are not relied on (moto, and some
S3-compatible servers, do not check them): each object is read back and hashed after its write.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, IncompleteReadError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from workers.failures import PermanentError, TransientError
from workers.storage.seam import AlreadyStored, Stored, name_of

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

# S3's parts are 5 MB to 5 GB, at most 10,000 of them: 8 MiB parts reach 80 GB, and only one
# part is ever held in memory.
PART_BYTES = 8 * 2**20
READ_BYTES = 2**20
# What each answer means for a job: no retry fixes credentials, a missing bucket or a denial.
_PERMANENT = {
    "NoSuchBucket": "bucket {bucket} does not exist",
    "InvalidAccessKeyId": "storage does not know the access key: check AWS_ACCESS_KEY_ID or the AWS profile",
    "SignatureDoesNotMatch": "storage refused the secret key: check AWS_SECRET_ACCESS_KEY or the AWS profile",
    "InvalidToken": "storage refused the session token: check AWS_SESSION_TOKEN or the AWS profile",
    "ExpiredToken": "the AWS session token has expired: renew the credentials",
    "AccessDenied": "storage denied {action} on s3://{bucket}: the credentials lack the permission (see README, Storage)",
    "AllAccessDisabled": "storage denied {action} on s3://{bucket}: all access to the bucket is disabled",
    "KMS.NotFoundException": "the STORAGE_SSE_KMS_KEY_ID key does not exist",
    "KMS.DisabledException": "the STORAGE_SSE_KMS_KEY_ID key is disabled",
}


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    sse: str = "none"
    kms_key_id: str | None = None
    storage_class: str | None = None

    def write_args(self) -> dict[str, str]:
        """What every write carries: encryption and storage class."""
        args: dict[str, str] = {}
        if self.sse != "none":
            args["ServerSideEncryption"] = self.sse
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        if self.storage_class:
            args["StorageClass"] = self.storage_class
        return args


class S3Store:
    """Keys are `<prefix>/<key>` in one bucket. Credentials come from boto3's standard chain only."""

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.options = options
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        # A boto3 client is thread-safe once made; making one is not (its session is shared).
        with self._lock:
            if self._client is None:
                self._client = _make_client(self.options.endpoint_url)
            return self._client

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def presigned_get(self, key: str, seconds: int, content_type: str, disposition: str) -> str:
        """A GET link that works for `seconds` without credentials, answering with these headers.
        Signed here, no request made. The link carries a signature: it is never logged."""
        params = {"Bucket": self.bucket, "Key": self._full(key), "ResponseContentType": content_type,
                  "ResponseContentDisposition": disposition}
        with self._errors("GetObject"):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def put_media(self, key: str, chunks: Iterable[bytes]) -> Stored:
        full = self._full(key)
        with self._errors("PutObject"):
            ours = self._upload(full, chunks)
            self._check_written(full, ours)
        return ours

    def _upload(self, full: str, chunks: Iterable[bytes]) -> Stored:
        """Small media in one create-only PUT; larger in parts, completed create-only. An upload
        abandoned midway (an exception, or SIGKILL) is never visible as an object."""
        sha = hashlib.sha256()
        size = 0
        part = bytearray(PART_BYTES)  # one buffer, refilled for every part
        filled = 0
        upload: _Multipart | None = None
        try:
            for chunk in chunks:
                sha.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    take = min(len(view), PART_BYTES - filled)
                    part[filled:filled + take] = view[:take]
                    filled, view = filled + take, view[take:]
                    if filled == PART_BYTES:
                        upload = upload or _Multipart.begin(self, full)
                        upload.send(part)
                        filled = 0
            ours = Stored(size, sha.hexdigest())
            del part[filled:]  # the last part: shrunk in place, not copied
            if upload is None:
                self._put_once(full, part, ours)
            else:
                if part:
                    upload.send(part)
                upload.complete(ours)
        except BaseException:
            if upload is not None:
                upload.abort()
            raise
        return ours

    def _put_once(self, full: str, body: bytes | bytearray, ours: Stored | None) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=full, Body=body, IfNoneMatch="*", **self.options.write_args()  # type: ignore[arg-type]
            )
        except ClientError as exc:
            _raise_if_taken(exc, full, ours)
            raise

    def _check_written(self, full: str, ours: Stored) -> None:
        """Read back: the server's checksums are not trusted. A mismatch is our own object (the
        write was create-only and it is ours), so it is removed for the retry to write again."""
        theirs = self._digest(full)
        if theirs != ours:
            self.client.delete_object(Bucket=self.bucket, Key=full)
            raise TransientError(f"{name_of(full)} read back from storage differently from what was sent; removed, will retry")

    def put_record(self, key: str, data: bytes) -> None:
        with self._errors("PutObject"):
            self._put_once(self._full(key), data, None)

    def read_record(self, key: str) -> bytes | None:
        with self._errors("GetObject"):
            try:
                return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise

    def exists(self, key: str) -> bool:
        with self._errors("HeadObject"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                    return False
                raise
            return True

    def digest(self, key: str) -> Stored | None:
        with self._errors("GetObject"):
            try:
                return self._digest(self._full(key))
            except ClientError as exc:
                if _code(exc) in ("NoSuchKey", "404"):
                    return None
                raise

    def _digest(self, full: str) -> Stored:
        body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
        sha = hashlib.sha256()
        size = 0
        with contextlib.closing(body):
            for chunk in body.iter_chunks(READ_BYTES):
                sha.update(chunk)
                size += len(chunk)
        return Stored(size, sha.hexdigest())

    def forget_partials(self, record_key: str) -> int:
        """Nothing visible to forget: an unfinished multipart upload is no object, and the
        bucket's AbortIncompleteMultipartUpload lifecycle rule reclaims its parts."""
        return 0

    def sweep(self, older_than_seconds: float) -> int:
        return 0

    def probe(self) -> str:
        """Write and delete a probe object, with the same encryption and class as an archive."""
        key = self._full(f".probe/{uuid.uuid4().hex}")
        with self._errors("PutObject"):
            self._put_once(key, b"recording-receiver check\n", None)
        with self._errors("DeleteObject"):
            self.client.delete_object(Bucket=self.bucket, Key=key)
        endpoint = f" at {self.options.endpoint_url}" if self.options.endpoint_url else ""
        return f"storage    s3://{self.bucket}/{self.prefix} reachable and writable{endpoint}"

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """botocore's failures as one-line job failures: permanent when no retry can help."""
        try:
            yield
        except ClientError as exc:
            raise _classify(exc, action, self.bucket) from None
        except NoCredentialsError:
            raise PermanentError("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                 "or AWS_PROFILE") from None
        except BotoConnectionError as exc:
            raise TransientError(f"storage unreachable: {type(exc).__name__}") from None
        except (HTTPClientError, IncompleteReadError) as exc:
            # A connection closed before the answer, a read timeout, a body cut short: the server
            # went away mid-request (a restart, a load balancer), which a later attempt survives.
            raise TransientError(f"storage connection lost: {type(exc).__name__}") from None
        except BotoCoreError as exc:
            raise PermanentError(f"storage: {type(exc).__name__}") from None


class _Multipart:
    """One multipart upload in flight: its parts so far, completed create-only or aborted."""

    def __init__(self, store: S3Store, key: str, upload_id: str) -> None:
        self.store, self.key, self.upload_id = store, key, upload_id
        self.parts: list[dict[str, Any]] = []

    @classmethod
    def begin(cls, store: S3Store, key: str) -> _Multipart:
        answer = store.client.create_multipart_upload(Bucket=store.bucket, Key=key, **store.options.write_args())  # type: ignore[arg-type]
        return cls(store, key, answer["UploadId"])

    def send(self, part: bytearray) -> None:
        number = len(self.parts) + 1
        answer = self.store.client.upload_part(
            # A bytearray is sent as it is (botocore takes one, its stubs say bytes): bytes() would copy the part.
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part,  # type: ignore[arg-type]
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def complete(self, ours: Stored) -> None:
        try:
            self.store.client.complete_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
                MultipartUpload={"Parts": self.parts}, IfNoneMatch="*",  # type: ignore[typeddict-item]
            )
        except ClientError as exc:
            _raise_if_taken(exc, self.key, ours)
            raise
        self.upload_id = ""

    def abort(self) -> None:
        """Best effort: a failed abort leaves invisible parts for the lifecycle rule."""
        if not self.upload_id:
            return
        with contextlib.suppress(BotoCoreError, ClientError):
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id)


def _make_client(endpoint_url: str | None) -> S3Client:
    config = Config(
        connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 3},
        # Checksums only where S3 requires them: several S3-compatible servers refuse the
        # trailing CRC32 botocore sends by default, and we verify by reading back anyway.
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
        # MinIO and most self-hosted servers serve buckets by path, not by subdomain.
        s3={"addressing_style": "path"} if endpoint_url else None,
        max_pool_connections=32,
        # SigV4 everywhere, presigned links included (botocore would sign those with SigV2 in us-east-1,
        # which newer regions refuse); its links last at most 7 days (ADMIN_MEDIA_LINK_SECONDS).
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _raise_if_taken(exc: ClientError, key: str, ours: Stored | None) -> None:
    """412 to If-None-Match: the object is in place already; another run won."""
    if _status(exc) == 412 or _code(exc) == "PreconditionFailed":
        raise AlreadyStored(key, ours) from None


def _classify(exc: ClientError, action: str, bucket: str) -> PermanentError | TransientError:
    code, status = _code(exc), _status(exc)
    if code in _PERMANENT:
        return PermanentError(_PERMANENT[code].format(bucket=bucket, action=action))
    if status in {409, 429} or status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError"):
        return TransientError(f"storage answered {status} ({code}) to {action}")
    if status == 403:
        return PermanentError(_PERMANENT["AccessDenied"].format(bucket=bucket, action=action))
    if status == 404:
        return PermanentError(f"storage answered 404 to {action}: does bucket {bucket} exist at this endpoint?")
    return PermanentError(f"storage answered {status} ({code}) to {action}")
