"""What the Windows roles would do, computed on Linux with Ansible itself.

The roles' data (the agent's config file, the scheduled tasks' actions and
triggers) and their preflight checks are plain Jinja and asserts; only
applying the result needs Windows. One ansible-playbook run on localhost loads
the same variable files as the build (every role's defaults, the playbooks'
group_vars, every role's vars, in that order) and evaluates each case below in
a block of its own, with the case's variables on top; the tests then check the
outcomes the way a workstation would use them (the config file goes through
the agent's own loader).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocap_agent import config

ROOT = Path(__file__).resolve().parents[2]
ROLES = ROOT / "roles"
GROUP_VARS = ROOT / "playbooks" / "group_vars" / "all"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
ROLE_NAMES = (
    "miniconda",
    "ocap",
    "aws_tools",
    "agent",
    "scheduled_tasks",
    "dcv",
    "kiosk_user",
    "image_finalize",
)

SHA = "0123456789abcdef" * 4
MODULES = (
    "AWS.Tools.Common",
    "AWS.Tools.EC2",
    "AWS.Tools.S3",
    "AWS.Tools.DynamoDBv2",
    "AWS.Tools.SimpleSystemsManagement",
    "AWS.Tools.SecretsManager",
)
# What a release fills in playbooks/group_vars/all/build.yml before a real build.
PINS: dict[str, Any] = {
    "miniconda_installer_sha256": SHA,
    "ocap_gstreamer_bundle_version": "1.24.6",
    "aws_tools_cli_msi_sha256": SHA,
    "aws_tools_ps_module_sha256": dict.fromkeys(MODULES, SHA),
    "dcv_msi_sha256": SHA,
}


def _unpinned(name: str) -> dict[str, Any]:
    pins = dict(PINS)
    if name == "aws_tools_ps_module_sha256":
        pins[name] = {k: v for k, v in PINS[name].items() if k != "AWS.Tools.S3"}
    else:
        pins[name] = ""
    return pins


def _cases(wheel_dir: Path) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """case id -> ("render", expression, vars) or ("preflight", role, vars)."""
    good_wheel = str(wheel_dir / "ocap_agent-9.8.7-py3-none-any.whl")
    other_wheel = str(wheel_dir / "ocap_agent-9.8.6-py3-none-any.whl")
    cases: dict[str, tuple[str, str, dict[str, Any]]] = {
        "agent_config": ("render", "_agent_config", {}),
        "agent_config_overrides": (
            "render",
            "_agent_config",
            {"agent_config_overrides": {"upload": {"part_size_mb": 32}}, "agent_upload_bucket": "rec-bucket"},
        ),
        "startup_actions": ("render", "_scheduled_tasks_startup_actions", {}),
        "session_triggers": ("render", "_scheduled_tasks_session_triggers", {}),
        "session_triggers_logon": (
            "render",
            "_scheduled_tasks_session_triggers",
            {"scheduled_tasks_start_on_logon": True},
        ),
        "agent_wheel_other_version": ("preflight", "agent", {**PINS, "agent_wheel_path": other_wheel}),
        "agent_wheel_built": ("preflight", "agent", {**PINS, "agent_wheel_path": good_wheel}),
        "kiosk_admin": ("preflight", "kiosk_user", {"kiosk_user_groups": ["Users", "Administrators"]}),
        "agent_kiosk_without_store": (
            "preflight",
            "agent",
            {**PINS, "agent_wheel_path": good_wheel, "agent_kiosk_name": ""},
        ),
    }
    for role in ("miniconda", "ocap", "aws_tools", "dcv", "kiosk_user", "scheduled_tasks"):
        cases[f"pinned_{role}"] = ("preflight", role, PINS)
    for role, pin in (
        ("miniconda", "miniconda_installer_sha256"),
        ("ocap", "ocap_gstreamer_bundle_version"),
        ("aws_tools", "aws_tools_cli_msi_sha256"),
        ("aws_tools", "aws_tools_ps_module_sha256"),
        ("dcv", "dcv_msi_sha256"),
    ):
        cases[f"unpinned_{pin}"] = ("preflight", role, _unpinned(pin))
    return cases


def _merge(case: str, expression: str) -> str:
    """Jinja that records EXPRESSION's value under CASE in the _out fact."""
    return "{{ _out | combine({'" + case + "': " + expression + "}) }}"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("roles")
    for version in ("9.8.7", "9.8.6"):
        (tmp / f"ocap_agent-{version}-py3-none-any.whl").write_bytes(b"PK")
    files = [ROLES / r / "defaults" / "main.yml" for r in ROLE_NAMES]
    # Every group_vars/all file, as a real run loads them (project.yml first:
    # the others build on its names).
    files += [
        GROUP_VARS / "project.yml",
        *sorted(f for f in GROUP_VARS.glob("*.yml") if f.name != "project.yml"),
    ]
    files += [
        ROLES / r / "vars" / "main.yml" for r in ROLE_NAMES if (ROLES / r / "vars" / "main.yml").exists()
    ]
    tasks: list[dict[str, Any]] = [{"name": "Start", "ansible.builtin.set_fact": {"_out": {}}}]
    for case, (kind, what, case_vars) in _cases(tmp).items():
        body: list[dict[str, Any]]
        if kind == "render":
            body = [{"ansible.builtin.set_fact": {"_out": _merge(case, what)}}]
        else:
            body = [
                {"ansible.builtin.include_tasks": str(ROLES / what / "tasks" / "preflight.yml")},
                {"ansible.builtin.set_fact": {"_out": _merge(case, "'passed'")}},
            ]
        rescue = {
            "ansible.builtin.set_fact": {"_out": _merge(case, "'failed: ' ~ ansible_failed_result.msg")}
        }
        tasks.append({"name": case, "vars": case_vars, "block": body, "rescue": [rescue]})
    tasks.append({"name": "Report", "ansible.builtin.debug": {"msg": "{{ _out | to_json }}"}})
    play = {
        "name": "Roles on Linux",
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(f) for f in files],
        "tasks": tasks,
    }
    playbook = tmp / "play.yml"
    playbook.write_text(yaml.safe_dump([play], width=1000))
    # The play lives in a temp dir: the repository root (agent_src/requirements.lock, ...) is named.
    extra = {
        "ocap_version": "9.8.7",
        "ocap_build_repo_root": str(ROOT),
        "ansible_python_interpreter": sys.executable,
    }
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"
    )
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", "-e", json.dumps(extra), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout)["plays"][0]["tasks"][-1]["hosts"]["localhost"]["msg"]
    return dict(json.loads(report))


