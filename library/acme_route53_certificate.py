#!/usr/bin/python
"""Issue and renew one TLS certificate by ACME DNS-01 through Route53; store it centrally."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: acme_route53_certificate
short_description: Issue or renew a certificate by ACME DNS-01 through Route53, stored in SSM or Secrets Mgr
description:
  - Reads the certificate bundle stored under O(name) and renews it when nothing is stored, when it does not
    cover every name in O(domains), when less than O(renewal_threshold) of its lifetime is left, or when the
    CA's renewal information (ACME ARI, RFC 9773) says the time has come.
  - Renewal answers DNS-01 challenges with TXT records written to the public Route53 hosted zone whose name is
    the longest suffix of each C(_acme-challenge) name. A wildcard and its apex share one record name, so both
    values go into one record set. Values already present (another client's) are kept.
  - Waits until each Route53 change is INSYNC (and, when O(dns_propagation_resolvers) is set, until those
    resolvers answer with the values) before asking the CA to validate.
  - Removes exactly the TXT values it added, also when validation or issuance fails.
  - Each certificate gets a fresh private key. Certificate, chain, full chain and key are written as one
    JSON document in one call (SSM C(PutParameter) or Secrets Manager C(PutSecretValue)/C(CreateSecret)),
    so readers see either the old or the new bundle, never a mix.
  - The private key never appears in the module's output or logs.
  - The ACME protocol (account, order, authorizations, finalization, ARI) is the C(acme) library's.
version_added: "1.0.0"
author:
  - ocap-workstations
requirements:
  - python >= 3.11
  - boto3
  - acme >= 2.8
  - josepy
  - cryptography
  - dnslib (only for O(dns_propagation_resolvers))
options:
  domains:
    description:
      - Names the certificate must cover, for example V(*.example.org) and V(example.org).
      - A wildcard is only allowed as the whole leftmost label.
    type: list
    elements: str
    required: true
  acme_directory:
    description:
      - The ACME directory URL.
      - Let's Encrypt production is V(https://acme-v02.api.letsencrypt.org/directory), staging
        V(https://acme-staging-v02.api.letsencrypt.org/directory); any RFC 8555 CA works.
    type: str
    required: true
  acme_ca_bundle:
    description:
      - PEM file of CA certificates trusted for the ACME directory's HTTPS, for a private or test CA.
      - When omitted, the system's trust store is used. Verification is never turned off.
    type: path
  account_key_src:
    description:
      - Path to the ACME account's private key (PEM, RSA or EC P-256/P-384).
    type: path
  account_key_content:
    description:
      - The ACME account's private key itself (PEM). Never logged.
    type: str
  account_key_passphrase:
    description:
      - Passphrase of an encrypted account key.
    type: str
  account_email:
    description:
      - Contact address registered with a new ACME account (the CA's expiry notices go there).
    type: str
  terms_agreed:
    description:
      - Agree to the CA's terms of service when the account is created.
    type: bool
    default: false
  acme_profile:
    description:
      - ACME certificate profile to request, where the CA offers profiles (for example Let's Encrypt's
        V(shortlived) or V(tlsserver)). The CA's default when omitted.
    type: str
  key_type:
    description:
      - Type of the certificate's private key. A new key is made for every certificate.
    type: str
    choices: [ec256, ec384, rsa2048, rsa3072, rsa4096]
    default: ec256
  store:
    description:
      - Where the bundle lives. V(ssm) is a SecureString parameter, V(secretsmanager) a secret.
      - "A bundle with Let's Encrypt's chain is about 7 KB: larger than SSM's Standard tier (4 KB), within the
        Advanced tier (8 KB). RSA 4096 keys or longer chains can exceed 8 KB: use V(secretsmanager) (64 KB)."
    type: str
    choices: [ssm, secretsmanager]
    default: ssm
  name:
    description:
      - The SSM parameter name or the Secrets Manager secret name holding the bundle.
    type: str
    required: true
  kms_key_id:
    description:
      - KMS key (id, ARN or alias) that encrypts the bundle. The service's AWS-managed key when omitted.
      - For Secrets Manager it applies when the secret is created.
    type: str
  ssm_tier:
    description:
      - SSM parameter tier. V(Intelligent-Tiering) uses Standard while the value fits 4 KB and Advanced above.
    type: str
    choices: [Standard, Advanced, Intelligent-Tiering]
    default: Intelligent-Tiering
  renewal_threshold:
    description:
      - Renew when less than this fraction of the certificate's lifetime is left. A third by default,
        that is 30 days of a 90-day certificate, 15 of a 45-day one.
    type: float
    default: 0.3333
  use_ari:
    description:
      - Ask the CA's renewal information (ARI) whether to renew earlier, where the CA supports it.
    type: bool
    default: true
  force:
    description:
      - Renew even when the stored certificate is good.
    type: bool
    default: false
  dns_ttl:
    description:
      - TTL in seconds of new challenge TXT record sets (an existing set keeps its TTL).
    type: int
    default: 60
  propagation_timeout:
    description:
      - Seconds to wait for Route53 to report the change INSYNC (and for O(dns_propagation_resolvers)).
    type: int
    default: 300
  dns_propagation_resolvers:
    description:
      - DNS servers (V(host) or V(host:port)) that must answer with every challenge value before the CA is
        asked to validate; useful behind split-horizon DNS or with a resolver that caches negative answers.
    type: list
    elements: str
    default: []
  validation_timeout:
    description:
      - Seconds to wait for the CA to validate the challenges and issue the certificate.
    type: int
    default: 120
  request_timeout:
    description:
      - Timeout in seconds of each request to the ACME server.
    type: int
    default: 30
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    details: Reads the stored bundle (and the CA's renewal information); says whether it would renew and why.
  diff_mode:
    support: full
    details: Shows not_after, serial and domains of the stored certificate before and after; no key material.
notes:
  - Run it from one place on a schedule (see C(playbooks/certs.yml)); instances only read the stored bundle.
  - "AWS permissions: route53:ListHostedZonesByName, route53:ListResourceRecordSets,
    route53:ChangeResourceRecordSets, route53:GetChange; ssm:GetParameter and ssm:PutParameter,
    or secretsmanager:GetSecretValue, secretsmanager:PutSecretValue and secretsmanager:CreateSecret;
    kms:Encrypt, kms:Decrypt and kms:GenerateDataKey on O(kms_key_id) when a customer-managed key is used."
"""

