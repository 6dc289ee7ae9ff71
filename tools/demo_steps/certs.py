"""Demo step ``certs``: issue the fleet's certificate from a local ACME CA and install it at "spin-up".

Starts Pebble (a local ACME CA) whose DNS-01 validation queries a test DNS
server fed from the Route53 zones in the AWS emulator, so the challenge really
travels module -> Route53 -> DNS -> CA. Then:

1. ``ansible-playbook playbooks/certs.yml``: issues ``*.zone`` + ``zone`` and stores it in SSM;
2. the same again: nothing is due, nothing changes;
3. ``ocap-agent certs sync``: installs dcv.pem/dcv.key as an instance would at spin-up.

Uses ``ctx.facts["hosted_zone_id"]`` (and ``hosted_zone_name``) when an earlier
step created the fleet's zone; creates one otherwise. Leaves ``certs`` in ctx.facts.
Prints expiry, serial, names and the installed files, never key contents.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import boto3

from tests import stack_pebble

PLAYBOOK = "playbooks/certs.yml"


def _client(ctx: Any, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=ctx.moto.endpoint,
        region_name=ctx.env["AWS_DEFAULT_REGION"],
        aws_access_key_id=ctx.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ctx.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=ctx.env.get("AWS_SESSION_TOKEN"),
    )


def _zone(ctx: Any) -> tuple[str, str]:
    route53 = _client(ctx, "route53")
    zone_id = ctx.facts.get("hosted_zone_id")
    if zone_id:
        zone = route53.get_hosted_zone(Id=zone_id)["HostedZone"]
        return zone_id.rsplit("/", 1)[-1], zone["Name"].rstrip(".")
    name = ctx.facts.get("hosted_zone_name") or "dev.workstations.example.test"
    zone = route53.create_hosted_zone(Name=name, CallerReference=uuid.uuid4().hex)["HostedZone"]
    return zone["Id"].rsplit("/", 1)[-1], name


def _playbook(ctx: Any, vars_file: Any) -> tuple[dict[str, Any], int]:
    """Run the renewal playbook; return the module's result for the one set and the play's changed count."""
    out = ctx.run(
        ["ansible-playbook", PLAYBOOK, "-e", f"@{vars_file}"],
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )
    data = json.loads(out[out.index("{") :])
    task = next(t for t in data["plays"][0]["tasks"] if t["task"]["name"].startswith("Issue or renew"))
    return task["hosts"]["localhost"]["results"][0], int(data["stats"]["localhost"]["changed"])


def run(ctx: Any) -> list[str]:
    pebble = stack_pebble.start(ctx.moto.endpoint, ctx.work / "pebble")
    ctx.cleanups.append(pebble.stop)
    zone_id, zone_name = _zone(ctx)
    pebble.feeder.watch(zone_id)
    parameter = f"/ocap-workstations/demo/tls/{zone_name}"
    extra = {
        "ocap_certs_acme_directory": pebble.directory_url,
        "ocap_certs_acme_ca_bundle": str(pebble.ca_bundle),
        "ocap_certs_account_key_path": str(ctx.work / "acme" / "account.key"),
        "ocap_certs_dns_propagation_resolvers": [pebble.dns_address],
        "ocap_certs_sets": [{"name": parameter, "domains": [f"*.{zone_name}", zone_name]}],
    }
    vars_file = ctx.work / "certs-vars.json"
    vars_file.write_text(json.dumps(extra))
    print(f"    ACME CA {pebble.directory_url}; its DNS {pebble.dns_address} mirrors Route53 zone {zone_id}")

    runs = [_playbook(ctx, vars_file) for _ in range(2)]
    for i, (result, _changed) in enumerate(runs, 1):
        print(f"    run {i}: {'renewed' if result['renewed'] else 'kept'} ({result['reason']})")

    ssm = _client(ctx, "ssm")
    bundle = json.loads(ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"])

    install_dir = ctx.work / "instance" / "NICE" / "dcv"
    agent_config = ctx.work / "certs-agent.json"
    agent_config.write_text(
        json.dumps(
            {
                "paths": {"data_dir": str(ctx.work / "instance" / "agent")},
                "certs": {"store": "ssm", "name": parameter, "install_dir": str(install_dir)},
            }
        )
    )
    sync_argv = [sys.executable, "-m", "ocap_agent", "--config", str(agent_config), "certs", "sync", "--json"]
    synced = json.loads(ctx.run(sync_argv))
    again = json.loads(ctx.run(sync_argv))

    files = sorted(install_dir.iterdir())
    ctx.facts["certs"] = {
        "parameter": parameter,
        "zone_id": zone_id,
        "serial": bundle["serial"],
        "not_after": bundle["not_after"],
        "domains": bundle["domains"],
        "install_dir": str(install_dir),
    }
    lines = [
        f"issued {', '.join(bundle['domains'])}: serial {bundle['serial']}, expires {bundle['not_after']}",
        f"stored in SSM {parameter} (SecureString); second run changed={runs[1][1]}",
        f"certs sync: {synced['status']}, then {again['status']}",
    ]
    lines += [f"  {f} ({f.stat().st_size} bytes, mode {f.stat().st_mode & 0o777:o})" for f in files]
    return lines
