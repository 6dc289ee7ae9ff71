"""Orchestration pieces of ``acme_route53_certificate``: DNS-01 through Route53, the stored bundle.

The ACME protocol itself is the ``acme`` library's; this file holds what sits
around it, mostly as pure functions so unit tests cover them without servers:

- domain checks and the ``_acme-challenge`` record name of each domain;
- the hosted zone of a name by longest matching suffix (public zones only);
- TXT record sets as *sets of values*: add ours to whatever is there, and on
  cleanup remove exactly ours (a wildcard and its apex share one name, so
  both values live in one record set; another run's values are kept);
- the renewal decision (missing, not covering, last third of lifetime, CA's
  renewal information);
- the stored bundle: one JSON document written in one call.

Route53 calls take a boto3 client made by the module (``AnsibleAWSModule``
with retries); nothing here catches AWS errors: the module does, in one place.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

CHALLENGE_LABEL = "_acme-challenge"
BUNDLE_FIELDS = ("certificate", "chain", "fullchain", "private_key", "not_after", "serial", "domains")
# SSM Parameter Store value limits (characters): Standard tier 4 KB, Advanced 8 KB.
SSM_STANDARD_LIMIT = 4096
SSM_ADVANCED_LIMIT = 8192
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class CertError(ValueError):
    """A problem the user must fix; the message names the field and what was expected."""


# -- domains and zones ----------------------------------------------------------------


def normalize_domains(domains: Sequence[str]) -> list[str]:
    """Lower-case, strip trailing dots, check each name; keep the given order, drop nothing silently."""
    if not domains:
        raise CertError("domains: expected at least one domain name")
    seen: set[str] = set()
    result: list[str] = []
    for raw in domains:
        name = str(raw).strip().lower().rstrip(".")
        base = name[2:] if name.startswith("*.") else name
        labels = base.split(".")
        if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or "*" in base:
            raise CertError(
                f"domains: {raw!r} is not a DNS name (expected e.g. 'host.example.org' "
                "or '*.example.org'; a wildcard only as the whole leftmost label)"
            )
        if name in seen:
            raise CertError(f"domains: {raw!r} is listed twice")
        seen.add(name)
        result.append(name)
    return result


def challenge_name(domain: str) -> str:
    """The TXT record name for DOMAIN's DNS-01 challenge (a wildcard shares its apex's name)."""
    base = domain[2:] if domain.startswith("*.") else domain
    return f"{CHALLENGE_LABEL}.{base.rstrip('.')}."


@dataclass(frozen=True)
class Zone:
    id: str  # without the "/hostedzone/" prefix
    name: str  # with the trailing dot, lower case
    private: bool = False


def zones_from_listing(hosted_zones: Iterable[Mapping[str, Any]]) -> list[Zone]:
    return [
        Zone(
            id=str(z["Id"]).rsplit("/", 1)[-1],
            name=str(z["Name"]).lower().rstrip(".") + ".",
            private=bool(z.get("Config", {}).get("PrivateZone", False)),
        )
        for z in hosted_zones
    ]


def find_zone(name: str, zones: Iterable[Zone]) -> Zone | None:
    """The public zone whose name is the longest suffix of NAME (label-wise), or None.

    Private zones are never used: the CA resolves the challenge from the public
    internet, so a record written into a private zone could never validate.
    """
    fqdn = name.lower().rstrip(".") + "."
    best: Zone | None = None
    for zone in zones:
        if zone.private:
            continue
        if (fqdn == zone.name or fqdn.endswith("." + zone.name)) and (
            best is None or len(zone.name) > len(best.name)
        ):
            best = zone
    return best


def zones_for(domains: Sequence[str], zones: Sequence[Zone]) -> dict[str, Zone]:
    """Map each domain's challenge record name to its zone; fail naming every domain without one."""
    result: dict[str, Zone] = {}
    missing: list[str] = []
    for domain in domains:
        rname = challenge_name(domain)
        zone = find_zone(rname, zones)
        if zone is None:
            missing.append(domain)
        else:
            result[rname] = zone
    if missing:
        private = [d for d in missing if find_zone(challenge_name(d), [Zone(z.id, z.name) for z in zones])]
        hint = (
            f" (only a private zone matches {', '.join(private)}; private zones cannot be used for DNS-01)"
            if private
            else ""
        )
        raise CertError(
            f"domains: no public Route53 hosted zone contains {', '.join(missing)}{hint}; "
            "create the zone or delegate the _acme-challenge name to one"
        )
    return result