EXAMPLES = r"""
- name: Keep the workstations' wildcard certificate fresh
  acme_route53_certificate:
    domains: ["*.ws.example.org", "ws.example.org"]
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /srv/acme/account.key
    account_email: ops@example.org
    terms_agreed: true
    store: ssm
    name: /ocap/prod/certs/workstations
    kms_key_id: alias/ocap-certs
  register: cert

- name: Against a private test CA, stored in Secrets Manager, waiting for a given resolver
  acme_route53_certificate:
    domains: [test.example.org]
    acme_directory: https://127.0.0.1:14000/dir
    acme_ca_bundle: /tmp/pebble-ca.pem
    account_key_content: "{{ lookup('amazon.aws.ssm_parameter', '/ocap/acme/account-key') }}"
    terms_agreed: true
    store: secretsmanager
    name: ocap/test/certs/web
    dns_propagation_resolvers: ["127.0.0.1:8053"]
"""

RETURN = r"""
renewed:
  description: Whether a new certificate was issued and stored (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
reason:
  description: Why it renewed (or would), or why the stored certificate was kept.
  returned: always
  type: str
  sample: "stored certificate expires at 2026-12-01T10:00:00Z: 20% of its lifetime left, threshold 33%"
not_after:
  description: Expiry (UTC, ISO 8601) of the certificate now stored; null when none is stored.
  returned: always
  type: str
  sample: "2027-02-21T15:30:00Z"
serial:
  description: Serial number (hex) of the certificate now stored.
  returned: always
  type: str
  sample: "4a3f0c2d9b1e77aa"
domains:
  description: Names the stored certificate covers.
  returned: always
  type: list
  elements: str
  sample: ["*.ws.example.org", "ws.example.org"]
store:
  description: Where the bundle lives (V(ssm) or V(secretsmanager)) and under which name.
  returned: always
  type: dict
  sample: {"type": "ssm", "name": "/ocap/prod/certs/workstations", "tier": "Intelligent-Tiering"}
challenges:
  description: The challenge TXT record names answered in this run, with their zones (no values).
  returned: when renewed
  type: list
  elements: dict
  sample: [{"name": "_acme-challenge.ws.example.org.", "zone_id": "Z0123456789", "values": 2}]
"""

