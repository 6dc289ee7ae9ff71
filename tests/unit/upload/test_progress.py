"""Progress: a redrawn line on a terminal, JSON-able log records otherwise."""

from __future__ import annotations

import io
import logging

import pytest

from ocap_agent.upload.progress import Progress

MIB = 1024 * 1024


def test_terminal_gets_one_redrawn_line() -> None:
    out = io.StringIO()
    p = Progress("sess-1", 4 * MIB, stream=out, tty=True)
    p.interval = 0.0
    p.add(MIB)
    p.add(3 * MIB)
    p.finish()
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "sess-1:  25.0% 1.0/4.0 MiB" in text
    assert "100.0% 4.0/4.0 MiB" in text


def test_without_terminal_progress_is_logged_with_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ocap_agent.upload")
    p = Progress("sess-2", 2 * MIB, stream=io.StringIO(), tty=False, interval_s=0.0)
    p.set_done(MIB)  # resumed: half was already in S3
    p.add(MIB)
    p.finish()
    records = [r for r in caplog.records if r.name == "ocap_agent.upload"]
    assert records[-1].msg == "upload transferred"
    assert records[-1].__dict__["bytes_done"] == 2 * MIB
    assert records[-1].__dict__["percent"] == 100.0
    assert records[-1].__dict__["session_id"] == "sess-2"
