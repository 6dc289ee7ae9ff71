"""A simulated OCAP recorder that honours OCAP's command-line contract.

    python tests/fakes/fake_ocap.py FILE_LOCATION [OCAP options] [fake options]

Like ``ocap FILE_LOCATION``, it writes FILE_LOCATION.mcap and FILE_LOCATION.mkv
and finalizes both only on KeyboardInterrupt (SIGINT on POSIX; on Windows the
agent's wrapper turns CTRL_BREAK into one). Killed, it leaves them unfinalized.
The files have the real formats' finalization marks, so the agent's checks
work on both: the MCAP file ends with DataEnd + Footer + magic only when
finalized; the MKV Segment's size stays "unknown" until finalization writes the
Cues (index) and patches it.

OCAP options accepted (and ignored): --window-name, --fps, --monitor-idx,
--[no-]record-audio, --[no-]record-video, --[no-]record-timestamp, --show-cursor.

Fake options; each also reads an environment variable (the flag wins):

  --start-delay S         FAKE_OCAP_START_DELAY     seconds before the files appear (0.5)
  --write-interval S      FAKE_OCAP_WRITE_INTERVAL  seconds between writes (0.05)
  --chunk-bytes N         FAKE_OCAP_CHUNK_BYTES     bytes per write to the mkv (65536)
  --fail MODE             FAKE_OCAP_FAIL            none | crash-before-files | crash-after-files
                                                    (a crash exits with code 3, files unfinalized)
  --no-files              FAKE_OCAP_NO_FILES=1      keep running but never create the files
  --hang-on-stop          FAKE_OCAP_HANG_ON_STOP=1  ignore the stop request (must be killed)
  --health-check-failed M FAKE_OCAP_HEALTH_CHECK_FAILED
                                                    never | at-start | while-recording: log
                                                    "HEALTH CHECK FAILED" and exit 0
  --events FILE           FAKE_OCAP_EVENTS          append one JSON line per event
                                                    (started, files, finalized, killed-by-hang...)
  --exclusive FILE        FAKE_OCAP_EXCLUSIVE       marker held while recording; finding it
                                                    already there logs an "overlap" event

``is_finalized(base)`` tells whether BASE.mcap and BASE.mkv were both finalized.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import sys
import time
from pathlib import Path
from typing import Any

MCAP_MAGIC = b"\x89MCAP0\r\n"
EBML_ID = b"\x1a\x45\xdf\xa3"
SEGMENT_ID = b"\x18\x53\x80\x67"
CLUSTER_ID = b"\x1f\x43\xb6\x75"
CUES_ID = b"\x1c\x53\xbb\x6b"
UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"
HEALTH_FAILED = "HEALTH CHECK FAILED"


def _vint8(n: int) -> bytes:
    """An 8-byte EBML size."""
    return bytes([0x01]) + n.to_bytes(7, "big")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"FAKE_OCAP_{name}", default)


def _flag(name: str) -> bool:
    return _env(name, "").lower() in ("1", "true", "yes")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="fake_ocap")
    p.add_argument("file_location")
    for name in ("--window-name", "--fps", "--monitor-idx"):
        p.add_argument(name)
    for name in ("record-audio", "record-video", "record-timestamp"):
        p.add_argument(f"--{name}", action="store_true")
        p.add_argument(f"--no-{name}", action="store_true")
    p.add_argument("--show-cursor", action="store_true")
    p.add_argument("--start-delay", type=float, default=float(_env("START_DELAY", "0.5")))
    p.add_argument("--write-interval", type=float, default=float(_env("WRITE_INTERVAL", "0.05")))
    p.add_argument("--chunk-bytes", type=int, default=int(_env("CHUNK_BYTES", "65536")))
    p.add_argument(
        "--fail", choices=("none", "crash-before-files", "crash-after-files"), default=_env("FAIL", "none")
    )
    p.add_argument("--no-files", action="store_true", default=_flag("NO_FILES"))
    p.add_argument("--hang-on-stop", action="store_true", default=_flag("HANG_ON_STOP"))
    p.add_argument(
        "--health-check-failed",
        choices=("never", "at-start", "while-recording"),
        default=_env("HEALTH_CHECK_FAILED", "never"),
    )
    p.add_argument("--events", default=_env("EVENTS", ""))
    p.add_argument("--exclusive", default=_env("EXCLUSIVE", ""))
    return p.parse_args(argv)


class Recorder:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        loc = args.file_location
        for suffix in (".mkv", ".mcap"):
            loc = loc.removesuffix(suffix)
        self.base = Path(loc)
        self.mcap: Any = None
        self.mkv: Any = None
        self.segment_data_at = 0
        self.chunk = (os.urandom(min(args.chunk_bytes, 4096)) * (args.chunk_bytes // 4096 + 1))[
            : args.chunk_bytes
        ]

    def event(self, name: str, **extra: Any) -> None:
        if not self.args.events:
            return
        entry = {"event": name, "pid": os.getpid(), "base": str(self.base), "ns": time.time_ns(), **extra}
        fd = os.open(self.args.events, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())  # one write: lines never interleave
        finally:
            os.close(fd)

    def open_files(self) -> None:
        self.base.parent.mkdir(parents=True, exist_ok=True)
        self.mcap = open(self.base.with_name(self.base.name + ".mcap"), "wb", buffering=0)  # noqa: SIM115
        self.mkv = open(self.base.with_name(self.base.name + ".mkv"), "wb", buffering=0)  # noqa: SIM115
        profile, library = b"owa", b"fake-ocap"
        header = struct.pack("<I", len(profile)) + profile + struct.pack("<I", len(library)) + library
        self.mcap.write(MCAP_MAGIC + b"\x01" + struct.pack("<Q", len(header)) + header)
        doctype = b"\x42\x82\x88matroska"
        self.mkv.write(EBML_ID + bytes([0x80 | len(doctype)]) + doctype + SEGMENT_ID + UNKNOWN_SIZE)
        self.segment_data_at = self.mkv.tell()
        self.event("files")

    def write_some(self) -> None:
        body = struct.pack("<HIQQ", 1, 0, time.time_ns(), time.time_ns()) + b"{}"
        self.mcap.write(b"\x05" + struct.pack("<Q", len(body)) + body)
        self.mkv.write(CLUSTER_ID + _vint8(len(self.chunk)) + self.chunk)

    def finalize(self) -> None:
        if self.mcap is None:
            return
        self.mcap.write(b"\x0f" + struct.pack("<QI", 4, 0))  # DataEnd
        self.mcap.write(b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0) + MCAP_MAGIC)  # Footer + magic
        self.mcap.close()
        cues = b"\xbb\x80"  # one empty CuePoint: enough to mark the index
        self.mkv.write(CUES_ID + bytes([0x80 | len(cues)]) + cues)
        end = self.mkv.tell()
        self.mkv.seek(self.segment_data_at - 8)
        self.mkv.write(_vint8(end - self.segment_data_at))
        self.mkv.close()
        self.event("finalized")

    def run(self) -> int:
        a = self.args
        marker = Path(a.exclusive) if a.exclusive else None
        if marker is not None:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                self.event("overlap")
        self.event("started")
        print(f"fake ocap: recording to {self.base}.mcap / .mkv", flush=True)
        try:
            try:
                time.sleep(a.start_delay)
                if a.health_check_failed == "at-start":
                    print(f"{HEALTH_FAILED}: no frames from the screen capture", flush=True)
                    return 0
                if a.fail == "crash-before-files":
                    print("fake ocap: crashing before creating files", flush=True)
                    os._exit(3)
                if not a.no_files:
                    self.open_files()
                writes = 0
                while True:
                    if self.mcap is not None:
                        self.write_some()
                        writes += 1
                        if writes == 1 and a.fail == "crash-after-files":
                            print("fake ocap: crashing while recording", flush=True)
                            os._exit(3)
                        if writes == 1 and a.health_check_failed == "while-recording":
                            print(f"{HEALTH_FAILED}: capture stalled", flush=True)
                            os._exit(0)
                    time.sleep(a.write_interval)
            except KeyboardInterrupt:
                if a.hang_on_stop:
                    self.event("hanging")
                    print("fake ocap: stop requested, hanging", flush=True)
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    while True:
                        time.sleep(3600)
                print("fake ocap: stop requested, finalizing", flush=True)
                self.finalize()
                return 0
        finally:
            if marker is not None:
                marker.unlink(missing_ok=True)


def _mcap_finalized(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, os.SEEK_END)
            if f.tell() < 8 + 29 + 8:
                return False
            f.seek(-(29 + 8), os.SEEK_END)
            tail = f.read()
    except OSError:
        return False
    return head == MCAP_MAGIC and tail[-8:] == MCAP_MAGIC and tail[0] == 0x02


def _mkv_finalized(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError:
        return False
    at = data.find(SEGMENT_ID)
    if not data.startswith(EBML_ID) or at < 0:
        return False
    size = data[at + 4 : at + 12]
    return size != UNKNOWN_SIZE and CUES_ID in data[at:]


def is_finalized(base: str | Path) -> bool:
    """Whether BASE.mcap and BASE.mkv were both written to the end (footer and index)."""
    b = Path(base)
    return _mcap_finalized(b.with_name(b.name + ".mcap")) and _mkv_finalized(b.with_name(b.name + ".mkv"))


def main(argv: list[str] | None = None) -> int:
    return Recorder(parse(sys.argv[1:] if argv is None else argv)).run()


if __name__ == "__main__":
    raise SystemExit(main())
