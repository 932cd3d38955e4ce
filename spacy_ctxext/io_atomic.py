"""Files written whole or not at all: each goes to a hidden temporary name beside its
final one (``.NAME.tmp``, the name ``distributed.output.store`` uses) and is renamed over it only
once complete, so no file under a final name is ever partial, whatever stops the write
(a full disk, a file-size limit, Ctrl-C, a crash).

A failed write raises ``OutputWriteError``, naming the file and what to do, after removing
the temporary file.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

__all__ = [
    "OutputWriteError",
    "atomic_path",
    "remove_temporary_files",
    "temporary_name",
    "write_bytes",
    "write_text",
]

PathLike = Union[str, Path]


class OutputWriteError(OSError):
    """A file could not be written (disk full, file too large, no permission)."""

    def __str__(self) -> str:  # the message alone: it already gives the errno
        return str(self.strerror)


def temporary_name(path: PathLike) -> Path:
    """The hidden name a file is written under before it is renamed to ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp")


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield the temporary path to write ``path`` to; rename it to ``path`` when the block
    ends, or remove it if the block raises (KeyboardInterrupt included)."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _flush_to_disk(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OutputWriteError):
            raise
        raise write_error(path, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_error(path: Path, err: OSError) -> OutputWriteError:
    """The error for a failed write of ``path``: what the system said, and the fix."""
    reason = err.strerror or str(err)
    return OutputWriteError(
        err.errno,
        f"Could not write {path}: {reason} (errno {err.errno}). Nothing was left under that "
        "name. Free disk space, raise the file-size limit (ulimit -f) or choose a writable "
        "output folder, then run the command again.",
    )


def _flush_to_disk(tmp: Path) -> None:
    """Data on disk before the rename, so a power cut cannot leave a renamed empty file."""
    if not tmp.is_file():
        raise FileNotFoundError(2, f"{tmp} was never written")
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with tmp.open("w", encoding="utf8", newline="") as f:
            f.write(text)


def remove_temporary_files(folder: PathLike) -> int:
    """Remove what interrupted writes left in ``folder`` (``.*.tmp``); returns how many."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed
