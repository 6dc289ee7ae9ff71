"""The orchestration pieces of acme_route53_certificate, without servers."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from module_utils import ocap_acme as oa

NOW = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC)


def zones(*specs: tuple[str, str, bool]) -> list[oa.Zone]:
    return oa.zones_from_listing(
        {"Id": f"/hostedzone/{zid}", "Name": name, "Config": {"PrivateZone": private}}
        for zid, name, private in specs
    )


# -- domains and zones ----------------------------------------------------------------


def test_domains_are_normalized_and_bad_ones_named() -> None:
    assert oa.normalize_domains(["*.Example.ORG.", "example.org"]) == ["*.example.org", "example.org"]
    for bad in ["exa mple.org", "*.*.example.org", "foo.*.example.org", "org", "-a.example.org", "a..b"]:
        with pytest.raises(oa.CertError, match=r"^domains: "):
            oa.normalize_domains([bad])
    with pytest.raises(oa.CertError, match="listed twice"):
        oa.normalize_domains(["a.example.org", "A.example.org"])
    with pytest.raises(oa.CertError, match="at least one"):
        oa.normalize_domains([])


def test_wildcard_and_apex_share_one_challenge_name() -> None:
    assert oa.challenge_name("*.ws.example.org") == oa.challenge_name("ws.example.org")
    assert oa.challenge_name("ws.example.org") == "_acme-challenge.ws.example.org."


def test_zone_is_the_longest_matching_public_suffix() -> None:
    zs = zones(
        ("Z1", "example.org.", False),
        ("Z2", "ws.example.org.", False),
        ("Z3", "deep.ws.example.org.", True),  # private: never used
        ("Z4", "s.example.org.", False),  # a suffix by characters, not by labels
    )
    assert oa.find_zone("_acme-challenge.deep.ws.example.org.", zs).id == "Z2"  # type: ignore[union-attr]
    assert oa.find_zone("_acme-challenge.example.org.", zs).id == "Z1"  # type: ignore[union-attr]
    assert oa.find_zone("_acme-challenge.x.ws.example.org", zs).id == "Z2"  # type: ignore[union-attr]
    assert oa.find_zone("_acme-challenge.example.com.", zs) is None


def test_every_domain_outside_the_zones_is_named_and_a_private_match_explained() -> None:
    zs = zones(("Z1", "example.org.", False), ("Z9", "corp.internal.", True))
    with pytest.raises(oa.CertError) as err:
        oa.zones_for(["a.example.org", "b.example.com", "c.example.net"], zs)
    assert "b.example.com, c.example.net" in str(err.value) and "a.example.org" not in str(err.value)
    with pytest.raises(oa.CertError, match=r"only a private zone matches x\.corp\.internal"):
        oa.zones_for(["x.corp.internal"], zs)
    mapping = oa.zones_for(["*.example.org", "example.org"], zs)
    assert list(mapping) == ["_acme-challenge.example.org."]


class FakeZonesByName:
    """ListHostedZonesByName as Route53 answers it: zones in order from DNSName on, in pages."""

    def __init__(self, names: list[tuple[str, str, bool]], page: int = 2) -> None:
        key = lambda z: list(reversed(z[1].rstrip(".").split(".")))  # noqa: E731
        self.zones = sorted(names, key=key)
        self.key, self.page, self.calls = key, page, 0

    def list_hosted_zones_by_name(
        self, DNSName: str, MaxItems: str, aws_retry: bool, **kw: str
    ) -> dict[str, Any]:
        self.calls += 1
        start = [z for z in self.zones if self.key(z) >= self.key(("", DNSName, False))]
        if "HostedZoneId" in kw:
            start = start[[z[0] for z in start].index(kw["HostedZoneId"]) :]
        page, rest = start[: self.page], start[self.page :]
        listing = [{"Id": f"/hostedzone/{i}", "Name": n, "Config": {"PrivateZone": p}} for i, n, p in page]
        resp: dict[str, Any] = {"HostedZones": listing, "IsTruncated": bool(rest)}
        if rest:
            resp.update(NextDNSName=rest[0][1], NextHostedZoneId=rest[0][0])
        return resp


def test_zones_are_found_by_name_one_call_per_suffix_following_pages() -> None:
    assert oa.suffixes(["*.ws.example.org", "ws.example.org"]) == [
        "_acme-challenge.ws.example.org.",
        "ws.example.org.",
        "example.org.",
        "org.",
    ]
    fake = FakeZonesByName(
        [
            ("Z1", "example.org.", False),
            ("Z2", "ws.example.org.", True),  # private twin of the public one below
            ("Z3", "ws.example.org.", False),
            ("Z4", "zz.example.org.", False),
            ("Z5", "other.net.", False),
        ],
        page=1,
    )
    found = oa.candidate_zones(fake, ["*.ws.example.org"])
    assert sorted(z.id for z in found) == ["Z1", "Z2", "Z3"]
    assert oa.zones_for(["*.ws.example.org"], found)["_acme-challenge.ws.example.org."].id == "Z3"


# -- TXT sets -------------------------------------------------------------------------


def test_txt_values_round_trip_through_route53_quoting() -> None:
    for value in ["abc-DEF_123", 'with "quotes"', "back\\slash"]:
        assert oa.txt_unquote(oa.txt_quote(value)) == value
    assert oa.txt_unquote('"part1" "part2"') == "part1part2"  # long values come split


def test_adding_keeps_other_values_and_the_owners_ttl() -> None:
    current = oa.TxtSet("_acme-challenge.example.org.", ("theirs",), 300)
    (change,) = oa.plan_add(current, current.name, ["mine1", "mine2"], ttl=60)
    assert change["Action"] == "UPSERT"
    rrset = change["ResourceRecordSet"]
    assert [r["Value"] for r in rrset["ResourceRecords"]] == ['"theirs"', '"mine1"', '"mine2"']
    assert rrset["TTL"] == 300
    assert oa.plan_add(None, "_acme-challenge.x.org.", ["v"], ttl=60)[0]["ResourceRecordSet"]["TTL"] == 60
    assert oa.plan_add(oa.TxtSet("n.", ("v",), 60), "n.", ["v"], ttl=60) == []  # already there


def test_cleanup_removes_exactly_ours() -> None:
    current = oa.TxtSet("n.", ("theirs", "mine1", "mine2"), 300)
    (change,) = oa.plan_remove(current, ["mine1", "mine2"])
    assert change["Action"] == "UPSERT"
    assert change["ResourceRecordSet"]["ResourceRecords"] == [{"Value": '"theirs"'}]
    only_ours = oa.TxtSet("n.", ("mine1", "mine2"), 60)
    (delete,) = oa.plan_remove(only_ours, ["mine1", "mine2"])
    assert delete["Action"] == "DELETE"
    assert [r["Value"] for r in delete["ResourceRecordSet"]["ResourceRecords"]] == ['"mine1"', '"mine2"']
    assert oa.plan_remove(oa.TxtSet("n.", ("theirs",), 60), ["mine1"]) == []
    assert oa.plan_remove(None, ["mine1"]) == []


class FakeRoute53:
    """GetChange answering PENDING a few times, then INSYNC (moto always answers INSYNC)."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.calls = 0

    def get_change(self, Id: str, aws_retry: bool) -> dict[str, Any]:
        self.calls += 1
        status = "PENDING" if self.calls <= self.pending else "INSYNC"
        return {"ChangeInfo": {"Id": Id, "Status": status}}


