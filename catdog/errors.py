"""catdog's own exceptions. Each message says what was wrong and what to do."""

from __future__ import annotations

import errno
import os


class CatdogError(Exception):
    """Base class for every error catdog reports to a user."""


class ImageError(CatdogError, ValueError):
    """An image could not be read, decoded or converted."""


class DatasetError(CatdogError, ValueError):
    """A dataset folder is missing, empty or has the wrong layout."""


class RunError(CatdogError, ValueError):
    """A run folder or model file is missing or unreadable."""


class SettingError(CatdogError, ValueError):
    """An environment variable holds a value catdog cannot use (the message names the variable and the value)."""


class TrainingBusyError(CatdogError):
    """Another training is already running on this machine."""


# The OS errors a write can fail with that the user can fix, and how to say them.
WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def write_error(exc: BaseException, where: str | os.PathLike | None = None, then: str = "then try again",
                cls: type[CatdogError] = CatdogError) -> CatdogError | None:
    """The one clear message for a failed write (full disk, quota, read-only, permissions); None for other errors.

    Every command that writes files (training, export, report) words a full
    disk the same way: what could not be written, why, and what to do next.

    Args:
        exc: the exception the write raised.
        where: the file the user asked for (default: the file the error names);
            a write usually fails on a temporary beside it, which means nothing to the user.
        then: the next step once space is freed, e.g. "then export again".
        cls: the error class to return (training returns a `RunError`).
    """
    if not isinstance(exc, OSError) or exc.errno not in WRITE_ERRORS:
        return None
    where = where if where is not None else (exc.filename or "the target")
    return cls(f"cannot write {str(where)!r}: {WRITE_ERRORS[exc.errno]}; free some space or fix the permissions, {then}")
