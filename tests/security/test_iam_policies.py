"""Every IAM policy document the project writes: rendered, parsed, and held to the allow-list."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.security import iam

KMS_KEY = f"arn:aws:kms:eu-west-1:{iam.ACCOUNT}:key/0b6f3d9e-1111-2222-3333-444455556666"

# The settings that change what the templates write.
VARIANTS: dict[str, dict[str, Any]] = {
    "ssm": {"ocap_cert_store": "ssm"},
    "secretsmanager": {"ocap_cert_store": "secretsmanager"},
    "kms-keys": {"ocap_cert_kms_key_arn": KMS_KEY, "ocap_recordings_kms_key_arn": KMS_KEY},
    "secretsmanager-kms": {"ocap_cert_store": "secretsmanager", "ocap_cert_kms_key_arn": KMS_KEY},
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> dict[str, Any]:
    return VARIANTS[request.param]


def test_the_templates_are_the_ones_bootstrap_writes() -> None:
    playbook = (iam.ROOT / "playbooks" / "bootstrap.yml").read_text()
    for template in iam.policy_templates():
        assert template in playbook, f"{template} is rendered by no task of bootstrap.yml"


def test_every_template_renders_to_a_policy_document(variant: dict[str, Any]) -> None:
    variables = iam.policy_vars(**variant)
    for template in iam.policy_templates():
        text = iam.render(template, variables)
        assert "{{" not in text and "{%" not in text, f"{template}: unrendered Jinja"
        doc = json.loads(text)
        assert doc["Version"] == "2012-10-17", template
        statements = iam.as_list(doc["Statement"])
        assert statements, f"{template}: no statement"
        for st in statements:
            assert st["Effect"] in ("Allow", "Deny"), f"{template}: {st}"
        sids = [st.get("Sid") for st in statements]
        assert len(sids) == len(set(sids)), f"{template}: duplicate Sid in {sids}"


def test_no_wildcard_outside_the_allow_list(variant: dict[str, Any]) -> None:
    policies = iam.render_policies(**variant)
    allowlist = iam.load_allowlist(iam.policy_vars(**variant))
    assert iam.wildcard_findings(policies, allowlist) == []


def test_every_allow_list_entry_gives_a_reason() -> None:
    import yaml

    for entry in yaml.safe_load(iam.ALLOWLIST.read_text()):
        assert len(str(entry.get("reason", "")).split()) >= 5, f"{entry}: the reason must say why"


def test_no_role_can_delete_recordings_or_tables_or_manage_iam(variant: dict[str, Any]) -> None:
    policies = iam.render_policies(**variant)
    granted = {
        action.lower()
        for name, doc in policies.items()
        for st in iam.as_list(doc["Statement"])
        if st["Effect"] == "Allow"
        for action in iam.as_list(st.get("Action"))
    }
    forbidden = {"s3:deleteobject", "s3:deletebucket", "dynamodb:deletetable", "s3:putbucketpolicy"}
    assert not granted & forbidden
    assert not [a for a in granted if a.startswith("iam:")]


BAD_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Seed001", "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Sid": "Everything", "Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"},
        {"Sid": "Public", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "x"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/k"},
    ],
}


def test_the_check_catches_the_seed_policies() -> None:
    findings = iam.wildcard_findings({"seed": BAD_POLICY}, [])
    text = "\n".join(findings)
    assert "wildcard Action 'dynamodb:*'" in text
    assert "wildcard Resource '*'" in text
    assert "NotAction" in text
    assert "Principal '*'" in text
    assert "has no Sid" in text


def test_an_allow_list_entry_covers_only_its_own_statement() -> None:
    entry = iam.AllowEntry("seed", "Other", "Resource", "*", "a reason of five words")
    findings = iam.wildcard_findings({"seed": BAD_POLICY}, [entry])
    assert any("Seed001: wildcard Resource '*'" in f for f in findings)


def test_a_stale_allow_list_entry_is_reported() -> None:
    statement = {"Sid": "A", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "r"}
    doc = {"Version": "2012-10-17", "Statement": [statement]}
    entry = iam.AllowEntry("p", "A", "Resource", "*", "no longer needed at all")
    assert iam.wildcard_findings({"p": doc}, [entry]) == ["allow-list entry p/A Resource '*' matches nothing"]


def test_an_allow_list_entry_without_reason_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "allow.yml"
    bad.write_text("- {policy: p, sid: A, field: Resource, value: '*'}\n")
    with pytest.raises(ValueError, match="no reason"):
        iam.load_allowlist({}, bad)


def test_no_policy_document_is_written_outside_the_checked_templates() -> None:
    """A policy written anywhere else would escape these checks: keep them all in templates/iam."""
    statement = re.compile(r"""["']?Statement["']?\s*[:=]""")
    outside = []
    for folder in ("playbooks", "roles", "packer", "library", "module_utils", "tools"):
        for path in sorted((iam.ROOT / folder).rglob("*")):
            if not path.is_file() or path.is_relative_to(iam.IAM_TEMPLATES) or path.suffix in (".pyc",):
                continue
            if statement.search(path.read_text(errors="replace")):
                outside.append(str(path.relative_to(iam.ROOT)))
    assert outside == []
