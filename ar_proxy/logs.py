"""hkp-ar's log: JSON lines, written off the event loop, reopened on SIGHUP.

The event loop only puts records on a queue (logging.handlers.QueueHandler); one
QueueListener thread formats them and writes the file or standard error, so a slow
disk never stalls datagrams or RADIUS. SIGHUP reopens the file (logrotate's
"move, then HUP"); lines already queued go to the new file.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.handlers
import queue
import sys
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


def emit(level: int, event: str, **fields: Any) -> None:
    if log.isEnabledFor(level):
        log.log(level, event, extra={"fields": {"event": event, **fields}})


class _Enqueue(logging.handlers.QueueHandler):
    """Puts the record on the queue as it is (the listener formats it): the message is
    merged with its arguments and a traceback turned into text on the caller's side."""

    _plain = logging.Formatter()

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


class LogSink:
    """The handler that writes (file or standard error) behind a queue and its thread."""

    def __init__(self, handler: logging.Handler) -> None:
        self.handler = handler
        self.queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        self.enqueue = _Enqueue(self.queue)
        self.listener = logging.handlers.QueueListener(self.queue, handler)
        self.listener.start()

    @property
    def file(self) -> str | None:
        return self.handler.baseFilename if isinstance(self.handler, logging.FileHandler) else None

    def reopen(self) -> None:
        if isinstance(self.handler, ReopeningFileHandler):
            self.handler.reopen()

    def stop(self) -> None:
        """Write what is queued, stop the thread, close the file."""
        self.listener.stop()
        self.handler.close()


def setup_logging(file: str | None, level: str = "info") -> LogSink:
    """Send the "hkp-ar" loggers to `file` (appended) or standard error, off the loop.
    Raises OSError when the file cannot be opened."""
    handler: logging.Handler
    if file:
        handler = ReopeningFileHandler(file)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    sink = LogSink(handler)
    root = logging.getLogger("hkp-ar")
    root.handlers[:] = [sink.enqueue]
    root.setLevel(level.upper())
    root.propagate = False
    return sink
