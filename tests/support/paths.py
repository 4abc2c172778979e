"""Where things are, for tests at any depth: the repository, its samples, the shared documents beside it."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = REPO_ROOT / "tests" / "samples"
SHARED = REPO_ROOT.parent / "shared"
