"""The storage seam's edges: boto3 lives in workers/storage/s3.py alone and loads only for s3:// storage."""

from __future__ import annotations

import subprocess
import sys

from tests.project.test_boundaries import ROOT, _imports


def test_only_the_s3_store_imports_boto3_or_botocore() -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for package in ("receiver", "workers", "console")
        for path in (ROOT / package).rglob("*.py")
        if path.relative_to(ROOT).as_posix() != "workers/storage/s3.py"
        and any(m.split(".")[0] in ("boto3", "botocore") for m in _imports(path))
    )
    assert offenders == []


def test_a_worker_with_local_storage_never_loads_boto3() -> None:
    code = (
        "import sys\nfrom workers.settings import WorkerSettings as Settings\nfrom workers.jobs import reactions\n"
        "from workers.storage import open_store\n"
        "open_store(Settings(storage_url='/tmp/x')).close()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