def test_waits_for_insync_with_backoff_and_times_out_naming_the_change() -> None:
    slept: list[float] = []
    clock = [0.0]

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    fake = FakeRoute53(pending=3)
    assert oa.wait_insync(fake, "C1", 300, sleep=sleep, clock=lambda: clock[0]) == 4
    assert slept == sorted(slept) and slept[0] >= 1  # backs off, never hammers the API
    with pytest.raises(oa.CertError, match=r"propagation_timeout: Route53 change C2 still PENDING"):
        oa.wait_insync(FakeRoute53(pending=10_000), "C2", 30, sleep=sleep, clock=lambda: clock[0])


# -- renewal decision -----------------------------------------------------------------


def info(days_total: int, days_left: float, domains: tuple[str, ...] = ("example.org",)) -> oa.CertInfo:
    not_after = NOW + dt.timedelta(days=days_left)
    return oa.CertInfo(not_after - dt.timedelta(days=days_total), not_after, "0a", domains)


def test_renewal_decision() -> None:
    third = 1 / 3
    assert oa.renewal_reason(None, ["example.org"], NOW, third) == "no certificate stored yet"
    assert oa.renewal_reason(info(90, 60), ["example.org"], NOW, third) is None
    assert "lifetime left" in (oa.renewal_reason(info(90, 29), ["example.org"], NOW, third) or "")
    # 45-day certificates (from 2028) renew with 15 days left, not 30.
    assert oa.renewal_reason(info(45, 16), ["example.org"], NOW, third) is None
    assert oa.renewal_reason(info(45, 14), ["example.org"], NOW, third) is not None
    assert "expired" in (oa.renewal_reason(info(90, -1), ["example.org"], NOW, third) or "")
    assert "does not cover www.example.org" in (
        oa.renewal_reason(info(90, 60), ["example.org", "www.example.org"], NOW, third) or ""
    )
    assert "forced" in (oa.renewal_reason(info(90, 60), ["example.org"], NOW, third, force=True) or "")


