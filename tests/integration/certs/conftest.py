"""Fixtures for the certificate tests: Pebble fed from moto's Route53, zones, a module runner.

Pebble validates DNS-01 by querying pebble-challtestsrv, which only knows what
the feeder copied from the Route53 zones in moto: a challenge validates only
if the module really wrote the right TXT values to the right zone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests import stack, stack_pebble

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def pebble(
    moto_server: stack.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack_pebble.PebbleStack]:
    with stack_pebble.running(moto_server.endpoint, tmp_path_factory.mktemp("pebble")) as pb:
        yield pb


@pytest.fixture(scope="module")
def short_pebble(
    moto_server: stack.Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[stack_pebble.PebbleStack]:
    """A second CA whose certificates live a few seconds (profile "shortlived")."""
    with stack_pebble.running(
        moto_server.endpoint,
        tmp_path_factory.mktemp("pebble-short"),
        validity_s=stack_pebble.SHORT_VALIDITY_S,
        profile="shortlived",
    ) as pb:
        yield pb


@pytest.fixture(scope="session")
def certs_env(moto_server: stack.Server) -> dict[str, str]:
    """Environment for subprocesses (ansible-playbook, ocap-agent) pointed at moto."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack.aws_env(moto_server.endpoint))
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        PYTHONPATH=str(ROOT),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


@pytest.fixture(scope="session")
def account_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("acme") / "account.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)
    return path


def aws(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


@dataclass
class Zone:
    id: str
    name: str  # without the trailing dot


@pytest.fixture(scope="session")
def route53(moto_server: stack.Server) -> Any:
    return aws("route53", moto_server.endpoint)


@pytest.fixture(scope="session")
def ssm(moto_server: stack.Server) -> Any:
    return aws("ssm", moto_server.endpoint)


@pytest.fixture(scope="session")
def secretsmanager(moto_server: stack.Server) -> Any:
    return aws("secretsmanager", moto_server.endpoint)


def make_zone(route53: Any, name: str, *, private_vpc: str | None = None) -> Zone:
    kwargs: dict[str, Any] = {"Name": name, "CallerReference": uuid.uuid4().hex}
    if private_vpc:
        kwargs.update(
            HostedZoneConfig={"PrivateZone": True}, VPC={"VPCRegion": "us-east-1", "VPCId": private_vpc}
        )
    zone = route53.create_hosted_zone(**kwargs)["HostedZone"]
    return Zone(zone["Id"].rsplit("/", 1)[-1], name)


@pytest.fixture()
def zone(route53: Any, unique: str, pebble: stack_pebble.PebbleStack) -> Iterator[Zone]:
    """A public zone whose challenge records the CA's DNS mirrors (see ``unwatched_zone``)."""
    created = make_zone(route53, f"ws-{unique}.certs.test")
    pebble.feeder.watch(created.id)
    yield created
    pebble.feeder.unwatch(created.id)


@pytest.fixture()
def unwatched_zone(route53: Any, unique: str) -> Zone:
    """A public zone the CA's DNS never learns about: validation fails through DNS."""
    return make_zone(route53, f"dark-{unique}.certs.test")


def txt_records(route53: Any, zone_id: str) -> dict[str, list[str]]:
    """Every TXT record set in the zone: name -> values (quotes removed)."""
    out: dict[str, list[str]] = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rrset in page["ResourceRecordSets"]:
            if rrset["Type"] == "TXT":
                out[rrset["Name"]] = [r["Value"].strip('"') for r in rrset["ResourceRecords"]]
    return out


@dataclass
class PlayResult:
    rc: int
    results: list[dict[str, Any]]  # one per task of the play, in order (localhost's result)
    output: str  # everything the run printed

    def task(self, name: str) -> dict[str, Any]:
        for r in self.results:
            if r["_task"] == name:
                return r
        raise KeyError(f"no task {name!r} in {[r['_task'] for r in self.results]}")


def parse_json_callback(stdout: str) -> list[dict[str, Any]]:
    data = json.loads(stdout[stdout.index("{") :])
    results = []
    for play in data["plays"]:
        for task in play["tasks"]:
            result = dict(task["hosts"].get("localhost", {}))
            result["_task"] = task["task"]["name"]
            results.append(result)
    return results


def run_playbook(
    path: Path | str, env: dict[str, str], *args: str, tmp_path: Path | None = None
) -> PlayResult:
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), str(path), *args],
        env=env,
        cwd=ROOT,
        text=True,
        capture_output=True,
        check=False,
    )
    try:
        results = parse_json_callback(proc.stdout)
    except (ValueError, KeyError):
        raise AssertionError(  # noqa: B904 - the run's own output says more than the parse error
            f"ansible-playbook printed no JSON result:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return PlayResult(proc.returncode, results, proc.stdout + proc.stderr)


@pytest.fixture()
def run_module(
    certs_env: dict[str, str], tmp_path: Path, pebble: stack_pebble.PebbleStack, account_key: Path
) -> Any:
    """Run acme_route53_certificate once per given argument dict, in one play, and return the results.

    Common arguments (Pebble's directory and CA, the account key, waiting for
    the DNS Pebble queries) are filled in unless a task overrides them. Each
    task keeps going after a failure (ignore_errors) so one play covers
    several failure cases.
    """

    def run(
        *tasks: dict[str, Any],
        check: bool = False,
        extra: tuple[str, ...] = (),
        ca: stack_pebble.PebbleStack | None = None,
    ) -> PlayResult:
        ca = ca or pebble
        play_tasks = []
        for i, args in enumerate(tasks):
            full = {
                "acme_directory": ca.directory_url,
                "acme_ca_bundle": str(ca.ca_bundle),
                "account_key_src": str(account_key),
                "terms_agreed": True,
                "dns_propagation_resolvers": [ca.dns_address],
                "propagation_timeout": 30,
                "validation_timeout": 60,
            }
            full.update(args)
            task_check = bool(full.pop("_check_mode", False))  # this task only, in check mode
            for key in [k for k, v in full.items() if v is None]:
                del full[key]  # None: leave the option out
            task: dict[str, Any] = {"name": f"t{i}", "acme_route53_certificate": full, "ignore_errors": True}
            if task_check:
                task["check_mode"] = True
            play_tasks.append(task)
        playbook = tmp_path / f"play-{uuid.uuid4().hex[:6]}.yml"
        playbook.write_text(
            json.dumps([{"name": "certs", "hosts": "localhost", "gather_facts": False, "tasks": play_tasks}])
        )
        flags = ["--check"] if check else []
        return run_playbook(playbook, certs_env, "--diff", *flags, *extra)

    return run
