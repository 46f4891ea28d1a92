"""Failures of the machine rather than of the data: a full disk, a folder the platform cannot write,
Dagster's sqlite storage failing. The CLI ends them with one message (what failed, where, what to do)
and its own exit code instead of a traceback; what the run had done is in the audit tables already.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

# errno values that say the machine, not the platform's input, is at fault.
_OS_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file grew beyond the size this process may write",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "the disk reported an input/output error",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
}


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and every error it was raised from or during (SQLAlchemy and Dagster wrap sqlite's)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # sqlalchemy.exc.DBAPIError keeps the driver's error here
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)


def _free_space(path: Path) -> str:
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return ""
    return f" ({free / 2**20:,.0f} MiB free there)"


def environment_failure(error: BaseException) -> str | None:
    """One message for an environment failure anywhere in `error`'s chain, or None for any other error."""
    for cause in _chain(error):
        if isinstance(cause, sqlite3.Error):
            home = Path(os.environ.get("DAGSTER_HOME", "DAGSTER_HOME"))
            return (f"Dagster's run storage (sqlite files under {home}) failed: {cause}{_free_space(home)}. "
                    "The disk may be full or the folder not writable: free space or fix the folder's "
                    "permissions, then run again; `dataplatform status` shows what the run recorded.")
        if isinstance(cause, OSError) and cause.errno in _OS_CAUSES:
            where = Path(cause.filename) if cause.filename else None
            place = f" writing {where}{_free_space(where)}" if where else ""
            return (f"{_OS_CAUSES[cause.errno]}{place} ({cause.strerror}). Free space or fix the "
                    "permissions, then run again; `dataplatform status` shows what the run recorded.")
    return None
