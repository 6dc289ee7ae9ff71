"""Structured logging: JSON lines to a file (rotated by the image), plain text on a terminal."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonLinesFormatter.converter = __import__("time").gmtime  # UTC timestamps


def setup(level: str = "INFO", file: str | Path | None = None) -> None:
    """Log JSON lines to FILE (if given) and human text to stderr."""
    root = logging.getLogger("ocap_agent")
    root.setLevel(level.upper())
    root.handlers.clear()
    if file:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(file, encoding="utf-8")
        fh.setFormatter(JsonLinesFormatter())
        root.addHandler(fh)
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(
        JsonLinesFormatter() if not sys.stderr.isatty() else logging.Formatter("%(levelname)s %(message)s")
    )
    root.addHandler(err)
