"""The Packer template's own gates: fmt and validate fail loudly on a broken
copy (naming what is wrong), and the post-build step finishes only the AMIs of
the current run. Always on temporary copies; the real files are never touched."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKER_DIR = ROOT / "packer"
PACKER = shutil.which("packer") or str(ROOT / ".tools" / "bin" / "packer")
needs_packer = pytest.mark.skipif(
    not Path(PACKER).exists(), reason="packer is not installed (tools/install-tools.sh)"
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PACKER_PLUGIN_PATH", str(ROOT / ".tools" / "packer-plugins"))
    env["CHECKPOINT_DISABLE"] = "1"
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), str(ROOT / ".tools" / "bin"), env["PATH"]])
    return env


def _copy_template(tmp_path: Path) -> Path:
    """packer/ plus a stand-in playbook at the path the template names."""
    dest = tmp_path / "packer"
    shutil.copytree(PACKER_DIR, dest, ignore=shutil.ignore_patterns("manifest.json"))
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "build.yml").write_text("---\n- name: Stand-in\n  hosts: all\n  tasks: []\n")
    return dest


@needs_packer
def test_fmt_check_fails_on_an_unformatted_file_and_names_it(tmp_path: Path) -> None:
    copy = _copy_template(tmp_path)
    sources = copy / "sources.pkr.hcl"
    sources.write_text(
        sources.read_text().replace("  instance_type = var.instance_type", "instance_type=var.instance_type")
    )
    proc = subprocess.run(
        [PACKER, "fmt", "-check", "-recursive", str(copy)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "sources.pkr.hcl" in proc.stdout + proc.stderr


@needs_packer
def test_real_template_is_formatted() -> None:
    proc = subprocess.run(
        [PACKER, "fmt", "-check", "-recursive", str(PACKER_DIR)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_packer
def test_validate_script_fails_on_an_invalid_template_with_a_clear_message(tmp_path: Path) -> None:
    copy = _copy_template(tmp_path)
    variables = copy / "variables.pkr.hcl"
    # A default that its own validation block rejects.
    variables.write_text(
        variables.read_text().replace('default     = "m6i.xlarge"', 'default     = "not a type"')
    )
    proc = subprocess.run(
        [str(ROOT / "tools" / "packer-validate.sh"), str(copy)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert f"packer-validate: {copy} is invalid (variable set: defaults)" in proc.stderr
    assert "instance_type must be an EC2 type name" in proc.stderr


@needs_packer
def test_validate_script_accepts_the_template_copy(tmp_path: Path) -> None:
    copy = _copy_template(tmp_path)
    proc = subprocess.run(
        [str(ROOT / "tools" / "packer-validate.sh"), str(copy)],
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "valid with the all-options variable set" in proc.stdout


def _finish_image() -> ModuleType:
    spec = importlib.util.spec_from_file_location("finish_image", PACKER_DIR / "scripts" / "finish_image.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_post_step_finishes_only_the_images_of_the_current_run() -> None:
    manifest = {
        "last_run_uuid": "run-2",
        "builds": [
            {"packer_run_uuid": "run-1", "artifact_id": "us-east-1:ami-0aaaaaaaaaaaaaaaa"},
            {
                "packer_run_uuid": "run-2",
                "artifact_id": "us-east-1:ami-0bbbbbbbbbbbbbbbb,eu-west-1:ami-0cccccccccccccccc",
            },
        ],
    }
    assert _finish_image().this_run_images(manifest) == [
        ("us-east-1", "ami-0bbbbbbbbbbbbbbbb"),
        ("eu-west-1", "ami-0cccccccccccccccc"),
    ]


def test_post_step_refuses_a_manifest_without_the_current_run() -> None:
    manifest = {
        "last_run_uuid": "run-3",
        "builds": [{"packer_run_uuid": "run-1", "artifact_id": "us-east-1:ami-1"}],
    }
    with pytest.raises(SystemExit, match="no build of run run-3"):
        _finish_image().this_run_images(manifest)