# -- TXT record sets as sets of values ------------------------------------------------


def txt_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def txt_unquote(value: str) -> str:
    """Route53 returns each TXT value quoted, possibly as several quoted strings; join them."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', value)
    if not parts:
        return value
    return "".join(re.sub(r"\\(.)", r"\1", p) for p in parts)


@dataclass(frozen=True)
class TxtSet:
    """The current TXT record set at a name: its values (unquoted) and TTL; None when absent."""

    name: str
    values: tuple[str, ...]
    ttl: int


def plan_add(current: TxtSet | None, name: str, ours: Iterable[str], ttl: int) -> list[dict[str, Any]]:
    """Changes that leave NAME with its current values plus OURS (none when all are there).

    UPSERT of the merged set: values another client put there stay. (Route53
    would also take DELETE-exactly-what-was-read + CREATE in one batch as a
    compare-and-swap, but moto applies a batch's CREATE check before its DELETE;
    one renewal job per name makes the read-merge-write window harmless.)
    """
    values = list(current.values) if current else []
    for v in ours:
        if v not in values:
            values.append(v)
    if current is not None and list(current.values) == values:
        return []
    # An existing set keeps its owner's TTL: Route53 has one TTL per record set.
    return [_change("UPSERT", name, values, current.ttl if current else ttl)]


def plan_remove(current: TxtSet | None, ours: Iterable[str]) -> list[dict[str, Any]]:
    """Changes that remove exactly OURS from the set at that name and keep every other value.

    The last values go by DELETE of exactly what was read: if the set changed
    meanwhile, Route53 rejects the DELETE instead of removing someone else's value.
    """
    if current is None:
        return []
    ours_set = set(ours)
    remaining = [v for v in current.values if v not in ours_set]
    if len(remaining) == len(current.values):
        return []
    if remaining:
        return [_change("UPSERT", current.name, remaining, current.ttl)]
    return [_change("DELETE", current.name, current.values, current.ttl)]


def _change(action: str, name: str, values: Sequence[str], ttl: int) -> dict[str, Any]:
    return {
        "Action": action,
        "ResourceRecordSet": {
            "Name": name,
            "Type": "TXT",
            "TTL": ttl,
            "ResourceRecords": [{"Value": txt_quote(v)} for v in values],
        },
    }


def read_txt(client: Any, zone_id: str, name: str) -> TxtSet | None:
    resp = client.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=name, StartRecordType="TXT", MaxItems="1", aws_retry=True
    )
    for rrset in resp.get("ResourceRecordSets", []):
        if rrset["Name"].lower().rstrip(".") == name.lower().rstrip(".") and rrset["Type"] == "TXT":
            values = tuple(txt_unquote(r["Value"]) for r in rrset.get("ResourceRecords", []))
            return TxtSet(name=rrset["Name"], values=values, ttl=int(rrset.get("TTL", 60)))
    return None


def change_batch(client: Any, zone_id: str, changes: list[dict[str, Any]], comment: str) -> str | None:
    if not changes:
        return None
    resp = client.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Comment": comment, "Changes": changes}, aws_retry=True
    )
    return str(resp["ChangeInfo"]["Id"])


def wait_insync(
    client: Any,
    change_id: str,
    timeout: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Poll GetChange until INSYNC; return how many polls it took. Backs off to stay under rate limits."""
    deadline = clock() + timeout
    delay, polls = 2.0, 0
    while True:
        polls += 1
        status = client.get_change(Id=change_id, aws_retry=True)["ChangeInfo"]["Status"]
        if status == "INSYNC":
            return polls
        if clock() + delay > deadline:
            raise CertError(
                f"propagation_timeout: Route53 change {change_id} still {status} after {timeout:.0f}s"
            )
        sleep(delay)
        delay = min(delay * 1.5, 15.0)