def test_agent_config_file_is_accepted_by_the_agent_and_wired_to_the_other_roles(
    outcomes: dict[str, Any],
) -> None:
    cfg = config.from_dict(outcomes["agent_config"])
    ocap_env = "C:\\ProgramData\\Miniconda3\\envs\\ocap-env"
    assert cfg.instance.image_version == "9.8.7"
    assert cfg.state.table == "ocap-workstations-dev-state"
    assert cfg.recorder.command == [ocap_env + "\\Scripts\\ocap.exe"]
    assert cfg.recorder.wrapper_python == ocap_env + "\\python.exe"
    assert cfg.recorder.env == {"OWA_DISABLE_VERSION_CHECK": "1"}
    # certs sync writes exactly where the dcv role makes DCV read.
    assert cfg.certs.install_dir == "C:\\Windows\\System32\\config\\systemprofile\\AppData\\Local\\NICE\\dcv"
    assert (cfg.certs.cert_file, cfg.certs.key_file) == ("dcv.pem", "dcv.key")
    # The image knows where recordings go and where its certificate comes from.
    assert cfg.upload.bucket
    assert cfg.certs.name
    # The password researchers sign in with is set on the user DCV and the scheduled tasks use.
    assert cfg.kiosk.user == "KioskUser"
    assert (cfg.kiosk.store, cfg.kiosk.name) == ("ssm", "/ocap-workstations/dev/kiosk/password")
    assert cfg.logging.file == "C:\\ProgramData\\ocap-agent\\logs\\agent.jsonl"