import contextlib
import datetime as dt
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

try:
    import requests
    from acme import challenges as acme_challenges
    from acme import client as acme_lib
    from acme import crypto_util as acme_crypto
    from acme import errors as acme_errors
    from acme import messages as acme_messages
    from cryptography.hazmat.primitives.asymmetric import ec
    from josepy import jwa
    from josepy import jwk as jose_jwk

    ACME_IMPORT_ERROR = None
except ImportError:
    ACME_IMPORT_ERROR = traceback.format_exc()

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing botocore
    from botocore.exceptions import BotoCoreError, ClientError

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.ocap_acme import (
    Bundle,
    CertError,
    CertInfo,
    candidate_zones,
    cert_info,
    challenge_name,
    change_batch,
    generate_key,
    key_matches_cert,
    load_account_key,
    normalize_domains,
    parse_bundle,
    plan_add,
    plan_remove,
    read_txt,
    renewal_reason,
    split_pem_chain,
    ssm_tier_for,
    txt_visible,
    wait_insync,
    zones_for,
)
from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

USER_AGENT = "ocap-acme-route53-certificate"

ARGUMENT_SPEC: dict[str, Any] = {
    "domains": {"type": "list", "elements": "str", "required": True},
    "acme_directory": {"type": "str", "required": True},
    "acme_ca_bundle": {"type": "path"},
    "account_key_src": {"type": "path"},
    "account_key_content": {"type": "str", "no_log": True},
    "account_key_passphrase": {"type": "str", "no_log": True},
    "account_email": {"type": "str"},
    "terms_agreed": {"type": "bool", "default": False},
    "acme_profile": {"type": "str"},
    "key_type": {
        "type": "str",
        "default": "ec256",
        "choices": ["ec256", "ec384", "rsa2048", "rsa3072", "rsa4096"],
        "no_log": False,
    },
    "store": {"type": "str", "default": "ssm", "choices": ["ssm", "secretsmanager"]},
    "name": {"type": "str", "required": True},
    "kms_key_id": {"type": "str", "no_log": False},
    "ssm_tier": {
        "type": "str",
        "default": "Intelligent-Tiering",
        "choices": ["Standard", "Advanced", "Intelligent-Tiering"],
    },
    "renewal_threshold": {"type": "float", "default": 0.3333},
    "use_ari": {"type": "bool", "default": True},
    "force": {"type": "bool", "default": False},
    "dns_ttl": {"type": "int", "default": 60},
    "propagation_timeout": {"type": "int", "default": 300},
    "dns_propagation_resolvers": {"type": "list", "elements": "str", "default": []},
    "validation_timeout": {"type": "int", "default": 120},
    "request_timeout": {"type": "int", "default": 30},
}

