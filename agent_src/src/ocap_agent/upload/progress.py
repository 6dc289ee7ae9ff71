"""Progress of an upload: a redrawn line on a terminal, structured log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import TextIO

log = logging.getLogger("ocap_agent.upload")

MIB = 1024 * 1024


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        tty: bool | None = None,
    ) -> None:
        self.label, self.total = label, total
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        # A terminal is redrawn often; a log gets a line every interval.
        self.interval = 0.2 if self.tty else interval_s
        self.done = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last = self._start

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
        self._report(final=False)

    def set_done(self, n: int) -> None:
        """Bytes already in S3 from an earlier run (a resume)."""
        with self._lock:
            self.done = n

    def finish(self) -> None:
        self._report(final=True)

    def _report(self, *, final: bool) -> None:
        elapsed = max(time.monotonic() - self._start, 1e-6)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / elapsed / MIB
        if self.tty:
            end = "\n" if final else ""
            sizes = f"{self.done / MIB:,.1f}/{self.total / MIB:,.1f} MiB"
            self.stream.write(f"\r{self.label}: {pct:5.1f}% {sizes} {rate:,.1f} MiB/s{end}")
            self.stream.flush()
        else:
            log.info(
                "upload progress" if not final else "upload transferred",
                extra={
                    "session_id": self.label,
                    "bytes_done": self.done,
                    "bytes_total": self.total,
                    "percent": round(pct, 1),
                    "mib_per_s": round(rate, 1),
                },
            )
