"""``ocap-agent certs sync``: installing the stored bundle for DCV, without servers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocap_agent import certs, cli
from ocap_agent.config import CertsConfig, Config, ConfigError, PathsConfig, from_dict

CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
CHAIN = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleQ==\n-----END PRIVATE KEY-----\n"


def bundle_text(serial: str = "0a", key: str = KEY, **overrides: Any) -> str:
    data = {
        "certificate": CERT,
        "chain": CHAIN,
        "fullchain": CERT + CHAIN,
        "private_key": key,
        "not_after": "2099-01-01T00:00:00Z",
        "serial": serial,
        "domains": ["*.ws.example.org", "ws.example.org"],
    }
    data.update(overrides)
    return json.dumps(data)


def config(tmp_path: Path) -> Config:
    return Config(
        paths=PathsConfig(data_dir=str(tmp_path / "data")),
        certs=CertsConfig(store="ssm", name="/ocap/tls", install_dir=str(tmp_path / "dcv")),
    )


def fetch_returns(monkeypatch: pytest.MonkeyPatch, value: str | Exception | None) -> None:
    def fake(cfg: Config) -> str | None:
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr(certs, "fetch", fake)


def test_installs_full_chain_and_a_private_key_then_leaves_unchanged_files_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    fetch_returns(monkeypatch, bundle_text())
    first = certs.sync(cfg)
    assert first.status is certs.Status.INSTALLED and first.exit_code == 0
    pem, key = tmp_path / "dcv" / "dcv.pem", tmp_path / "dcv" / "dcv.key"
    assert pem.read_text() == CERT + CHAIN
    assert key.read_text() == KEY
    assert key.stat().st_mode & 0o777 == 0o600
    before = (pem.stat().st_ino, key.stat().st_ino, pem.stat().st_mtime_ns)

    second = certs.sync(cfg)
    assert second.status is certs.Status.UNCHANGED
    assert (pem.stat().st_ino, key.stat().st_ino, pem.stat().st_mtime_ns) == before  # not rewritten
    assert sorted(p.name for p in pem.parent.iterdir()) == ["dcv.key", "dcv.pem"]  # no temp files left


def test_a_renewed_certificate_replaces_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path)
    fetch_returns(monkeypatch, bundle_text())
    certs.sync(cfg)
    new_key = KEY.replace("c2VjcmV0LWtleQ==", "bmV3LWtleQ==")
    fetch_returns(monkeypatch, bundle_text(serial="0b", key=new_key, fullchain=CHAIN + CERT))
    result = certs.sync(cfg)
    assert result.status is certs.Status.INSTALLED and result.bundle and result.bundle.serial == "0b"
    assert (tmp_path / "dcv" / "dcv.key").read_text() == new_key
    assert (tmp_path / "dcv" / "dcv.pem").read_text() == CHAIN + CERT


def test_a_key_left_readable_by_others_is_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(tmp_path)
    fetch_returns(monkeypatch, bundle_text())
    certs.sync(cfg)
    key = tmp_path / "dcv" / "dcv.key"
    os.chmod(key, 0o644)
    assert certs.sync(cfg).status is certs.Status.INSTALLED
    assert key.stat().st_mode & 0o777 == 0o600


def test_store_unreachable_keeps_the_installed_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(tmp_path)
    fetch_returns(monkeypatch, bundle_text())
    certs.sync(cfg)
    fetch_returns(monkeypatch, certs.StoreUnavailableError("ssm /ocap/tls: connection refused"))
    result = certs.sync(cfg)
    assert result.status is certs.Status.KEPT and result.exit_code == 0
    assert (tmp_path / "dcv" / "dcv.key").read_text() == KEY
    assert any("keeping the installed certificate" in r.getMessage() for r in caplog.records)


def test_no_certificate_anywhere_has_its_own_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config(tmp_path)
    fetch_returns(monkeypatch, certs.StoreUnavailableError("ssm /ocap/tls: connection refused"))
    assert certs.sync(cfg).exit_code == certs.EXIT_NO_CERTIFICATE
    fetch_returns(monkeypatch, None)
    result = certs.sync(cfg)
    assert result.status is certs.Status.NO_CERTIFICATE and result.exit_code == certs.EXIT_NO_CERTIFICATE
    assert not (tmp_path / "dcv" / "dcv.pem").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        (bundle_text(fullchain="nope"), "bundle.fullchain: expected PEM"),
        (bundle_text(private_key=""), "bundle.private_key: expected a non-empty string"),
        (json.dumps({"fullchain": CERT}), "bundle.private_key: missing"),
        (bundle_text(domains="x"), "bundle.domains: expected a list"),
    ],
)
def test_an_unusable_bundle_is_named_and_installed_files_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    cfg = config(tmp_path)
    fetch_returns(monkeypatch, bundle_text())
    certs.sync(cfg)
    fetch_returns(monkeypatch, text)
    with pytest.raises(certs.BundleError, match=message):
        certs.sync(cfg)
    assert (tmp_path / "dcv" / "dcv.key").read_text() == KEY


def test_cli_prints_what_it_installed_but_never_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps(
            {
                "paths": {"data_dir": str(tmp_path / "data")},
                "certs": {"name": "/ocap/tls", "install_dir": str(tmp_path / "dcv")},
            }
        )
    )
    fetch_returns(monkeypatch, bundle_text())
    assert cli.main(["--config", str(path), "certs", "sync"]) == 0
    out = capsys.readouterr()
    assert "installed" in out.out and "serial 0a" in out.out and "ws.example.org" in out.out
    assert "c2VjcmV0LWtleQ" not in out.out + out.err
    fetch_returns(monkeypatch, "garbage")
    assert cli.main(["--config", str(path), "certs", "sync"]) == certs.EXIT_BAD_BUNDLE


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"certs\.store: expected 'ssm' or 'secretsmanager'"):
        from_dict({"certs": {"store": "s3"}})
    with pytest.raises(ConfigError, match=r"certs\.key_file: expected a file name"):
        from_dict({"certs": {"key_file": "../dcv.key"}})
    with pytest.raises(ConfigError, match=r"certs\.name: expected the SSM parameter"):
        certs.fetch(Config())


def test_default_install_dir_is_dcvs_folder() -> None:
    expected = certs.WINDOWS_DCV_DIR if os.name == "nt" else certs.LINUX_DCV_DIR
    assert certs.install_dir(CertsConfig()) == Path(expected)


def test_on_windows_the_key_gets_a_system_and_administrators_only_acl_before_it_is_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> None:
        target = Path(argv[1])
        assert target.exists() and target.name.endswith(".tmp")  # the final name does not exist yet
        assert not (tmp_path / "dcv.key").exists()
        calls.append(argv)

    monkeypatch.setattr(certs.sys, "platform", "win32")
    monkeypatch.setattr(certs.subprocess, "run", fake_run)
    certs._write_atomic(tmp_path / "dcv.key", KEY.encode(), private=True)
    certs._write_atomic(tmp_path / "dcv.pem", CERT.encode(), private=False)
    assert calls == [
        ["icacls", str(tmp_path / ".dcv.key.tmp"), "/inheritance:r", "/grant:r", "*S-1-5-18:(F)",
         "/grant:r", "*S-1-5-32-544:(F)"]
    ]  # fmt: skip
    assert (tmp_path / "dcv.key").read_text() == KEY