# Route53 allows five requests a second per account and answers PriorRequestNotComplete
# while an earlier change to the same zone is being applied: both are retried with backoff.
ROUTE53_RETRY = AWSRetry.jittered_backoff(
    retries=10, delay=1, max_delay=20, catch_extra_error_codes=["PriorRequestNotComplete", "Throttling"]
)
STORE_RETRY = AWSRetry.jittered_backoff(retries=8, delay=1, max_delay=20)


class AcmeFailure(Exception):
    """The CA refused or could not be reached; the message says what and where."""


@dataclass
class Run:
    """What this run is doing, so the one error handler can say where it failed."""

    step: str = "starting"
    challenges: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# -- store ----------------------------------------------------------------------------


def read_store(module: Any, run: Run) -> str | None:
    p = module.params
    run.step = f"reading {p['store']} {p['name']}"
    if p["store"] == "ssm":
        ssm = module.client("ssm", retry_decorator=STORE_RETRY)
        try:
            resp = ssm.get_parameter(Name=p["name"], WithDecryption=True, aws_retry=True)
        except is_boto3_error_code("ParameterNotFound"):
            return None
        return str(resp["Parameter"]["Value"])
    sm = module.client("secretsmanager", retry_decorator=STORE_RETRY)
    try:
        resp = sm.get_secret_value(SecretId=p["name"], aws_retry=True)
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    return str(resp.get("SecretString") or "")


def write_store(module: Any, run: Run, bundle: Bundle, existed: bool) -> dict[str, Any]:
    """Write the whole bundle in one call: readers see the old or the new one, never a mix."""
    p = module.params
    value = bundle.to_json()
    description = f"TLS certificate for {', '.join(bundle.info.domains)} (acme_route53_certificate)"
    run.step = f"writing the bundle to {p['store']} {p['name']}"
    if p["store"] == "ssm":
        tier = ssm_tier_for(len(value), p["ssm_tier"])
        kwargs: dict[str, Any] = {
            "Name": p["name"],
            "Value": value,
            "Type": "SecureString",
            "Overwrite": True,
            "Tier": tier,
            "Description": description,
        }
        if p["kms_key_id"]:
            kwargs["KeyId"] = p["kms_key_id"]
        resp = module.client("ssm", retry_decorator=STORE_RETRY).put_parameter(aws_retry=True, **kwargs)
        return {
            "type": "ssm",
            "name": p["name"],
            "tier": resp.get("Tier", tier),
            "version": resp.get("Version"),
        }
    sm = module.client("secretsmanager", retry_decorator=STORE_RETRY)
    if existed:
        resp = sm.put_secret_value(SecretId=p["name"], SecretString=value, aws_retry=True)
    else:
        kwargs = {"Name": p["name"], "SecretString": value, "Description": description}
        if p["kms_key_id"]:
            kwargs["KmsKeyId"] = p["kms_key_id"]
        resp = sm.create_secret(aws_retry=True, **kwargs)
    return {"type": "secretsmanager", "name": p["name"], "version": resp.get("VersionId")}


# -- ACME -----------------------------------------------------------------------------


def account_key_pem(module: Any) -> tuple[bytes, str]:
    p = module.params
    if p["account_key_content"]:
        return p["account_key_content"].encode("utf-8"), "account_key_content"
    try:
        with open(p["account_key_src"], "rb") as f:
            return f.read(), "account_key_src"
    except OSError as exc:
        raise CertError(f"account_key_src: cannot read {p['account_key_src']}: {exc.strerror}") from None


def acme_client(module: Any, run: Run, key: Any) -> Any:
    """The ACME client for the directory, signing with the account key."""
    p = module.params
    if isinstance(key, ec.EllipticCurvePrivateKey):
        jwk: Any = jose_jwk.JWKEC(key=key)
        alg = {256: jwa.ES256, 384: jwa.ES384}.get(key.curve.key_size)
        if alg is None:
            raise CertError(f"account key: EC curve {key.curve.name} is not supported (use P-256 or P-384)")
    else:
        jwk, alg = jose_jwk.JWKRSA(key=key), jwa.RS256
    net = acme_lib.ClientNetwork(
        jwk,
        alg=alg,
        verify_ssl=p["acme_ca_bundle"] or True,
        user_agent=USER_AGENT,
        timeout=p["request_timeout"],
    )
    run.step = f"reading the ACME directory {p['acme_directory']}"
    directory = acme_lib.ClientV2.get_directory(p["acme_directory"], net)
    return acme_lib.ClientV2(directory, net), jwk


