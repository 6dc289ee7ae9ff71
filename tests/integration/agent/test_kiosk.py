"""``ocap-agent kiosk sync`` and the warm-up against moto's SSM and Secrets Manager.

The account is the in-memory FakeAccounts (Windows' netapi32 is not here); the
store reads, the CLI, the exit codes and the warm-up's verdict are real.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from ocap_agent import kiosk, state
from ocap_agent.state import InstanceState, instance_key
from tests.fakes.accounts import FakeAccounts
from tests.integration.agent.conftest import read_events

IID = "i-0aaaaaaaaaaaaaaa1"
OLD, NEW = "Old-Kiosk-Password-2026", "New-Kiosk-Password-2027"


@pytest.fixture()
def accounts(monkeypatch: pytest.MonkeyPatch) -> FakeAccounts:
    fake = FakeAccounts({"KioskUser": (False, "random-from-the-image")})
    monkeypatch.setattr(kiosk, "default_accounts", lambda: fake)
    return fake


def with_kiosk(agent: Any, **kiosk_cfg: Any) -> Any:
    agent.config["kiosk"] = {"user": "KioskUser", **kiosk_cfg}
    agent.write()
    return agent


def test_parameter_sets_the_password_rotation_reaches_the_next_boot_and_nothing_shows_it(
    make_agent: Any, aws_env: dict[str, str], accounts: FakeAccounts, unique: str
) -> None:
    ssm = boto3.client("ssm")
    name = f"/ocap/{unique}/kiosk/password"
    agent = with_kiosk(make_agent(), name=name)
    missing = agent.run("kiosk", "sync", "--json")
    assert missing.returncode == kiosk.EXIT_UNSET, missing.stderr
    assert json.loads(missing.stdout)["status"] == "unset"
    assert accounts.users["KioskUser"][0] is False

    ssm.put_parameter(Name=name, Value=OLD, Type="SecureString")
    first = agent.run("kiosk", "sync")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"kiosk: KioskUser: password set from ssm {name}, account enabled"
    assert accounts.users["KioskUser"] == (True, OLD)

    ssm.put_parameter(Name=name, Value=NEW, Type="SecureString", Overwrite=True)  # the operator rotates
    assert agent.run("kiosk", "sync").returncode == 0
    assert accounts.users["KioskUser"] == (True, NEW)

    log_file = agent.data_dir / "log" / "agent.jsonl"
    logged = log_file.read_text()
    assert {e.get("event") for e in read_events(log_file)} >= {
        "kiosk.applied",
        "kiosk.no_password",
    }
    for secret in (OLD, NEW):
        assert secret not in logged + first.stdout + first.stderr + missing.stdout + missing.stderr


def test_secrets_manager_json_and_an_unreachable_store_keeps_the_password(
    make_agent: Any, aws_env: dict[str, str], accounts: FakeAccounts, unique: str
) -> None:
    name = f"ocap/{unique}/kiosk"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=json.dumps({"password": OLD}))
    agent = with_kiosk(make_agent(), store="secretsmanager", name=name)
    assert agent.run("kiosk", "sync").returncode == 0
    assert accounts.users["KioskUser"] == (True, OLD)

    # A closed port: the store is down at the next boot.
    agent.config["aws"] = {"endpoint_url": "http://127.0.0.1:9", "max_attempts": 1}
    agent.config["kiosk"]["timeout_s"] = 2
    agent.write()
    kept = agent.run("kiosk", "sync", "--json")
    assert kept.returncode == 0, kept.stderr
    assert json.loads(kept.stdout)["status"] == "kept"
    assert accounts.users["KioskUser"] == (True, OLD) and accounts.changes == 1


def test_warm_up_is_unhealthy_until_the_kiosk_user_can_sign_in(
    make_agent: Any, state_table: state.StateTable, accounts: FakeAccounts, unique: str
) -> None:
    name = f"/ocap/{unique}/kiosk/password"
    agent = with_kiosk(make_agent(table=state_table.table), name=name)
    refused = agent.run("warmup")
    assert refused.returncode != 0
    row = state_table.get(instance_key(IID)) or {}
    assert row["state"] == InstanceState.UNHEALTHY
    assert (
        row["reason"]
        == "kiosk user KioskUser is disabled: its password was never set (ocap-agent kiosk sync)"
    )

    boto3.client("ssm").put_parameter(Name=name, Value=OLD, Type="SecureString")
    assert agent.run("kiosk", "sync").returncode == 0
    healthy = agent.run("warmup")
    assert healthy.returncode == 0, healthy.stderr
    assert (state_table.get(instance_key(IID)) or {})["state"] == InstanceState.HEALTHY
