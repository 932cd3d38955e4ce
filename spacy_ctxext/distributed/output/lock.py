"""One run per output folder: ``OUTPUT/.lock``, held while a run writes.

Two runs on one output would each skip what the other has not committed yet and annotate
it twice. The lock file is created exclusively (``O_EXCL``: atomic on local disks and
NFSv3+) and names its run (host, pid, run id, start); the holder's driver rewrites it
every ``HEARTBEAT_SECONDS``. A second run is refused with ``OutputLockedError`` unless the
lock is stale, which it takes over with a warning:

- its heartbeat is older than ``stale_after`` seconds (a crashed or killed driver, on any
  host; default ``STALE_SECONDS``), or
- it was taken on this host by a process that no longer exists.

To clear a lock by hand (a run you know is dead, before ``stale_after`` has passed):
delete ``OUTPUT/.lock``.
"""

import json
import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ...io_atomic import write_text

LOCK_NAME = ".lock"
HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 120.0


class OutputLockedError(RuntimeError):
    """Another run is writing the same output folder."""


class OutputLock:
    """``with OutputLock(output, run_id):`` hold the output's lock for the block."""

    def __init__(
        self, root: Union[str, Path], run_id: str, stale_after: float = STALE_SECONDS
    ) -> None:
        self.path = Path(root) / LOCK_NAME
        self.stale_after = stale_after
        self.record = {"host": socket.gethostname(), "pid": os.getpid(), "run_id": run_id}
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    def __enter__(self) -> "OutputLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._create():
            holder = read_lock(self.path)
            why = stale_reason(holder, self.stale_after)
            if why is None:
                raise OutputLockedError(locked_message(self.path, holder, self.stale_after))
            warnings.warn(f"{self.path}: taking over the lock of a dead run ({why})", stacklevel=2)
            self.path.unlink(missing_ok=True)
            if not self._create():  # another run took it over first
                raise OutputLockedError(
                    locked_message(self.path, read_lock(self.path), self.stale_after)
                )
        self._beat = threading.Thread(target=self._heartbeat, name="ctxext-lock", daemon=True)
        self._beat.start()

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if read_lock(self.path).get("run_id") == self.record["run_id"]:
            self.path.unlink(missing_ok=True)

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf8") as f:
            f.write(self._text())
        return True

    def _text(self) -> str:
        return json.dumps({**self.record, "heartbeat": time.time()}) + "\n"

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if read_lock(self.path).get("run_id") != self.record["run_id"]:
                return  # taken over (we were thought dead): do not overwrite the new holder
            write_text(self.path, self._text())


def read_lock(path: Path) -> Dict[str, Any]:
    """The lock's record; {} if there is none (or it is being rewritten and unreadable)."""
    try:
        record = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def stale_reason(holder: Dict[str, Any], stale_after: float) -> Optional[str]:
    """Why the holder is dead, or None if it may be alive."""
    age = time.time() - float(holder.get("heartbeat", 0))
    if age > stale_after:
        return f"no heartbeat for {age:.0f}s, more than {stale_after:.0f}s"
    if holder.get("host") == socket.gethostname() and not _pid_alive(int(holder.get("pid", 0))):
        return f"process {holder.get('pid')} on this host has exited"
    return None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def locked_message(path: Path, holder: Dict[str, Any], stale_after: float) -> str:
    age = time.time() - float(holder.get("heartbeat", 0))
    return (
        f"{path.parent} is being written by another run (host {holder.get('host')}, pid "
        f"{holder.get('pid')}, run {holder.get('run_id')}, last heartbeat {age:.0f}s ago). "
        "Wait for it to finish, or give this run another output folder. If that run is dead, "
        f"its lock is taken over once its heartbeat is {stale_after:.0f}s old; to clear it "
        f"now, delete {path}."
    )