def ensure_account(module: Any, run: Run, client: Any) -> None:
    p = module.params
    run.step = "registering or finding the ACME account"
    reg = acme_messages.NewRegistration.from_data(
        email=p["account_email"] or None, terms_of_service_agreed=p["terms_agreed"]
    )
    try:
        client.new_account(reg)
    except acme_errors.ConflictError as exc:
        # The key already has an account: the CA answered with its URL.
        client.net.account = acme_messages.RegistrationResource(
            uri=exc.location, body=acme_messages.Registration()
        )


def ari_time(module: Any, run: Run, client: Any, certificate_pem: str) -> dt.datetime | None:
    """When the CA's renewal information suggests renewing; None when it has none or cannot say."""
    if not module.params["use_ari"]:
        return None
    try:
        client.directory["renewalInfo"]
    except KeyError:
        return None  # the CA offers no renewal information
    run.step = "asking the CA's renewal information (ARI)"
    try:
        when, _retry_after = client.renewal_time(certificate_pem.encode("ascii"))
    except acme_errors.ARIError as exc:
        run.warnings.append(f"the CA's renewal information could not be read ({exc}); deciding without it")
        return None
    if when is None:
        return None
    when_utc: dt.datetime = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when_utc


@dataclass
class Pending:
    challb: Any
    response: Any
    rname: str
    value: str


def issue(  # noqa: PLR0917 - the run's collaborators, passed down once
    module: Any, run: Run, client: Any, jwk: Any, domains: list[str], zone_map: dict[str, Any]
) -> Bundle:
    """Order, answer every DNS-01 challenge through Route53, finalize; clean up what was added."""
    p = module.params
    ensure_account(module, run, client)
    cert_key = generate_key(p["key_type"])
    csr = acme_crypto.make_csr(cert_key, domains)
    run.step = "creating the ACME order"
    order = client.new_order(csr, profile=p["acme_profile"] or None)
    pending: list[Pending] = []
    for authzr in order.authorizations:
        if authzr.body.status == acme_messages.STATUS_VALID:
            continue  # the CA reuses a recent validation: nothing to publish
        challb = next((c for c in authzr.body.challenges if isinstance(c.chall, acme_challenges.DNS01)), None)
        ident = authzr.body.identifier.value
        if challb is None:
            raise AcmeFailure(f"the CA offers no dns-01 challenge for {ident}")
        response, validation = challb.response_and_validation(jwk)
        pending.append(Pending(challb, response, challenge_name(ident), validation))

    route53 = module.client("route53", retry_decorator=ROUTE53_RETRY)
    added: dict[str, list[str]] = {}
    try:
        publish(module, run, route53, pending, zone_map, added)
        run.step = "asking the CA to validate"
        for item in pending:
            client.answer_challenge(item.challb, item.response)
        run.step = "waiting for validation and issuance"
        deadline = dt.datetime.now() + dt.timedelta(seconds=p["validation_timeout"])
        order = client.poll_and_finalize(order, deadline)
    finally:
        cleanup(run, route53, zone_map, added)

    certs = split_pem_chain(order.fullchain_pem)
    if not certs:
        raise AcmeFailure("the CA returned no certificate")
    bundle = Bundle(certs[0], "".join(certs[1:]), cert_key.decode("ascii"), cert_info(certs[0]))
    if not key_matches_cert(bundle.private_key, bundle.certificate):
        raise AcmeFailure("the CA returned a certificate for a different key")
    missing = [d for d in domains if d not in bundle.info.domains]
    if missing:
        raise AcmeFailure(f"the CA's certificate does not cover {', '.join(missing)}")
    return bundle


