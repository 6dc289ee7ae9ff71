"""The rehearsal stack's servers start, answer, and keep S3 data across a restart."""

from pathlib import Path
from typing import Any

import boto3

from ocap_agent import state
from tests import stack


def test_state_table_conditional_transitions(ddb: Any, unique: str) -> None:
    name = f"ocap-state-{unique}"
    ddb.create_table(**state.table_definition(name))
    table = state.StateTable(ddb, name)
    pk = state.instance_key("i-0123")
    table.create(pk, state.InstanceState.WARMING_UP, pool="p1")
    row = table.transition(pk, state.InstanceState.HEALTHY)
    assert row["state"] == "Healthy" and row["revision"] == 2
    # Only one of two writers racing from Healthy to Claimed wins.
    table.transition(pk, state.InstanceState.CLAIMED, expect={state.InstanceState.HEALTHY})
    try:
        table.transition(pk, state.InstanceState.CLAIMED, expect={state.InstanceState.HEALTHY})
    except state.TransitionConflict:
        pass
    else:
        raise AssertionError("second claim must lose")
    assert [r["pk"] for r in table.query_pool("p1")] == [pk]


def test_s3_server_persists_across_restart(s3_server: stack.Server, stack_dir: Path, unique: str) -> None:
    env = stack.s3_env(s3_server.endpoint)
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = f"persist-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.bin", Body=b"kept")
    restarted = stack.restart(s3_server, stack_dir / "logs")
    s3_server.proc = restarted.proc  # the session fixture stops the new process
    assert s3.get_object(Bucket=bucket, Key="a/b.bin")["Body"].read() == b"kept"
