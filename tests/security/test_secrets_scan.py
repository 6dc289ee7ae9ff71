"""The secrets scan: it catches each kind of secret, lets the test stack's fake keys through,
and finds nothing in the repository or in the rendered policies."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests import stack
from tests.security import iam
from tests.security.secrets_scan import repository_files, scan_files, scan_text

# Built at run time, so this file itself holds no secret-shaped text.
FAKE_KEY_ID = "AKIA" + "Q7ZX3V5N2M4K6J8H"
FAKE_SECRET = "wJalrXUtnFEMI" + "/K7MDENG/bPxRfiCYzq93kTNqPsx"
FAKE_PEM = (
    "-----BEGIN "
    + "RSA PRIVATE KEY-----\n"
    + ("MIIEowIBAAKCAQEA7v" * 12 + "\n") * 4
    + "-----END RSA PRIVATE KEY-----\n"
)

BAD_SAMPLES = {
    "access key id in Python": (
        f'client = boto3.client("s3", aws_access_key_id="{FAKE_KEY_ID}")\n',
        "AWS access key id",
    ),
    "session key id in JSON": ('{"AccessKeyId": "ASIA' + "Z" * 16 + '"}\n', "AWS access key id"),
    "secret key in an env file": (f"AWS_SECRET_ACCESS_KEY={FAKE_SECRET}\n", "AWS secret key assignment"),
    "secret key in YAML": (f'aws_secret_key: "{FAKE_SECRET}"\n', "AWS secret key assignment"),
    "private key": (FAKE_PEM, "private key"),
    "password in YAML": ("kiosk_user:\n  db_password: " + "hunter2-" + "correct-horse\n", "password in YAML"),
    "password in Python": ('connect(password="' + "s3cr3t-" + 'pass")\n', "password assignment"),
}


@pytest.mark.parametrize("name", sorted(BAD_SAMPLES))
def test_the_scan_catches_a_deliberately_bad_sample(name: str) -> None:
    text, kind = BAD_SAMPLES[name]
    findings = scan_text("sample", text)
    assert [f.kind for f in findings] == [kind], findings
    # The report points at the line and never prints the whole secret.
    assert findings[0].line >= 1
    assert FAKE_SECRET not in str(findings[0]) and "correct-horse" not in str(findings[0])


@pytest.mark.parametrize(
    "text",
    [
        f'"AWS_SECRET_ACCESS_KEY": "{stack.FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}",\n',
        f'VERSITY_SECRET = "{stack.VERSITY_SECRET}"\n',
        'ansible_password: "{{ vault_ansible_password }}"\n',
        "password: \"{{ lookup('ansible.builtin.password', '/dev/null', length=40) }}\"\n",
        "update_password: on_create\n",
        'aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],\n',
        "-----BEGIN " + "PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END PRIVATE KEY-----\n",
    ],
    ids=["moto-fake", "versitygw-key", "vault-ref", "generated", "mode", "expression", "stub-pem"],
)
def test_test_stack_keys_and_references_are_not_findings(text: str) -> None:
    assert scan_text("sample", text) == []


def test_the_repository_holds_no_secrets() -> None:
    findings = list(scan_files(repository_files()))
    assert findings == [], "\n".join(map(str, findings))


def test_rendered_policies_hold_no_secrets() -> None:
    for overrides in ({}, {"ocap_cert_store": "secretsmanager"}):
        variables = iam.policy_vars(**overrides)
        for template in iam.policy_templates():
            assert scan_text(template, iam.render(template, variables)) == []


def test_untracked_files_are_scanned_and_ignored_ones_are_not(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / ".gitignore").write_text("ignored.env\n")
    (tmp_path / "tracked.yml").write_text("name: x\n")
    git("add", "tracked.yml", ".gitignore")
    (tmp_path / "untracked.env").write_text(f"AWS_SECRET_ACCESS_KEY={FAKE_SECRET}\n")
    (tmp_path / "ignored.env").write_text(f"AWS_SECRET_ACCESS_KEY={FAKE_SECRET}\n")
    names = {p.name for p in repository_files(tmp_path)}
    assert names == {".gitignore", "tracked.yml", "untracked.env"}
    assert [f.path for f in scan_files(repository_files(tmp_path), tmp_path)] == ["untracked.env"]