def suffixes(domains: Iterable[str]) -> list[str]:
    """Every name a zone holding the domains' challenge records could have, e.g.
    ``_acme-challenge.ws.example.org``, ``ws.example.org``, ``example.org``, ``org``."""
    out: list[str] = []
    for domain in domains:
        labels = challenge_name(domain).rstrip(".").split(".")
        for i in range(len(labels)):
            name = ".".join(labels[i:]) + "."
            if name not in out:
                out.append(name)
    return out


def candidate_zones(client: Any, domains: Iterable[str]) -> list[Zone]:
    """The hosted zones named like a suffix of the domains' challenge names.

    One ListHostedZonesByName per suffix (a handful of calls, however many zones
    the account holds); the answer starts at that name, so only exact matches count.
    """
    zones: list[Zone] = []
    for name in suffixes(domains):
        kwargs: dict[str, Any] = {"DNSName": name, "MaxItems": "100"}
        while True:
            resp = client.list_hosted_zones_by_name(aws_retry=True, **kwargs)
            matches = [z for z in zones_from_listing(resp.get("HostedZones", [])) if z.name == name]
            zones.extend(matches)
            if not (
                resp.get("IsTruncated") and resp.get("NextDNSName", "").lower().rstrip(".") + "." == name
            ):
                break
            kwargs.update(DNSName=resp["NextDNSName"], HostedZoneId=resp["NextHostedZoneId"])
    return zones


def txt_visible(resolver: str, name: str, values: Iterable[str], timeout: float = 2.0) -> bool:
    """Whether RESOLVER ("host:port" or "host") answers NAME's TXT query with all VALUES."""
    from dnslib import QTYPE, DNSRecord  # noqa: PLC0415 - only needed for the optional check

    host, _, port = resolver.rpartition(":") if ":" in resolver else (resolver, "", "53")
    try:
        reply = DNSRecord.parse(DNSRecord.question(name, "TXT").send(host, int(port), timeout=timeout))
    except OSError:
        return False
    seen = {b"".join(rr.rdata.data).decode("ascii", "replace") for rr in reply.rr if rr.rtype == QTYPE.TXT}
    return set(values) <= seen


# -- the stored certificate and the renewal decision ----------------------------------


@dataclass(frozen=True)
class CertInfo:
    not_before: dt.datetime
    not_after: dt.datetime
    serial: str
    domains: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        return {
            "not_after": iso(self.not_after),
            "serial": self.serial,
            "domains": list(self.domains),
        }


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serial_hex(number: int) -> str:
    text = f"{number:x}"
    return text if len(text) % 2 == 0 else "0" + text


