"""Did a task or step really read a faulted target? Linux inotify on the target's files.

``control.observe_read`` compares the target's content with the faulted content when the gate /
consumer starts. Whether the task then *read* it is only knowable while it runs: a fault on a
file no task reads must not count as "reached". For local files and SQLite databases the listener
buffers the ``target_read`` records taken at start, watches the target paths with inotify
(kernel-level: sees opens and reads by pandas, pyarrow's native I/O, SQLite and subprocesses
alike) and writes the records (with their start time) only when the task opened or read one of
them. Targets that cannot be watched (S3, PostgreSQL, missing paths, no inotify) are recorded at
start, as before: no claim is dropped for lack of a watch.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import struct
from collections.abc import Iterable
from typing import Any, cast

log = logging.getLogger(__name__)

IN_ACCESS = 0x001
IN_OPEN = 0x020
IN_ISDIR = 0x40000000
_HEADER = struct.Struct("iIII")
_MAX_WATCHES = 500
_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _LIBC


def watch_paths(targets: Iterable[Any]) -> list[str] | None:
    """Local paths to watch for these targets, or None when any of them cannot be watched."""
    paths: list[str] = []
    for target in targets:
        if target.kind == "local":
            path = target.location
        elif target.kind == "sql":
            from sqlalchemy.engine import make_url

            url = make_url(target.connect_url())
            if url.get_backend_name() != "sqlite" or not url.database:
                return None
            path = os.path.abspath(url.database)
        else:
            return None
        if not os.path.exists(path):
            return None
        paths.append(path)
    return paths or None


class ReadWatch:
    """inotify watch on files and directories (recursively, up to 500) telling whether anything
    READ them: data read from a file (``IN_ACCESS``) or a directory listed; opening a file only
    to (over)write it is not a read."""

    def __init__(self, paths: Iterable[str]):
        libc = _libc()
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._seen = False
        try:
            for path in self._expand(paths):
                if libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN | IN_ACCESS) < 0:
                    raise OSError(ctypes.get_errno(), f"inotify_add_watch {path} failed")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _expand(paths: Iterable[str]) -> list[str]:
        out: list[str] = []
        for path in paths:
            if os.path.isdir(path):
                for root, _dirs, _files in os.walk(path):
                    out.append(root)
            else:
                out.append(path)
        if len(out) > _MAX_WATCHES:
            raise OSError(f"more than {_MAX_WATCHES} directories to watch")
        return out

    def seen(self) -> bool:
        """Whether anything read a watched path since the watch began."""
        while not self._seen and self.fd >= 0:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset + _HEADER.size <= len(data):
                _wd, mask, _cookie, size = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size + size
                if mask & IN_ACCESS or (mask & IN_OPEN and mask & IN_ISDIR):
                    self._seen = True
        return self._seen

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class BufferedLedger:
    """A ledger whose ``record`` calls are kept (with their time) until :meth:`flush`."""

    def __init__(self, ledger: Any):
        self._ledger = ledger
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def record(self, run_id: str, kind: str, *, source: str = "", **data: Any) -> None:
        import time

        data.setdefault("ts", time.time())
        self.records.append((run_id, kind, {"source": source, **data}))

    def flush(self, **extra: Any) -> int:
        for run_id, kind, data in self.records:
            self._ledger.record(run_id, kind, **data, **extra)
        count, self.records = len(self.records), []
        return count


class PendingReads:
    """Reads of the tasks / steps running in this process, written to the ledger only when the
    task was seen reading a target (one instance per adapter; keys are the adapter's)."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._items: dict[Any, tuple[ReadWatch, BufferedLedger, dict[str, Any]]] = {}

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._items

    def begin(
        self,
        key: Any,
        *,
        run_id: str,
        task: str,
        role: str,
        ledger: Any,
        upstream_of: Iterable[str] = (),
    ) -> None:
        """``control.observe_read`` as ``task`` starts. Targets that cannot be watched (S3,
        server databases, a missing path, no inotify) are recorded now for the gate and the
        consumer; watchable ones are kept until :meth:`end`. Other tasks (role ``task``) are
        recorded only when seen reading, with ``upstream_of``: the gate / consumer they feed."""
        from mlchaos_orchestration.core import control

        leases = [x for x in ledger.live_leases(run_id=run_id) if x.state == "active"]
        if not leases:
            return
        paths = watch_paths(t for lease in leases for t in lease.targets)
        if paths is None:
            if role != "task":
                control.observe_read(run_id, task, role, ledger=ledger)
            return
        buffered = BufferedLedger(ledger)
        control.observe_read(run_id, task, role, ledger=cast(Any, buffered))  # a Ledger proxy
        if not buffered.records:
            return
        try:
            watch = ReadWatch(paths)
        except OSError as exc:  # no inotify here: record at start, as for unwatchable targets
            log.info("mlchaos: cannot watch reads of %s (%s): recorded at start", task, exc)
            if role != "task":
                buffered.flush()
            return
        feeds = sorted(set(upstream_of))
        extra = {"upstream_of": feeds} if role == "task" and feeds else {}
        with self._lock:
            self._items[key] = (watch, buffered, extra)

    def end(self, key: Any) -> bool | None:
        """The task ended: write its start-time reads if it read a target. True if written,
        False if it never read one, None if nothing was pending."""
        with self._lock:
            item = self._items.pop(key, None)
        if item is None:
            return None
        watch, buffered, extra = item
        try:
            if watch.seen():
                buffered.flush(read_seen=True, **extra)
                return True
            return False
        finally:
            watch.close()
