"""Install the fleet's TLS certificate for NICE DCV at spin-up (``ocap-agent certs sync``).

One renewal job (``playbooks/certs.yml``) owns the certificate and stores a JSON
bundle {certificate, chain, fullchain, private_key, not_after, serial, domains}
in SSM (SecureString) or Secrets Manager. Every instance only reads it:

- fetch the bundle (``ssm:GetParameter`` with decryption, or
  ``secretsmanager:GetSecretValue``);
- write ``dcv.pem`` (the full chain) and ``dcv.key`` into the install folder,
  each through a temporary file and an atomic rename, and only when the
  content differs, so an unchanged certificate never touches the files;
- the key is readable only by the service: mode 0600 on POSIX; on Windows an
  ACL granting SYSTEM (DCV's server runs as LocalSystem) and Administrators
  only, set on the temporary file before the rename;
- when the store cannot be reached, the installed certificate stays and a
  warning is logged: an instance still starts with what it has.

Nothing here logs or prints key material.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocap_agent import secret_store
from ocap_agent.config import CertsConfig, Config, ConfigError
from ocap_agent.fsutil import fsync_dir
from ocap_agent.secret_store import StoreUnavailableError

log = logging.getLogger("ocap_agent.certs")

# NICE DCV on Windows reads dcv.pem/dcv.key from the LocalSystem profile's DCV folder;
# on Linux from /etc/dcv.
WINDOWS_DCV_DIR = r"C:\Windows\System32\config\systemprofile\AppData\Local\NICE\dcv"
LINUX_DCV_DIR = "/etc/dcv"
REQUIRED = ("fullchain", "private_key", "not_after", "serial", "domains")
# Well-known SIDs, so the ACL is right whatever the system's language: LocalSystem, Administrators.
WINDOWS_KEY_READERS = ("*S-1-5-18", "*S-1-5-32-544")


class BundleError(ValueError):
    """The stored value is not a usable certificate bundle; the message names the field."""


class Status(enum.Enum):
    INSTALLED = "installed"  # new files written
    UNCHANGED = "unchanged"  # files already matched the store
    KEPT = "kept"  # store unreachable or empty: the installed certificate stays
    NO_CERTIFICATE = "no-certificate"  # nothing in the store and nothing installed


# Exit codes of `ocap-agent certs sync`.
EXIT_OK = 0
EXIT_BAD_BUNDLE = 1
EXIT_NO_CERTIFICATE = 3


@dataclass(frozen=True)
class Bundle:
    fullchain: str
    private_key: str
    not_after: str
    serial: str
    domains: tuple[str, ...]

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"Bundle(serial={self.serial!r}, not_after={self.not_after!r}, domains={self.domains!r})"


@dataclass(frozen=True)
class SyncResult:
    status: Status
    cert_path: Path
    key_path: Path
    bundle: Bundle | None = None
    message: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_NO_CERTIFICATE if self.status is Status.NO_CERTIFICATE else EXIT_OK

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status.value,
            "cert_file": str(self.cert_path),
            "key_file": str(self.key_path),
        }
        if self.bundle:
            out.update(
                not_after=self.bundle.not_after, serial=self.bundle.serial, domains=list(self.bundle.domains)
            )
        if self.message:
            out["message"] = self.message
        return out


def install_dir(certs: CertsConfig) -> Path:
    if certs.install_dir:
        return Path(certs.install_dir)
    return Path(WINDOWS_DCV_DIR if sys.platform == "win32" else LINUX_DCV_DIR)


def parse_bundle(text: str) -> Bundle:
    try:
        data = json.loads(text)
    except ValueError:
        raise BundleError("the stored value is not JSON (expected a certificate bundle)") from None
    if not isinstance(data, dict):
        raise BundleError("the stored value is not a JSON object (expected a certificate bundle)")
    for key in REQUIRED:
        if key not in data:
            raise BundleError(f"bundle.{key}: missing")
    for key in ("fullchain", "private_key", "not_after", "serial"):
        if not isinstance(data[key], str) or not data[key]:
            raise BundleError(f"bundle.{key}: expected a non-empty string")
    if "-----BEGIN CERTIFICATE-----" not in data["fullchain"]:
        raise BundleError("bundle.fullchain: expected PEM certificates")
    if "PRIVATE KEY-----" not in data["private_key"]:
        raise BundleError("bundle.private_key: expected a PEM private key")
    domains = data["domains"]
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise BundleError("bundle.domains: expected a list of names")
    return Bundle(data["fullchain"], data["private_key"], data["not_after"], data["serial"], tuple(domains))


def fetch(cfg: Config) -> str | None:
    """The stored bundle's text, or None when the store has no such parameter/secret."""
    certs = cfg.certs
    if not certs.name:
        raise ConfigError("certs.name: expected the SSM parameter or secret name holding the certificate")
    return secret_store.fetch(certs.store, certs.name, cfg.aws, certs.timeout_s)


