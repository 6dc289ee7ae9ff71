"""Pebble (a local ACME CA) whose DNS-01 validation really goes through DNS.

- pebble-challtestsrv serves DNS on a free loopback port; Pebble's VA uses it
  as its resolver (``-dnsserver``).
- ``Route53Feeder`` mirrors the TXT records of ``_acme-challenge.*`` names from
  the watched Route53 zones of the moto server into challtestsrv (``/set-txt``,
  ``/clear-txt``): what Pebble sees is exactly what the module wrote to
  Route53, and nothing else.
- Pebble's HTTPS uses a throw-away CA made here; ``ca_bundle`` is its PEM, so
  clients verify TLS instead of switching verification off.
- One certificate profile per instance: ``default`` (90 days), or a second
  instance with a few seconds (``SHORT_VALIDITY_S``) so tests can watch a real
  certificate reach its last third. (Pebble picks a random profile for an
  order that names none, so one instance never mixes lifetimes.)

Only loopback addresses; whoever starts the stack stops it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests import stack

DEFAULT_VALIDITY_S = 90 * 24 * 3600
SHORT_VALIDITY_S = 8


def pebble_binaries() -> tuple[Path, Path]:
    pebble, challtestsrv = stack.TOOLS_BIN / "pebble", stack.TOOLS_BIN / "pebble-challtestsrv"
    for exe in (pebble, challtestsrv):
        if not exe.exists():
            raise RuntimeError(f"{exe} is missing: run `make tools` (tools/install-tools.sh servers)")
    return pebble, challtestsrv


def make_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost: (ca.pem, cert.pem, key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ocap local test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


def _txt_unquote(value: str) -> str:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    return "".join(re.sub(r"\\(.)", r"\1", p) for p in parts) if parts else value


class Route53Feeder:
    """Mirror ``_acme-challenge.*`` TXT records from watched Route53 zones in moto into challtestsrv.

    Polls every ``interval`` seconds in a thread, one ListResourceRecordSets per
    watched zone (the moto server is shared: polling every zone of every test
    would load it for nothing). A zone nobody watches stays invisible to the
    CA: a test uses that to make validation fail through DNS.
    """

    def __init__(self, moto_endpoint: str, mgmt_url: str, interval: float = 0.2) -> None:
        self.route53 = boto3.client(
            "route53",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # the local emulator's fixed fake key
        )
        self.mgmt_url = mgmt_url
        self.interval = interval
        self._zones: set[str] = set()
        self._lock = threading.Lock()
        self.mirrored: dict[str, tuple[str, ...]] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="route53-feeder", daemon=True)

    def start(self) -> Route53Feeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def watch(self, zone_id: str) -> None:
        with self._lock:
            self._zones.add(zone_id.rsplit("/", 1)[-1])

    def unwatch(self, zone_id: str) -> None:
        with self._lock:
            self._zones.discard(zone_id.rsplit("/", 1)[-1])

    def _post(self, path: str, body: dict[str, str]) -> None:
        req = urllib.request.Request(f"{self.mgmt_url}{path}", data=json.dumps(body).encode(), method="POST")
        with urllib.request.urlopen(req, timeout=5):
            pass

    def snapshot(self) -> dict[str, tuple[str, ...]]:
        """The TXT values Route53 holds now at every ``_acme-challenge`` name of the watched zones."""
        wanted: dict[str, tuple[str, ...]] = {}
        with self._lock:
            zones = sorted(self._zones)
        for zone_id in zones:
            pages = self.route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id)
            for rr_page in pages:
                for rrset in rr_page["ResourceRecordSets"]:
                    name = rrset["Name"].lower()
                    if rrset["Type"] == "TXT" and name.startswith("_acme-challenge."):
                        values = tuple(_txt_unquote(r["Value"]) for r in rrset.get("ResourceRecords", []))
                        wanted[name if name.endswith(".") else name + "."] = values
        return wanted

    def sync_once(self) -> None:
        wanted = self.snapshot()
        for name in set(self.mirrored) | set(wanted):
            if self.mirrored.get(name) == wanted.get(name):
                continue
            self._post("/clear-txt", {"host": name})
            for value in wanted.get(name, ()):
                self._post("/set-txt", {"host": name, "value": value})
            if name in wanted:
                self.mirrored[name] = wanted[name]
            else:
                self.mirrored.pop(name, None)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync_once()
            except Exception as exc:  # keep mirroring; a test reads .errors when something looks off
                self.errors.append(repr(exc))
                del self.errors[:-20]


@dataclass
class PebbleStack:
    directory_url: str
    ca_bundle: Path
    management_url: str
    dns_address: str  # host:port of the DNS Pebble queries (challtestsrv)
    challtestsrv_url: str
    servers: list[stack.Server]
    feeder: Route53Feeder
    profile: str = "default"

    def stop(self) -> None:
        self.feeder.stop()
        for server in reversed(self.servers):
            server.stop()

    def set_renewal_info(
        self, certificate_pem: str, window_start: dt.datetime, window_end: dt.datetime
    ) -> None:
        """Make Pebble's ARI answer a chosen suggested window for CERTIFICATE_PEM."""
        ari = {
            "suggestedWindow": {
                "start": window_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": window_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        }
        body = json.dumps({"Certificate": certificate_pem, "ARIResponse": json.dumps(ari)}).encode()
        req = urllib.request.Request(f"{self.management_url}/set-renewal-info/", data=body, method="POST")
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(req, timeout=10, context=ctx):
            pass


def start(
    moto_endpoint: str,
    work_dir: Path,
    *,
    validity_s: int = DEFAULT_VALIDITY_S,
    profile: str = "default",
) -> PebbleStack:
    pebble, challtestsrv = pebble_binaries()
    work_dir.mkdir(parents=True, exist_ok=True)
    log_dir = work_dir / "logs"
    ca_pem, cert_pem, key_pem = make_tls(work_dir / "tls")
    servers: list[stack.Server] = []
    try:
        dns_port, cts_port = stack.free_port(), stack.free_port()
        cts_argv = [
            str(challtestsrv),
            "-http01", "",
            "-https01", "",
            "-doh", "",
            "-tlsalpn01", "",
            "-dns01", f"127.0.0.1:{dns_port}",
            "-management", f"127.0.0.1:{cts_port}",
        ]  # fmt: skip
        proc, log_path = stack._spawn("pebble-challtestsrv", cts_argv, log_dir)
        cts_url = f"http://127.0.0.1:{cts_port}"
        servers.append(stack.Server("pebble-challtestsrv", cts_url, proc, log_path, cts_argv))
        stack.wait_http(cts_url, proc=proc)

        acme_port, mgmt_port = stack.free_port(), stack.free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{acme_port}",
                "managementListenAddress": f"127.0.0.1:{mgmt_port}",
                "certificate": str(cert_pem),
                "privateKey": str(key_pem),
                # The VA's HTTP-01/TLS-ALPN-01 ports: unused (DNS-01 only), kept off privileged ports.
                "httpPort": stack.free_port(),
                "tlsPort": stack.free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "retryAfter": {"authz": 1, "order": 1},
                # One profile only: Pebble picks a random one for orders that name none.
                "profiles": {
                    profile: {"description": f"{validity_s}s certificates", "validityPeriod": validity_s}
                },
            }
        }
        config_path = work_dir / "pebble-config.json"
        config_path.write_text(json.dumps(config, indent=2))
        env = {
            "PATH": "/usr/bin:/bin",
            # Validate at once (no random 0-15 s delay); no random nonce rejections or
            # authorization reuse, so every order really goes through DNS.
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        }
        argv = [str(pebble), "-config", str(config_path), "-dnsserver", f"127.0.0.1:{dns_port}"]
        proc, log_path = stack._spawn("pebble", argv, log_dir, env=env)
        directory_url = f"https://127.0.0.1:{acme_port}/dir"
        servers.append(stack.Server("pebble", directory_url, proc, log_path, argv))
        _wait_https(directory_url, ca_pem, proc)
        feeder = Route53Feeder(moto_endpoint, cts_url).start()
    except BaseException:
        for server in reversed(servers):
            server.stop()
        raise
    return PebbleStack(
        directory_url=directory_url,
        ca_bundle=ca_pem,
        management_url=f"https://127.0.0.1:{mgmt_port}",
        dns_address=f"127.0.0.1:{dns_port}",
        challtestsrv_url=cts_url,
        servers=servers,
        feeder=feeder,
        profile=profile,
    )


def _wait_https(url: str, ca_pem: Path, proc: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(ca_pem))
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"pebble exited with code {proc.returncode} (see its log)")
        try:
            with opener.open(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"pebble at {url} did not start within 30s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def running(moto_endpoint: str, work_dir: Path, **kwargs: Any) -> Iterator[PebbleStack]:
    pebble = start(moto_endpoint, work_dir, **kwargs)
    try:
        yield pebble
    finally:
        pebble.stop()