def publish(  # noqa: PLR0917 - the run's collaborators, passed down once
    module: Any,
    run: Run,
    route53: Any,
    pending: list[Pending],
    zone_map: dict[str, Any],
    added: dict[str, list[str]],
) -> None:
    p = module.params
    by_name: dict[str, list[str]] = {}
    for item in pending:
        by_name.setdefault(item.rname, []).append(item.value)
    by_zone: dict[str, list[str]] = {}
    for rname in by_name:
        by_zone.setdefault(zone_map[rname].id, []).append(rname)
    change_ids = []
    for zone_id, names in by_zone.items():
        run.step = f"writing challenge TXT records to zone {zone_id}"
        changes: list[dict[str, Any]] = []
        for rname in names:
            changes += plan_add(read_txt(route53, zone_id, rname), rname, by_name[rname], p["dns_ttl"])
            # Remember before writing: if the call's outcome is unknown, cleanup still looks.
            added[rname] = by_name[rname]
            run.challenges.append({"name": rname, "zone_id": zone_id, "values": len(by_name[rname])})
        change_id = change_batch(
            route53, zone_id, changes, "ACME DNS-01 challenge (acme_route53_certificate)"
        )
        if change_id:
            change_ids.append(change_id)
    for change_id in change_ids:
        run.step = f"waiting for Route53 change {change_id} to be INSYNC"
        wait_insync(route53, change_id, p["propagation_timeout"])
    resolvers = p["dns_propagation_resolvers"]
    if resolvers:
        run.step = f"waiting until {', '.join(resolvers)} answer the challenge values"
        deadline = time.monotonic() + p["propagation_timeout"]
        for resolver in resolvers:
            for rname, values in by_name.items():
                while not txt_visible(resolver, rname, values):
                    if time.monotonic() > deadline:
                        raise CertError(
                            f"dns_propagation_resolvers: {resolver} did not answer {rname} with the "
                            f"challenge values within {p['propagation_timeout']}s"
                        )
                    time.sleep(0.2)


def cleanup(run: Run, route53: Any, zone_map: dict[str, Any], added: dict[str, list[str]]) -> None:
    """Remove exactly the values this run added, name by name; try every name even if one fails."""
    failures = []
    for rname, values in added.items():
        zone_id = zone_map[rname].id
        try:
            changes = plan_remove(read_txt(route53, zone_id, rname), values)
            change_batch(route53, zone_id, changes, "ACME DNS-01 cleanup (acme_route53_certificate)")
        except (BotoCoreError, ClientError) as exc:
            failures.append(f"{rname} in zone {zone_id}: {exc}")
    if failures:
        raise CertError("could not remove challenge TXT values: " + "; ".join(failures))


def describe_acme_error(exc: Exception) -> str:
    if isinstance(exc, acme_errors.ValidationError):
        parts = []
        for authzr in exc.failed_authzrs:
            for chall in authzr.body.challenges:
                if chall.error is not None:
                    parts.append(f"{authzr.body.identifier.value}: {chall.error}")
        return "the CA could not validate the DNS-01 challenge: " + "; ".join(parts)
    if isinstance(exc, acme_errors.IssuanceError):
        return f"the CA refused to issue the certificate: {exc.error}"
    if isinstance(exc, acme_errors.TimeoutError):
        return "the CA did not validate and issue within validation_timeout"
    return f"the ACME server refused the request: {exc}"


# -- the module -----------------------------------------------------------------------


