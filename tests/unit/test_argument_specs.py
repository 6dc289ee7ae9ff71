"""Each role's meta/argument_specs.yml documents exactly its defaults, and the
defaults have the documented types: a variable added to defaults/main.yml
without documentation (or documented but never defaulted) fails the suite,
naming the role and the variable."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = Path(__file__).resolve().parents[2]
ROLES_DIR = ROOT / "roles"
IMAGE_ROLES = (
    "miniconda",
    "ocap",
    "aws_tools",
    "agent",
    "scheduled_tasks",
    "dcv",
    "kiosk_user",
    "image_finalize",
)


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def spec_problems(role_dir: Path) -> list[str]:
    """Every way the role's defaults and its argument spec disagree, one message each."""
    role = role_dir.name
    defaults_file = role_dir / "defaults" / "main.yml"
    spec_file = role_dir / "meta" / "argument_specs.yml"
    problems = []
    for required in (defaults_file, spec_file, role_dir / "meta" / "main.yml", role_dir / "README.md"):
        if not required.is_file():
            problems.append(f"{role}: missing {required.relative_to(role_dir)}")
    if problems:
        return problems
    defaults: dict[str, Any] = _load(defaults_file)
    options: dict[str, Any] = _load(spec_file)["argument_specs"]["main"].get("options", {})
    for name in sorted(set(defaults) - set(options)):
        problems.append(f"{role}: default {name} is not documented in meta/argument_specs.yml")
    for name in sorted(set(options) - set(defaults)):
        problems.append(f"{role}: argument spec option {name} has no default in defaults/main.yml")
    for name in sorted(defaults):
        if not name.startswith(f"{role}_"):
            problems.append(f"{role}: public variable {name} must be prefixed {role}_")
    for name, option in sorted(options.items()):
        if not option.get("description"):
            problems.append(f"{role}: argument spec option {name} has no description")
    # The defaults must pass the role's own spec (templated strings stay strings).
    typed = {k: v for k, v in defaults.items() if k in options and not (isinstance(v, str) and "{{" in v)}
    spec = {k: v for k, v in options.items() if k in typed}
    result = ArgumentSpecValidator(
        {k: {kk: vv for kk, vv in v.items() if kk != "description"} for k, v in spec.items()}
    ).validate(typed)
    problems.extend(f"{role}: {msg}" for msg in result.error_messages)
    return problems


@pytest.mark.parametrize("role", IMAGE_ROLES)
def test_argument_specs_match_defaults(role: str) -> None:
    assert spec_problems(ROLES_DIR / role) == []


def test_every_role_is_checked() -> None:
    on_disk = {p.name for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").is_file()}
    assert set(IMAGE_ROLES) <= on_disk


def _copy_role(role: str, tmp_path: Path) -> Path:
    dest = tmp_path / role
    shutil.copytree(ROLES_DIR / role, dest)
    return dest


def test_undocumented_default_is_reported(tmp_path: Path) -> None:
    broken = _copy_role("dcv", tmp_path)
    defaults = broken / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text() + "dcv_secret_knob: 3\n")
    assert spec_problems(broken) == [
        "dcv: default dcv_secret_knob is not documented in meta/argument_specs.yml"
    ]


def test_documented_option_without_default_is_reported(tmp_path: Path) -> None:
    broken = _copy_role("kiosk_user", tmp_path)
    defaults = broken / "defaults" / "main.yml"
    text = defaults.read_text()
    start = text.index("kiosk_user_deny_rights:")
    defaults.write_text(text[:start])
    assert spec_problems(broken) == [
        "kiosk_user: argument spec option kiosk_user_deny_rights has no default in defaults/main.yml"
    ]


def test_default_of_the_wrong_type_is_reported(tmp_path: Path) -> None:
    broken = _copy_role("dcv", tmp_path)
    defaults = broken / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("dcv_web_port: 8443", "dcv_web_port: [8443]"))
    problems = spec_problems(broken)
    assert len(problems) == 1
    assert problems[0].startswith("dcv: ") and "dcv_web_port" in problems[0]


def test_pre_build_check_covers_every_role_the_build_applies() -> None:
    plays = _load(ROOT / "playbooks" / "build.yml")
    applied = [r["role"] for play in plays for r in play.get("roles", [])]
    checked = _load(ROOT / "playbooks" / "group_vars" / "all" / "build.yml")["ocap_build_roles"]
    assert applied == checked
    assert sorted(applied) == sorted(IMAGE_ROLES)
    # The seal is last: nothing may run after sysprep starts.
    assert applied[-1] == "image_finalize"
