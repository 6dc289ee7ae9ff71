"""acme_route53_certificate against Pebble and moto: validation goes through DNS for real."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from module_utils.ocap_acme import cert_info, key_matches_cert
from tests import stack_pebble
from tests.integration.certs.conftest import ROOT, Zone, make_zone, run_playbook, txt_records


def stored_bundle(ssm: Any, name: str) -> dict[str, Any]:
    return dict(json.loads(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]))


def sync(env: dict[str, str], config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocap_agent", "--config", str(config), "certs", "sync", "--json"],
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )


def param_exists(ssm: Any, name: str) -> bool:
    try:
        ssm.get_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


def test_playbook_issues_once_then_a_second_run_changes_nothing(  # noqa: PLR0917 - pytest passes fixtures positionally
    pebble: stack_pebble.PebbleStack,
    certs_env: dict[str, str],
    zone: Zone,
    ssm: Any,
    route53: Any,
    account_key: Path,
    tmp_path: Path,
    unique: str,
) -> None:
    name = f"/ocap/test-{unique}/tls/workstations"
    extra = {
        "ocap_certs_acme_directory": pebble.directory_url,
        "ocap_certs_acme_ca_bundle": str(pebble.ca_bundle),
        # The key itself (as from a secret lookup): it must never show in the output.
        "ocap_certs_account_key_content": account_key.read_text(),
        "ocap_certs_dns_propagation_resolvers": [pebble.dns_address],
        "ocap_certs_sets": [{"name": name, "domains": [f"*.{zone.name}", zone.name]}],
    }
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(extra))
    playbook = ROOT / "playbooks" / "certs.yml"

    first = run_playbook(playbook, certs_env, "-e", f"@{vars_file}", "-vvv")
    assert first.rc == 0, first.output[-3000:]
    issued = first.task("Issue or renew each certificate when due")["results"][0]
    assert issued["changed"] and issued["renewed"]
    assert issued["reason"] == "no certificate stored yet"
    assert sorted(issued["domains"]) == sorted([f"*.{zone.name}", zone.name])

    bundle = stored_bundle(ssm, name)
    assert set(bundle) == {
        "certificate",
        "chain",
        "fullchain",
        "private_key",
        "not_after",
        "serial",
        "domains",
    }
    assert bundle["serial"] == issued["serial"] and bundle["not_after"] == issued["not_after"]
    assert bundle["fullchain"] == bundle["certificate"] + bundle["chain"]
    assert key_matches_cert(bundle["private_key"], bundle["certificate"])
    leaf = x509.load_pem_x509_certificate(bundle["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(bundle["chain"].encode())
    leaf.verify_directly_issued_by(issuer)  # a real chain from Pebble, not a self-signed stand-in
    # A wildcard and its apex share one name: both values went into one record set, and it is gone now.
    assert issued["challenges"] == [
        {"name": f"_acme-challenge.{zone.name}.", "zone_id": zone.id, "values": 2}
    ]
    assert txt_records(route53, zone.id) == {}
    # Neither the certificate's key nor the account key appears anywhere in the output.
    key_body = "".join(bundle["private_key"].splitlines()[1:-1])
    account_body = "".join(account_key.read_text().splitlines()[1:-1])
    assert key_body[:40] not in first.output.replace("\\n", "")
    assert account_body[:40] not in first.output.replace("\\n", "")

    second = run_playbook(playbook, certs_env, "-e", f"@{vars_file}")
    assert second.rc == 0, second.output[-3000:]
    kept = second.task("Issue or renew each certificate when due")["results"][0]
    assert not kept["changed"] and not kept["renewed"], kept.get("reason")
    assert kept["serial"] == issued["serial"]
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1

    # An instance at spin-up: install the stored result for DCV, then again (nothing to do).
    install = tmp_path / "dcv"
    config = tmp_path / "agent.json"
    config.write_text(
        json.dumps(
            {
                "paths": {"data_dir": str(tmp_path / "agent")},
                "certs": {"store": "ssm", "name": name, "install_dir": str(install)},
            }
        )
    )
    synced = sync(certs_env, config)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["status"] == "installed"
    assert (install / "dcv.pem").read_text() == bundle["fullchain"]
    assert (install / "dcv.key").read_text() == bundle["private_key"]
    assert (install / "dcv.key").stat().st_mode & 0o777 == 0o600
    assert key_body[:40] not in synced.stdout + synced.stderr
    again = sync(certs_env, config)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "unchanged", again.stderr


def test_renews_a_certificate_in_the_last_third_of_its_life(  # noqa: PLR0917 - pytest passes fixtures positionally
    run_module: Any, short_pebble: stack_pebble.PebbleStack, zone: Zone, ssm: Any, route53: Any, unique: str
) -> None:
    name = f"/ocap/test-{unique}/tls/short"
    short_pebble.feeder.watch(zone.id)
    # ARI off: for a certificate of seconds Pebble's suggested window spans its whole life.
    args = {"domains": [zone.name], "name": name, "acme_profile": "shortlived", "use_ari": False}
    first = run_module(args, ca=short_pebble).results[0]
    assert first.get("renewed"), first.get("msg")
    info = cert_info(stored_bundle(ssm, name)["certificate"])
    lifetime = info.not_after - info.not_before
    assert lifetime <= dt.timedelta(seconds=stack_pebble.SHORT_VALIDITY_S)
    # Wait (from the certificate's own dates) until less than a third of its life is left.
    due = info.not_after - lifetime / 3 + dt.timedelta(milliseconds=200)
    time.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds()))

    second = run_module(args, ca=short_pebble).results[0]
    assert second["changed"] and second["renewed"], second.get("msg")
    assert "lifetime left" in second["reason"] or "expired" in second["reason"]
    assert second["serial"] != first["serial"]
    assert cert_info(stored_bundle(ssm, name)["certificate"]).serial == second["serial"]
    assert second["diff"]["before"]["serial"] == first["serial"]
    assert txt_records(route53, zone.id) == {}


def test_renews_early_when_the_ca_renewal_information_says_so_and_check_mode_only_reports(
    run_module: Any, pebble: stack_pebble.PebbleStack, zone: Zone, ssm: Any, unique: str
) -> None:
    name = f"/ocap/test-{unique}/tls/ari"
    args = {"domains": [f"*.{zone.name}"], "name": name}
    first = run_module(args).results
    assert first[0].get("renewed"), first[0].get("msg")
    certificate = stored_bundle(ssm, name)["certificate"]

    # The CA asks for an early renewal (e.g. a mass revocation): a window that already began.
    now = dt.datetime.now(dt.UTC)
    pebble.set_renewal_info(certificate, now - dt.timedelta(hours=2), now - dt.timedelta(hours=1))

    checked, renewed = run_module({**args, "_check_mode": True}, args).results
    assert checked["changed"] and checked["renewed"]
    assert "renewal information" in checked["reason"]
    assert checked["serial"] == first[0]["serial"]  # check mode issued nothing...
    assert checked["diff"]["before"]["serial"] == first[0]["serial"]
    # ...and stored nothing: the real run that follows is the parameter's second version.
    assert renewed["renewed"] and "renewal information" in renewed["reason"]
    assert renewed["serial"] != first[0]["serial"]
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 2


def test_failed_validation_removes_exactly_the_values_it_added(
    run_module: Any, unwatched_zone: Zone, ssm: Any, route53: Any, unique: str
) -> None:
    # Pebble's DNS never learns this zone's records: validation fails through DNS.
    zone = unwatched_zone
    rname = f"_acme-challenge.{zone.name}."
    route53.change_resource_record_sets(
        HostedZoneId=zone.id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": rname,
                        "Type": "TXT",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": '"another-clients-value"'}],
                    },
                }
            ]
        },
    )
    name = f"/ocap/test-{unique}/tls/fails"
    result = run_module(
        {"domains": [zone.name, f"*.{zone.name}"], "name": name, "dns_propagation_resolvers": []}
    )
    failed = result.results[0]
    assert failed.get("failed"), failed
    assert "could not validate" in failed["msg"] and "TXT records" in failed["msg"]  # the CA's DNS lookup
    assert failed["challenges"] == [{"name": rname, "zone_id": zone.id, "values": 2}]  # it did publish
    assert txt_records(route53, zone.id) == {rname: ["another-clients-value"]}
    assert not param_exists(ssm, name)


def test_refuses_bad_inputs_before_touching_anything(  # noqa: PLR0917 - pytest passes fixtures positionally
    run_module: Any, route53: Any, ec2: Any, zone: Zone, ssm: Any, unique: str
) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    private = make_zone(route53, f"private-{unique}.certs.test", private_vpc=vpc)
    outside = f"host.nowhere-{unique}.test"
    cases = [
        # zone not found: only a private zone matches
        {"domains": [f"a.{private.name}"], "name": f"/ocap/test-{unique}/p"},
        # one domain outside every zone: nothing is written for the other one either
        {"domains": [zone.name, outside], "name": f"/ocap/test-{unique}/o"},
        # an account key that is not a key
        {"domains": [zone.name], "name": f"/ocap/test-{unique}/k", "account_key_src": None,
         "account_key_content": "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"},
    ]  # fmt: skip
    private_zone, outside_zone, bad_key = run_module(*cases).results
    assert private_zone.get("failed") and f"a.{private.name}" in private_zone["msg"]
    assert "private zone" in private_zone["msg"]
    assert (
        outside_zone.get("failed")
        and outside in outside_zone["msg"]
        and "no public Route53 hosted zone" in (outside_zone["msg"])
    )
    assert zone.name not in outside_zone["msg"].split("contains")[1]  # only the uncovered one is named
    assert bad_key.get("failed") and bad_key["msg"].startswith("account_key_content: expected a PEM")
    assert "bm90IGEga2V5" not in json.dumps(bad_key)
    assert txt_records(route53, zone.id) == {} and txt_records(route53, private.id) == {}
    for case in cases:
        assert not param_exists(ssm, case["name"])


def test_secrets_manager_store_with_its_own_kms_key(
    run_module: Any, zone: Zone, secretsmanager: Any, moto_server: Any, unique: str
) -> None:
    from tests.integration.certs.conftest import aws

    key_id = aws("kms", moto_server.endpoint).create_key(Description=f"certs {unique}")["KeyMetadata"][
        "KeyId"
    ]
    name = f"ocap/test-{unique}/tls/sm"
    args = {"domains": [zone.name], "name": name, "store": "secretsmanager", "kms_key_id": key_id}
    issued, kept = run_module(args, args).results
    assert issued["renewed"] and issued["store"]["type"] == "secretsmanager", issued.get("msg")
    assert not kept["changed"], kept.get("reason")
    described = secretsmanager.describe_secret(SecretId=name)
    assert described["KmsKeyId"] == key_id
    bundle = json.loads(secretsmanager.get_secret_value(SecretId=name)["SecretString"])
    assert bundle["serial"] == issued["serial"]
    serialization.load_pem_private_key(bundle["private_key"].encode(), password=None)
