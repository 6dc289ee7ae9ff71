"""Set-up shared by the pool tests, the pool benchmark and the demo steps.

Creates what a pool needs in the emulator (a state table, a launch template, a
hosted zone), fills a pool the fast way for broker tests (instances launched,
stopped and given warm rows in a few batch calls, as a finished reconcile
would leave them), and runs the ``ec2_instance_pool`` module through Ansible.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.config

from ocap_agent import state
from ocap_agent.broker import rows

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
# One of the public images moto's EC2 emulation ships with.
MOTO_IMAGE_NAME = "Deep Learning AMI Amazon Linux - 3.3_Oct2017"


def clients(endpoint: str | None = None) -> dict[str, Any]:
    endpoint = endpoint or os.environ["AWS_ENDPOINT_URL"]
    # Enough connections for the concurrent claim tests' worker threads.
    config = botocore.config.Config(max_pool_connections=64, retries={"mode": "standard", "max_attempts": 8})
    kw = {
        "endpoint_url": endpoint,
        "region_name": os.environ.get("AWS_REGION", "us-east-1"),
        "config": config,
    }
    return {name: boto3.client(name, **kw) for name in ("ec2", "dynamodb", "route53")}


def create_table(ddb: Any, name: str) -> state.StateTable:
    ddb.create_table(**state.table_definition(name))
    return state.StateTable(ddb, name)


def some_image(ec2: Any) -> str:
    """An image the emulator knows (moto ships ~1,300; filtering by name keeps the answer small)."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [MOTO_IMAGE_NAME]}])
    found = sorted(i["ImageId"] for i in images["Images"])
    if not found:  # another moto release: take any of its images, once
        found = sorted(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"])
    return str(found[0])


def create_template(ec2: Any, name: str, versions: int = 1) -> str:
    image = some_image(ec2)
    data = {
        "ImageId": image,
        "InstanceType": "t3.micro",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Project", "Value": "ocap"}]}],
    }
    lt = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    template_id = str(lt["LaunchTemplate"]["LaunchTemplateId"])
    for _ in range(versions - 1):
        new_version(ec2, template_id)
    return template_id


def new_version(ec2: Any, template_id: str) -> int:
    image = some_image(ec2)
    resp = ec2.create_launch_template_version(
        LaunchTemplateId=template_id,
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.small"},
    )
    return int(resp["LaunchTemplateVersion"]["VersionNumber"])


def create_zone(route53: Any, domain: str) -> str:
    resp = route53.create_hosted_zone(Name=domain, CallerReference=uuid.uuid4().hex)
    return str(resp["HostedZone"]["Id"])


def fill_warm(
    ec2: Any, table: state.StateTable, pool: str, template_id: str, count: int, *, version: int = 1
) -> list[str]:
    """COUNT warm instances, as a finished reconcile leaves them, in a handful of calls."""
    resp = ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": str(version)},
        MinCount=count,
        MaxCount=count,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Pool", "Value": pool}, {"Key": "Version", "Value": str(version)}],
            }
        ],
    )
    ids = [i["InstanceId"] for i in resp["Instances"]]
    ec2.stop_instances(InstanceIds=ids)
    now = state.now_iso()
    rows.create_instance_rows(
        table,
        (
            {
                state.PK: state.instance_key(i),
                "state": state.InstanceState.HEALTHY,
                state.POOL_ATTR: pool,
                "template_id": template_id,
                "template_version": version,
                rows.WARM_ATTR: now,
            }
            for i in ids
        ),
    )
    return ids


def pool_module() -> Any:
    """library/ec2_instance_pool.py imported here, its module_utils found as Ansible finds them."""
    import ansible.module_utils

    if str(ROOT / "module_utils") not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(ROOT / "module_utils"))
    from library import ec2_instance_pool

    return ec2_instance_pool


def call_module(args: dict[str, Any], *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Run ec2_instance_pool in this process (as Ansible's own module tests do): no Ansible start-up.

    The module code, argument validation and AnsibleAWSModule are the same as
    under ``ansible``; only the transport (AnsiballZ) is skipped.
    """
    from ansible.module_utils.testing import patch_module_args

    ec2_instance_pool = pool_module()
    payload = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
    out = io.StringIO()
    with patch_module_args(payload), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        ec2_instance_pool.main()
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def run_module(args: dict[str, Any], *, check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Run ec2_instance_pool through ``ansible`` (ad hoc) and return its result."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    argv = [str(BIN / "ansible"), "localhost", "-m", "ec2_instance_pool", "-a", json.dumps(args)]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    proc = subprocess.run(argv, cwd=ROOT, env=env, text=True, capture_output=True, check=False)
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"ansible printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        ) from None
    result: dict[str, Any] = out["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return result


def run_playbook(playbook: str, extra_vars: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    argv = [str(BIN / "ansible-playbook"), playbook, "-e", json.dumps(extra_vars), *args]
    return subprocess.run(argv, cwd=ROOT, env=env, text=True, capture_output=True, check=False)
