"""The export's progress line and its final report, as text."""

from __future__ import annotations

from workers.export.exporter import Progress
from workers.export.rows import ExportRow

_RUN = ("listed", "queued", "known", "archived", "failed", "other", "pending", "deleted")
_DRY = ("listed", "to queue", "known", "pending", "deleted")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def line(progress: Progress) -> str:
    """One line of progress: what a terminal redraws in place and a pipe gets every few seconds."""
    t = progress.total
    if progress.dry_run:
        return f"dry run: listed {t('listed')}  to queue {t('queued')}  known {t('known')}  pending {t('pending')}"
    listing = "listing done" if progress.listing_done else "listing"
    return (
        f"{listing}: listed {t('listed')}  queued {t('queued')}  known {t('known')}  archived {t('archived')}  "
        f"failed {t('failed')}  other {t('other')}  in flight {progress.in_flight}  "
        f"{progress.rate:.1f}/s  eta {duration(progress.eta_seconds)}"
    )


def _value(row: ExportRow, name: str) -> int:
    return int(getattr(row, "queued" if name == "to queue" else name))


def render(progress: Progress) -> str:
    """Counts per source and account, totals, and failures by cause."""
    names = _DRY if progress.dry_run else _RUN
    title = "export dry run (nothing queued)" if progress.dry_run else f"export {progress.state}"
    if progress.resumed:
        title += " (resumed)"
    lines = [title, f"{'source':<7} {'account':<34} " + " ".join(f"{n:>9}" for n in names) + "  listing"]
    for row in progress.rows:
        listing = "done" if row.done else (f"error: {row.error}" if row.error else "not finished")
        counts = " ".join(f"{_value(row, n):>9}" for n in names)
        lines.append(f"{row.source:<7} {row.account:<34} {counts}  {listing}")
    totals = " ".join(f"{sum(_value(r, n) for r in progress.rows):>9}" for n in names)
    lines.append(f"{'total':<42} {totals}")
    if progress.causes:
        lines.append("failures by cause:")
        for cause, count in sorted(progress.causes.items(), key=lambda item: -item[1]):
            lines.append(f"  {count:>7}  {cause}")
    if progress.state == "stopped" and not progress.dry_run:
        lines.append("stopped before the end: run the same command again to resume where it stopped")
    return "\n".join(lines)