def _restrict_windows_acl(path: Path) -> None:
    """Owner-independent ACL on PATH: SYSTEM and Administrators only, nothing inherited."""
    grants: list[str] = []
    for sid in WINDOWS_KEY_READERS:
        grants += ["/grant:r", f"{sid}:(F)"]
    subprocess.run(
        ["icacls", str(path), "/inheritance:r", *grants],
        check=True,
        capture_output=True,
        text=True,
    )


def _write_atomic(path: Path, data: bytes, *, private: bool) -> None:
    """Write DATA to PATH through a temporary file and a rename: readers see old or new, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # 0600 from creation on POSIX: the key is never readable by others, not even briefly.
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600 if private else 0o644
    )
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if private and sys.platform == "win32":
            _restrict_windows_acl(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _needs_write(path: Path, data: bytes, *, private: bool) -> bool:
    try:
        if path.read_bytes() != data:
            return True
    except FileNotFoundError:
        return True
    # Same content but readable by others (e.g. restored by hand): rewrite to fix the mode.
    return private and sys.platform != "win32" and (path.stat().st_mode & 0o077) != 0


def install(bundle: Bundle, directory: Path, cert_file: str, key_file: str) -> bool:
    """Install BUNDLE into DIRECTORY; return whether anything was written."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / cert_file, directory / key_file
    cert_bytes, key_bytes = bundle.fullchain.encode("ascii"), bundle.private_key.encode("ascii")
    write_key = _needs_write(key_path, key_bytes, private=True)
    write_cert = _needs_write(cert_path, cert_bytes, private=False)
    # The key first: a certificate never sits next to a key it does not belong to for longer
    # than between two renames; a crash in between is repaired by the next sync (content differs).
    if write_key:
        _write_atomic(key_path, key_bytes, private=True)
    if write_cert:
        _write_atomic(cert_path, cert_bytes, private=False)
    if write_key or write_cert:
        fsync_dir(directory)
    return write_key or write_cert


def _expired(not_after: str) -> bool:
    try:
        when = dt.datetime.fromisoformat(not_after.replace("Z", "+00:00"))
    except ValueError:
        return False
    return when <= dt.datetime.now(dt.UTC)


def sync(cfg: Config) -> SyncResult:
    """Fetch the bundle and install it when it changed; keep what is installed if the store fails."""
    certs = cfg.certs
    directory = install_dir(certs)
    cert_path, key_path = directory / certs.cert_file, directory / certs.key_file
    have_files = cert_path.exists() and key_path.exists()
    try:
        text = fetch(cfg)
    except StoreUnavailableError as exc:
        if have_files:
            msg = f"certificate store unreachable, keeping the installed certificate: {exc}"
            log.warning(msg, extra={"event": "certs.store_unreachable"})
            return SyncResult(Status.KEPT, cert_path, key_path, message=msg)
        msg = f"certificate store unreachable and no certificate installed: {exc}"
        log.error(msg, extra={"event": "certs.no_certificate"})
        return SyncResult(Status.NO_CERTIFICATE, cert_path, key_path, message=msg)
    if text is None:
        where = f"{certs.store} {certs.name}"
        if have_files:
            msg = f"no certificate stored in {where}, keeping the installed certificate"
            log.warning(msg, extra={"event": "certs.store_empty"})
            return SyncResult(Status.KEPT, cert_path, key_path, message=msg)
        msg = f"no certificate stored in {where} and none installed"
        log.error(msg, extra={"event": "certs.no_certificate"})
        return SyncResult(Status.NO_CERTIFICATE, cert_path, key_path, message=msg)
    bundle = parse_bundle(text)
    if _expired(bundle.not_after):
        log.warning(
            "the stored certificate expired at %s: the renewal job is not running",
            bundle.not_after,
            extra={"event": "certs.expired", "serial": bundle.serial},
        )
    changed = install(bundle, directory, certs.cert_file, certs.key_file)
    status = Status.INSTALLED if changed else Status.UNCHANGED
    log.info(
        "certificate %s (serial %s, expires %s)",
        status.value,
        bundle.serial,
        bundle.not_after,
        extra={"event": f"certs.{status.value}", "serial": bundle.serial, "not_after": bundle.not_after},
    )
    return SyncResult(status, cert_path, key_path, bundle)