def run_module(module: Any, run: Run) -> dict[str, Any]:
    p = module.params
    domains = normalize_domains(p["domains"])
    if not 0 < p["renewal_threshold"] < 1:
        raise CertError(
            f"renewal_threshold: expected a fraction between 0 and 1, got {p['renewal_threshold']}"
        )
    for key in ("dns_ttl", "propagation_timeout", "validation_timeout", "request_timeout"):
        if p[key] <= 0:
            raise CertError(f"{key}: expected a positive number of seconds, got {p[key]}")
    pem, field_name = account_key_pem(module)
    key = load_account_key(pem, field_name, p["account_key_passphrase"])

    where = f"{p['store']} {p['name']}"
    stored_text = read_store(module, run)
    stored: Bundle | None = parse_bundle(stored_text, where) if stored_text else None
    before: dict[str, Any] = stored.info.summary() if stored else {}

    client, jwk = acme_client(module, run, key)
    now = dt.datetime.now(dt.UTC)
    info: CertInfo | None = stored.info if stored else None
    reason = renewal_reason(info, domains, now, p["renewal_threshold"], force=p["force"])
    if reason is None and stored is not None:
        reason = renewal_reason(
            info,
            domains,
            now,
            p["renewal_threshold"],
            ari_time=ari_time(module, run, client, stored.certificate),
        )
    store_desc: dict[str, Any] = {"type": p["store"], "name": p["name"]}
    if p["store"] == "ssm":
        store_desc["tier"] = p["ssm_tier"]

    if reason is None:
        assert stored is not None
        return {
            "changed": False,
            "renewed": False,
            "reason": f"stored certificate is good until {before['not_after']}",
            **before,
            "store": store_desc,
            "diff": {"before": before, "after": before},
        }

    run.step = "looking up the Route53 hosted zones"
    route53 = module.client("route53", retry_decorator=ROUTE53_RETRY)
    zone_map = zones_for(domains, candidate_zones(route53, domains))

    if module.check_mode:
        after = {"domains": domains, "not_after": "(new certificate)", "serial": "(new certificate)"}
        return {
            "changed": True,
            "renewed": True,
            "reason": reason,
            "not_after": before.get("not_after"),
            "serial": before.get("serial"),
            "domains": before.get("domains", []),
            "store": store_desc,
            "diff": {"before": before, "after": after},
        }

    bundle = issue(module, run, client, jwk, domains, zone_map)
    store_desc = write_store(module, run, bundle, existed=stored_text is not None)
    after = bundle.info.summary()
    return {
        "changed": True,
        "renewed": True,
        "reason": reason,
        **after,
        "store": store_desc,
        "challenges": run.challenges,
        "diff": {"before": before, "after": after},
    }


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[["account_key_src", "account_key_content"]],
        required_one_of=[["account_key_src", "account_key_content"]],
    )
    if ACME_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib("acme, josepy and cryptography"), exception=ACME_IMPORT_ERROR
        )
    run = Run()
    # The one place where errors become the module's answer. Messages never carry key material:
    # the account key is no_log, the certificate key is made here and only leaves in the store call.
    try:
        result = run_module(module, run)
    except CertError as exc:
        module.fail_json(msg=str(exc), challenges=run.challenges)
    except (BotoCoreError, ClientError) as exc:
        module.fail_json_aws(exc, msg=f"AWS error while {run.step}", challenges=run.challenges)
    except requests.exceptions.SSLError as exc:
        module.fail_json(
            msg=f"acme_directory: TLS verification of {module.params['acme_directory']} failed while "
            f"{run.step} (set acme_ca_bundle for a private CA): {exc}"
        )
    except requests.exceptions.RequestException as exc:
        module.fail_json(
            msg=f"acme_directory: cannot reach {module.params['acme_directory']} while {run.step}: {exc}"
        )
    except AcmeFailure as exc:
        module.fail_json(msg=f"{exc} (while {run.step})", challenges=run.challenges)
    except acme_errors.Error as exc:
        module.fail_json(msg=f"{describe_acme_error(exc)} (while {run.step})", challenges=run.challenges)
    for warning in run.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