def test_agent_config_overrides_merge_without_losing_generated_keys(outcomes: dict[str, Any]) -> None:
    cfg = config.from_dict(outcomes["agent_config_overrides"])
    assert cfg.upload.part_size_mb == 32
    assert cfg.upload.bucket == "rec-bucket"
    assert cfg.upload.key_prefix == "recordings"


def test_startup_task_runs_the_agent_steps_in_order_with_the_config(outcomes: dict[str, Any]) -> None:
    exe = "C:\\ProgramData\\ocap-agent\\env\\Scripts\\ocap-agent.exe"
    config_arg = '--config "C:\\ProgramData\\ocap-agent\\config.json"'
    assert outcomes["startup_actions"] == [
        {"path": exe, "arguments": f"{config_arg} recover"},
        {"path": exe, "arguments": f"{config_arg} certs sync"},
        {"path": exe, "arguments": f"{config_arg} kiosk sync"},
        {"path": exe, "arguments": f"{config_arg} warmup"},
        {"path": exe, "arguments": f"{config_arg} uploads run"},
    ]


def test_session_start_fires_on_unlock_and_optionally_on_logon(outcomes: dict[str, Any]) -> None:
    unlock = {"type": "session_state_change", "state_change": "session_unlock", "user_id": "KioskUser"}
    assert outcomes["session_triggers"] == [unlock]
    assert outcomes["session_triggers_logon"] == [unlock, {"type": "logon", "user_id": "KioskUser"}]


@pytest.mark.parametrize(
    ("pin", "message"),
    [
        ("miniconda_installer_sha256", "Take the hash of Miniconda3-py311_24.11.1-0-Windows-x86_64.exe"),
        ("ocap_gstreamer_bundle_version", "ocap_gstreamer_bundle_version is unset"),
        ("aws_tools_cli_msi_sha256", "aws_tools_cli_msi_sha256 must be the sha256"),
        ("aws_tools_ps_module_sha256", "(missing or malformed: AWS.Tools.S3)"),
        (
            "dcv_msi_sha256",
            "dcv_msi_sha256 must be the sha256 of nice-dcv-server-x64-Release-2024.0-19030.msi",
        ),
    ],
)
def test_build_stops_before_running_an_unchecked_installer(
    outcomes: dict[str, Any], pin: str, message: str
) -> None:
    outcome = outcomes[f"unpinned_{pin}"]
    assert outcome.startswith("failed: ")
    assert message in outcome


@pytest.mark.parametrize("role", ["miniconda", "ocap", "aws_tools", "dcv", "kiosk_user", "scheduled_tasks"])
def test_preflight_passes_once_the_release_pins_are_filled(outcomes: dict[str, Any], role: str) -> None:
    assert outcomes[f"pinned_{role}"] == "passed"


def test_agent_preflight_takes_only_the_wheel_of_the_release_version(outcomes: dict[str, Any]) -> None:
    assert outcomes["agent_wheel_built"] == "passed"
    assert (
        "agent_wheel_path must name ocap_agent-9.8.7-py3-none-any.whl"
        in outcomes["agent_wheel_other_version"]
    )


def test_agent_preflight_wants_the_kiosk_password_parameter_with_a_kiosk_user(
    outcomes: dict[str, Any],
) -> None:
    assert "agent_kiosk_name set when agent_kiosk_user is" in outcomes["agent_kiosk_without_store"]


def test_kiosk_user_may_not_be_an_administrator(outcomes: dict[str, Any]) -> None:
    assert "kiosk_user_groups must not grant administrator" in outcomes["kiosk_admin"]
