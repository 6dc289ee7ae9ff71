"""After a verified upload the session row moves to Uploaded; the table can never block an upload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3

from ocap_agent import state
from tests import stack
from tests.integration.upload.conftest import UploadEnv
from tests.integration.upload.support import run_agent_inprocess


def config_with_table(u: UploadEnv, moto: stack.Server, table: str) -> Path:
    cfg = json.loads(u.config().read_text())
    cfg["upload"].update(update_state=True, endpoint_url=u.env["AWS_ENDPOINT_URL"])
    cfg["aws"] = {"endpoint_url": moto.endpoint, "region": "us-east-1"}
    cfg["state"] = {"table": table}
    path = u.tmp / "with-table.json"
    path.write_text(json.dumps(cfg))
    return path


def ddb_client(moto: stack.Server) -> Any:
    return boto3.client("dynamodb", endpoint_url=moto.endpoint, region_name="us-east-1")


def test_session_row_moves_to_uploaded(u: UploadEnv, moto_server: stack.Server, unique: str) -> None:
    table = f"state-{unique}"
    ddb = ddb_client(moto_server)
    ddb.create_table(**state.table_definition(table))
    rows = state.StateTable(ddb, table)
    folder = u.make_session(files={"r.mkv": 5000}, meta={"session_id": f"s-{unique}"})
    rows.create(state.session_key(f"s-{unique}"), state.SessionState.UPLOADING, pool="p1")

    proc = run_agent_inprocess(
        [
            "--config",
            str(config_with_table(u, moto_server, table)),
            "upload",
            str(folder),
            "--bucket",
            u.bucket,
        ]
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state_table"] == "updated"
    row = rows.get(state.session_key(f"s-{unique}"))
    assert row is not None
    assert row["state"] == "Uploaded"
    assert row["manifest_key"] == f"recordings/s-{unique}/manifest.json"


def test_unreachable_or_missing_table_never_blocks_the_upload(
    u: UploadEnv, moto_server: stack.Server, unique: str
) -> None:
    folder = u.make_session(files={"r.mkv": 5000})
    cfg = config_with_table(u, moto_server, f"no-such-table-{unique}")
    proc = run_agent_inprocess(["--config", str(cfg), "upload", str(folder), "--bucket", u.bucket])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state_table"] == "not updated"
    assert "state table" in proc.stderr
    assert not folder.exists(), "the upload is verified, so the local copy still goes"
