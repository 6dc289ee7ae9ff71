"""The lint gates in `make test` fail on a broken file and name it.

Each case copies a deliberately broken file into a temporary folder and runs
the same tool, with the repository's own configuration, that `make lint` runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, text=True, capture_output=True, check=False)


def test_yamllint_fails_on_bad_yaml_and_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yml"
    bad.write_text("---\nkey: [unclosed\nother: value\n")
    result = run([str(BIN / "yamllint"), "--strict", "-c", str(ROOT / ".yamllint"), str(bad)], tmp_path)
    assert result.returncode != 0
    assert "broken.yml" in result.stdout
    assert "syntax error" in result.stdout


def test_yamllint_accepts_the_same_file_fixed(tmp_path: Path) -> None:
    good = tmp_path / "fixed.yml"
    good.write_text("---\nkey: [closed]\nother: value\n")
    result = run([str(BIN / "yamllint"), "--strict", "-c", str(ROOT / ".yamllint"), str(good)], tmp_path)
    assert result.returncode == 0, result.stdout


def test_ruff_fails_on_bad_python_and_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.py"
    bad.write_text("import os\n\ndef f():\n    return undefined_name\n")
    result = run([str(BIN / "ruff"), "check", "--config", str(ROOT / "pyproject.toml"), str(bad)], tmp_path)
    assert result.returncode != 0
    assert "broken.py" in result.stdout
    assert "F821" in result.stdout


def test_syntax_check_fails_on_a_broken_playbook_and_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yml"
    bad.write_text(
        "---\n- name: Broken\n  hosts: localhost\n  tasks:\n"
        "    - name: No such module\n      not.a.module: {}\n"
    )
    result = run([str(BIN / "ansible-playbook"), "--syntax-check", str(bad)], ROOT)
    assert result.returncode != 0
    assert "broken.yml" in result.stdout + result.stderr