def test_the_cas_renewal_information_renews_earlier_only_when_its_time_has_come() -> None:
    good = info(90, 60)
    soon = NOW + dt.timedelta(hours=1)
    assert oa.renewal_reason(good, ["example.org"], NOW, 1 / 3, ari_time=soon) is None
    past = NOW - dt.timedelta(minutes=1)
    assert "renewal information" in (
        oa.renewal_reason(good, ["example.org"], NOW, 1 / 3, ari_time=past) or ""
    )


# -- bundle, store limits, keys -------------------------------------------------------


def test_a_stored_value_that_is_not_a_bundle_is_refused_not_overwritten() -> None:
    with pytest.raises(oa.CertError, match="not JSON"):
        oa.parse_bundle("hello", "ssm /x")
    with pytest.raises(oa.CertError, match="expected keys"):
        oa.parse_bundle(json.dumps({"certificate": "x"}), "ssm /x")
    with pytest.raises(oa.CertError, match="'certificate' is not a PEM certificate"):
        oa.parse_bundle(json.dumps({"certificate": "x", "chain": "", "private_key": "k"}), "ssm /x")


def test_ssm_tier_limits_are_named() -> None:
    assert oa.ssm_tier_for(4000, "Standard") == "Standard"
    with pytest.raises(oa.CertError, match="ssm_tier: the bundle is 5000 characters"):
        oa.ssm_tier_for(5000, "Standard")
    assert oa.ssm_tier_for(7500, "Intelligent-Tiering") == "Intelligent-Tiering"
    with pytest.raises(oa.CertError, match="use store=secretsmanager"):
        oa.ssm_tier_for(9000, "Advanced")


def test_bad_account_keys_are_named_without_echoing_them() -> None:
    secret = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWlzaA==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(oa.CertError) as err:
        oa.load_account_key(secret, "account_key_content")
    assert str(err.value).startswith("account_key_content: expected a PEM-encoded RSA or EC private key")
    assert "c2VjcmV0" not in str(err.value)
    good = oa.generate_key("ec256")
    assert oa.load_account_key(good, "account_key_src") is not None


def test_each_key_type_makes_a_fresh_key() -> None:
    assert oa.generate_key("ec256") != oa.generate_key("ec256")
    assert b"PRIVATE KEY" in oa.generate_key("ec384")
    with pytest.raises(oa.CertError, match="key_type"):
        oa.generate_key("dsa")


# -- the module's documentation matches its argument spec -----------------------------


def test_module_documentation_matches_the_argument_spec() -> None:
    source = (Path(__file__).resolve().parents[2] / "library" / "acme_route53_certificate.py").read_text()
    assigned: dict[str, ast.expr] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            assigned[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            assigned[node.target.id] = node.value
    doc = yaml.safe_load(ast.literal_eval(assigned["DOCUMENTATION"]))
    spec = ast.literal_eval(assigned["ARGUMENT_SPEC"])
    yaml.safe_load(ast.literal_eval(assigned["EXAMPLES"]))
    returned = yaml.safe_load(ast.literal_eval(assigned["RETURN"]))
    assert set(doc["options"]) == set(spec)
    for name, option in doc["options"].items():
        assert option["type"] == spec[name]["type"], name
        assert option.get("default") == spec[name].get("default"), name
        assert option.get("choices") == spec[name].get("choices"), name
        assert option.get("required", False) == spec[name].get("required", False), name
    assert {"check_mode", "diff_mode"} <= set(doc["attributes"])
    assert {"renewed", "reason", "not_after", "serial", "domains"} <= set(returned)
    assert spec["account_key_content"]["no_log"] and spec["account_key_passphrase"]["no_log"]