def cert_info(pem: str) -> CertInfo:
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(n.lower() for n in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = ()
    return CertInfo(
        cert.not_valid_before_utc, cert.not_valid_after_utc, serial_hex(cert.serial_number), names
    )


def split_pem_chain(fullchain: str) -> list[str]:
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", fullchain, re.S)
    return [b + "\n" for b in blocks]


def renewal_reason(
    stored: CertInfo | None,
    domains: Sequence[str],
    now: dt.datetime,
    threshold: float,
    *,
    ari_time: dt.datetime | None = None,
    force: bool = False,
) -> str | None:
    """Why the certificate must be renewed now, or None when the stored one is good.

    Renews when nothing is stored, when the stored certificate lacks a requested
    name, when less than THRESHOLD of its lifetime is left, or when the CA's
    renewal information (ARI) names a time that has come.
    """
    if force:
        return "renewal forced (force=true)"
    if stored is None:
        return "no certificate stored yet"
    missing = [d for d in domains if d not in stored.domains]
    if missing:
        return f"stored certificate does not cover {', '.join(missing)}"
    if now >= stored.not_after:
        return f"stored certificate expired at {iso(stored.not_after)}"
    lifetime = (stored.not_after - stored.not_before).total_seconds()
    left = (stored.not_after - now).total_seconds()
    if lifetime <= 0 or left < lifetime * threshold:
        return (
            f"stored certificate expires at {iso(stored.not_after)}: {left / max(lifetime, 1):.0%} of its "
            f"lifetime left, threshold {threshold:.0%}"
        )
    if ari_time is not None and now >= ari_time:
        return f"the CA's renewal information suggests renewing from {iso(ari_time)}"
    return None


# -- the bundle -----------------------------------------------------------------------


@dataclass
class Bundle:
    certificate: str
    chain: str
    private_key: str = field(repr=False)
    info: CertInfo

    @property
    def fullchain(self) -> str:
        return self.certificate + self.chain

    def to_json(self) -> str:
        return json.dumps(
            {
                "certificate": self.certificate,
                "chain": self.chain,
                "fullchain": self.fullchain,
                "private_key": self.private_key,
                **self.info.summary(),
            },
            sort_keys=True,
            separators=(",", ":"),
        )


def parse_bundle(text: str, where: str) -> Bundle:
    """Read a stored bundle, refusing anything that is not one (nothing is overwritten blindly)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise CertError(f"{where} holds something that is not a certificate bundle (not JSON)") from None
    if not isinstance(data, dict) or any(k not in data for k in ("certificate", "chain", "private_key")):
        raise CertError(
            f"{where} holds JSON that is not a certificate bundle (expected keys {', '.join(BUNDLE_FIELDS)})"
        )
    try:
        info = cert_info(str(data["certificate"]))
    except ValueError:
        raise CertError(f"{where}: its 'certificate' is not a PEM certificate") from None
    return Bundle(str(data["certificate"]), str(data["chain"]), str(data["private_key"]), info)


def ssm_tier_for(size: int, requested: str) -> str:
    """The SSM tier to write a value of SIZE characters with, or a CertError naming the limit."""
    if size > SSM_ADVANCED_LIMIT:
        raise CertError(
            f"store: the bundle is {size} characters, more than SSM's {SSM_ADVANCED_LIMIT} limit "
            "(Advanced tier); use store=secretsmanager (64 KB) or a smaller key_type"
        )
    if requested == "Standard" and size > SSM_STANDARD_LIMIT:
        raise CertError(
            f"ssm_tier: the bundle is {size} characters, more than the Standard tier's "
            f"{SSM_STANDARD_LIMIT}; use Advanced or Intelligent-Tiering"
        )
    return requested


# -- keys -----------------------------------------------------------------------------

KEY_TYPES = ("ec256", "ec384", "rsa2048", "rsa3072", "rsa4096")


def generate_key(key_type: str) -> bytes:
    """A fresh private key (PKCS#8 PEM) for each certificate: a renewal never reuses the old key."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == "ec256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "ec384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type.startswith("rsa"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    else:
        raise CertError(f"key_type: expected one of {', '.join(KEY_TYPES)}, got {key_type!r}")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_account_key(pem: bytes, field_name: str, passphrase: str | None = None) -> Any:
    """Parse the ACME account key; the error names FIELD_NAME and never echoes the key."""
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        reason = "wrong or missing passphrase" if "password" in str(exc).lower() else "not a PEM private key"
        raise CertError(f"{field_name}: expected a PEM-encoded RSA or EC private key ({reason})") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertError(f"{field_name}: expected an RSA or EC (P-256/P-384) key, got {type(key).__name__}")
    return key


def key_matches_cert(private_key_pem: str, cert_pem: str) -> bool:
    key = serialization.load_pem_private_key(private_key_pem.encode("ascii"), password=None)
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        key.public_key().public_bytes(serialization.Encoding.DER, fmt)
        == cert.public_key().public_bytes(serialization.Encoding.DER, fmt)
    )


def fingerprint(cert_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return cert.fingerprint(hashes.SHA256()).hex()
