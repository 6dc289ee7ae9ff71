"""``ocap-agent certs sync`` through the real CLI and boto3: an empty store, an unreachable one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests import stack

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END PRIVATE KEY-----\n"


def agent(
    env: dict[str, str], tmp_path: Path, certs: dict[str, Any], aws: dict[str, Any] | None = None
) -> Any:
    config = tmp_path / "agent.json"
    data: dict[str, Any] = {"paths": {"data_dir": str(tmp_path / "data")}, "certs": certs}
    if aws:
        data["aws"] = aws
    config.write_text(json.dumps(data))
    return subprocess.run(
        [sys.executable, "-m", "ocap_agent", "--config", str(config), "certs", "sync", "--json"],
        env=env,
        text=True,
        capture_output=True,
        check=False,
        timeout=120,
    )


def test_secrets_manager_bundle_installs_and_a_missing_one_exits_3(
    certs_env: dict[str, str], secretsmanager: Any, tmp_path: Path, unique: str
) -> None:
    install = tmp_path / "dcv"
    missing = agent(
        certs_env,
        tmp_path,
        {"store": "secretsmanager", "name": f"nope-{unique}", "install_dir": str(install)},
    )
    assert missing.returncode == 3, missing.stderr
    assert json.loads(missing.stdout)["status"] == "no-certificate"

    name = f"ocap/{unique}/tls"
    bundle = {
        "certificate": CERT, "chain": "", "fullchain": CERT, "private_key": KEY,
        "not_after": "2099-01-01T00:00:00Z", "serial": "0a", "domains": ["ws.example.org"],
    }  # fmt: skip
    secretsmanager.create_secret(Name=name, SecretString=json.dumps(bundle))
    done = agent(certs_env, tmp_path, {"store": "secretsmanager", "name": name, "install_dir": str(install)})
    assert done.returncode == 0, done.stderr
    assert (install / "dcv.key").read_text() == KEY and (install / "dcv.pem").read_text() == CERT


def test_unreachable_store_keeps_the_installed_certificate_and_warns(
    certs_env: dict[str, str], tmp_path: Path
) -> None:
    install = tmp_path / "dcv"
    install.mkdir()
    (install / "dcv.pem").write_text(CERT)
    (install / "dcv.key").write_text(KEY)
    closed = f"http://127.0.0.1:{stack.free_port()}"  # nothing listens there
    result = agent(
        certs_env,
        tmp_path,
        {"store": "ssm", "name": "/ocap/tls", "install_dir": str(install), "timeout_s": 2},
        {"endpoint_url": closed, "max_attempts": 1},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "kept"
    assert "store unreachable" in result.stderr
    assert (install / "dcv.key").read_text() == KEY

    (install / "dcv.key").unlink()
    nothing = agent(
        certs_env,
        tmp_path,
        {"store": "ssm", "name": "/ocap/tls", "install_dir": str(install), "timeout_s": 2},
        {"endpoint_url": closed, "max_attempts": 1},
    )
    assert nothing.returncode == 3
