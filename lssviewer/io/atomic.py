"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A failed or interrupted write never leaves a half-written target, and an existing target is
only replaced once the new content is complete (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], copy_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success rename it to ``target``.

    Args:
        target: the final file path.
        copy_existing: start the temporary file as a copy of ``target`` (for appends).

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(target))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if copy_existing and target.exists():
            shutil.copyfile(target, tmp)
        else:
            tmp.unlink()  # writers create the file themselves
        yield tmp
        if not tmp.exists():
            raise OSError(f"writer did not create {tmp}")
        with contextlib.suppress(OSError):
            mode = target.stat().st_mode if target.exists() else 0o666 & ~_umask()
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
