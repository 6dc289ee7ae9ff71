"""Best-effort bookkeeping in the state table once a session is safely in S3.

The upload is the thing that matters: a missing table, no network to DynamoDB
or a row in an unexpected state is logged and never fails, delays for long or
undoes an upload.
"""

from __future__ import annotations

import logging

from ocap_agent import aws, state
from ocap_agent.config import AwsConfig
from ocap_agent.upload.options import Options

log = logging.getLogger("ocap_agent.upload")


def mark_uploaded(opts: Options, session_id: str, manifest_key: str) -> str:
    """Move the session's row to Uploaded; return what happened, in a word or two."""
    if not opts.state_table:
        return "skipped"
    try:
        client = aws.client(
            "dynamodb",
            AwsConfig(region=opts.region, endpoint_url=opts.state_endpoint_url, max_attempts=2),
            connect_timeout=3,
            read_timeout=5,
        )
        state.StateTable(client, opts.state_table).transition(
            state.session_key(session_id),
            state.SessionState.UPLOADED,
            bucket=opts.bucket,
            manifest_key=manifest_key,
            uploaded_at=state.now_iso(),
        )
    except Exception as exc:  # best effort by design: see the module docstring
        log.warning(
            "state table %s not updated for session %s: %s",
            opts.state_table,
            session_id,
            exc,
            extra={"session_id": session_id},
        )
        return "not updated"
    return "updated"
