"""Demo step: the image build plan, rendered without building anything.

Shows what `packer build packer/` would do for this VERSION: the Packer
variables with their values (defaults plus the -var set), the derived AMI
name, tags and deprecation time (`packer inspect`), a `packer validate` of
that same set, and the ordered role list playbooks/build.yml runs on the
build instance (`ansible-playbook --list-tasks`). It also names the release
pins (installer checksums) a real build still needs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from tools.demo import DemoContext

ROOT = Path(__file__).resolve().parents[2]
PACKER_DIR = ROOT / "packer"
# Pins a real build needs; empty values make the roles' preflight stop the build.
PIN_KEYS = (
    "miniconda_installer_sha256",
    "ocap_gstreamer_bundle_version",
    "aws_tools_cli_msi_sha256",
    "aws_tools_ps_module_sha256",
    "dcv_msi_sha256",
)


def packer_vars(version: str) -> list[str]:
    project = yaml.safe_load((ROOT / "playbooks/group_vars/all/project.yml").read_text())
    return [
        "-var",
        f"version={version}",
        "-var",
        f"project={project['ocap_project']}",
        "-var",
        f"environment={project['ocap_environment']}",
    ]


def parse_inspect(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(input variables, local variables) from `packer inspect` output."""
    inputs: dict[str, str] = {}
    local: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^(var|local)\.([A-Za-z0-9_]+): (.*)$", line)
        if m:
            value = m.group(3)
            # Packer prints every value as a quoted string.
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            (inputs if m.group(1) == "var" else local)[m.group(2)] = value
    return inputs, local


def role_order(list_tasks: str) -> list[str]:
    """Roles in the order `ansible-playbook --list-tasks` shows their tasks."""
    roles: list[str] = []
    for line in list_tasks.splitlines():
        m = re.match(r"^\s+([a-z_]+) : ", line)
        if m and m.group(1) not in roles:
            roles.append(m.group(1))
    return roles


def unset_pins() -> list[str]:
    data = yaml.safe_load((ROOT / "playbooks/group_vars/all/build.yml").read_text())
    return [key for key in PIN_KEYS if not data.get(key)]


def run(ctx: DemoContext) -> list[str]:
    env = {"PACKER_PLUGIN_PATH": str(ROOT / ".tools/packer-plugins"), "CHECKPOINT_DISABLE": "1"}
    var_args = packer_vars(ctx.version)
    ctx.run(["packer", "init", str(PACKER_DIR)], env=env)
    inspect = ctx.run(["packer", "inspect", *var_args, str(PACKER_DIR)], env=env)
    inputs, local = parse_inspect(inspect)
    ctx.run(["packer", "validate", *var_args, str(PACKER_DIR)], env=env)

    inventory = ctx.work / "build-plan-inventory.yml"
    inventory.write_text(
        "ocap_build:\n  hosts:\n    packer-build-instance:\n"
        "      ansible_connection: winrm\n      ansible_shell_type: powershell\n"
    )
    listed = ctx.run(
        [
            "ansible-playbook",
            "--list-tasks",
            "-i",
            str(inventory),
            "-e",
            f"ocap_version={ctx.version}",
            "playbooks/build.yml",
        ]
    )
    roles = role_order(listed)
    task_count = sum(1 for line in listed.splitlines() if re.match(r"^\s{6}\S", line))
    ctx.facts["build_plan"] = {"variables": inputs, "ami_name": local.get("ami_name", ""), "roles": roles}

    print("    Packer variables (var.*):")
    for name, value in sorted(inputs.items()):
        print(f"      {name:36} {value}")
    print("    Derived (local.*):")
    for name in ("ami_name", "deprecate_at", "use_public_ip_rule"):
        print(f"      {name:36} {local.get(name, '')}")
    print("    playbooks/build.yml, in order:")
    for i, role in enumerate(roles, 1):
        print(f"      {i}. {role}")
    pins = unset_pins()
    ami = local.get("ami_name", "?")
    return [
        f"would build {ami} (packer validate OK) with {len(roles)} roles, {task_count} tasks",
        f"base {inputs.get('source_ami_name', '?')} in {inputs.get('aws_region', '?')} on "
        f"{inputs.get('instance_type', '?')}; encrypted, IMDSv2, deprecated {local.get('deprecate_at', '')}",
        "roles: " + " -> ".join(roles),
        ("release pins still to fill for a real build: " + ", ".join(pins))
        if pins
        else "all release pins are set",
    ]
