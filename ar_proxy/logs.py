"""hkp-ar's log: JSON lines, written off the event loop, reopened on SIGHUP.

The event loop only puts entries on a queue; one writer thread formats them and writes
the file or standard error, so a slow disk never stalls datagrams or RADIUS. SIGHUP
reopens the file (logrotate's "move, then HUP"); lines already queued go to the new file.

The hot path is `emit` (the line per exchange): it queues a small `Line` (no LogRecord,
no copy), and the writer formats what has queued up and writes it with one write and
one flush per batch, not per line (issue 14: the log thread cost 12 % of the AR's
samples). Other log calls (warnings, tracebacks) go through logging as before
(`_Enqueue`), into the same queue, so the order of lines is kept.
"""

from __future__ import annotations

import asyncio
import copy
import ctypes
import ctypes.util
import functools
import ipaddress
import json
import logging
import logging.handlers
import queue
import socket
import sys
import threading
import time
from typing import Any

log = logging.getLogger("hkp-ar")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: {"time", "level", "event", ...fields}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["event"] = "message"
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        return json.dumps(entry, separators=(", ", ": "))


class Line:
    """What `emit` queues: duck-types the parts of a LogRecord JsonFormatter reads."""

    __slots__ = ("created", "fields", "levelname")
    name = "hkp-ar"
    exc_info = None
    exc_text = None

    def __init__(self, levelname: str, fields: dict[str, Any]) -> None:
        self.created = time.time()
        self.levelname = levelname
        self.fields = fields


# ---- values as log lines write them ---------------------------------------------------


def address_text(address: bytes | None) -> str | None:
    return None if address is None else _address_text(address)


@functools.lru_cache(maxsize=4096)  # log lines name the same CoAs again and again
def _address_text(address: bytes) -> str:
    if len(address) == 16 and address[:10] != bytes(10):  # inet_ntop: C, as ipaddress writes it
        return socket.inet_ntop(socket.AF_INET6, address)
    return str(ipaddress.IPv6Address(address))  # ::/80: glibc writes some as dotted quads


def nai_text(nai: bytes | None) -> str | None:
    return None if nai is None else nai.decode("utf-8", "backslashreplace")


_sink: LogSink | None = None  # set by setup_logging; without one, emit goes via logging


def emit(level: int, event: str, **fields: Any) -> None:
    if not log.isEnabledFor(level):
        return
    sink = _sink
    if sink is None:
        log.log(level, event, extra={"fields": {"event": event, **fields}})
    else:
        sink.add(Line(logging.getLevelName(level), {"event": event, **fields}))


def name_this_thread(name: str) -> None:
    """Give the OS thread a name (top -H, /proc/PID/task/*/comm); best effort."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class _Enqueue(logging.handlers.QueueHandler):
    """Puts the record on the queue as it is (the listener formats it): the message is
    merged with its arguments and a traceback turned into text on the caller's side.
    Lines `emit` holds for the end of the loop iteration go first (their order kept)."""

    _plain = logging.Formatter()

    def __init__(self, sink: LogSink) -> None:
        super().__init__(sink.queue)
        self.sink = sink

    def enqueue(self, record: logging.LogRecord) -> None:
        self.sink.hand_over_from(threading.get_ident())
        super().enqueue(record)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = self._plain.formatException(record.exc_info)
            record.exc_info = None
        return record


class ReopeningFileHandler(logging.FileHandler):
    def reopen(self) -> None:
        """Close the file and open the path again (it may be a new file by now)."""
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


# Entries formatted and written at once by the writer (one write, one flush).
WRITE_BATCH = 512
_Entry = logging.LogRecord | Line | None  # None: write what is queued, then stop


class LogSink:
    """The handler that writes (file or standard error) behind a queue and its thread."""

    def __init__(self, handler: logging.Handler) -> None:
        self.handler = handler
        self.queue: queue.SimpleQueue[_Entry | list[Line]] = queue.SimpleQueue()
        self.enqueue = _Enqueue(self)
        # `emit`'s lines of the current event-loop iteration, handed to the writer at its
        # end: one queue put (one wake-up of the writer thread) per iteration, not per line.
        self._pending: list[Line] = []
        self._owner = 0  # the thread whose loop iteration holds them
        self._thread = threading.Thread(target=self._write_loop, name="hkp-ar-log", daemon=True)
        self._thread.start()

    @property
    def file(self) -> str | None:
        return self.handler.baseFilename if isinstance(self.handler, logging.FileHandler) else None

    def add(self, line: Line) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop in this thread: at once
            self.queue.put(line)
            return
        if not self._pending:
            self._owner = threading.get_ident()
            loop.call_soon(self.hand_over)
        self._pending.append(line)

    def hand_over(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self.queue.put(batch)

    def hand_over_from(self, thread: int) -> None:
        """Before another line from `thread`: the held lines, if that thread holds them."""
        if self._pending and thread == self._owner:
            self.hand_over()

    def reopen(self) -> None:
        if isinstance(self.handler, ReopeningFileHandler):
            self.handler.reopen()

    def stop(self) -> None:
        """Write what is queued, stop the thread, close the file."""
        global _sink
        if _sink is self:
            _sink = None
        self.hand_over()
        self.queue.put(None)
        self._thread.join()
        self.handler.close()

    def _write_loop(self) -> None:
        name_this_thread("hkp-ar-log")
        while True:
            batch: list[_Entry] = []
            item = self.queue.get()
            while True:
                batch += item if isinstance(item, list) else [item]
                if len(batch) >= WRITE_BATCH:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
            handler = self.handler
            lines = []
            for entry in batch:
                if entry is None:
                    continue
                try:
                    lines.append(handler.format(entry) + "\n")  # type: ignore[arg-type]
                except Exception:  # a field json cannot encode: say so, keep going
                    lines.append(json.dumps({"event": "log-format-error"}) + "\n")
            if lines:
                self._write("".join(lines))
            if None in batch:
                return

    def _write(self, text: str) -> None:
        handler = self.handler
        handler.acquire()
        try:
            stream = getattr(handler, "stream", None)
            if stream is None and isinstance(handler, logging.FileHandler):
                stream = handler.stream = handler._open()
            if stream is not None:
                stream.write(text)
                stream.flush()
        except Exception as exc:  # a full disk: say so on stderr, keep serving
            print(f"hkp-ar: cannot write the log: {exc}", file=sys.stderr)
        finally:
            handler.release()


def setup_logging(file: str | None, level: str = "info") -> LogSink:
    """Send the "hkp-ar" loggers to `file` (appended) or standard error, off the loop.
    Raises OSError when the file cannot be opened."""
    handler: logging.Handler
    if file:
        handler = ReopeningFileHandler(file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    global _sink
    sink = _sink = LogSink(handler)
    root = logging.getLogger("hkp-ar")
    root.handlers[:] = [sink.enqueue]
    root.setLevel(level.upper())
    root.propagate = False
    return sink
