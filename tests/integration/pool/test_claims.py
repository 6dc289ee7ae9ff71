"""The broker against the emulator: concurrent claims never double-book; release, prune, expiry."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ocap_agent import state
from ocap_agent.broker import (
    Broker,
    BrokerSettings,
    NoCapacity,
    SessionBusy,
    claim,
    dns,
    prune,
    release,
    rows,
)
from tests.integration.pool import helpers

WORKERS = 16


def race(broker: Broker, pool: str, claims: int) -> tuple[list[dict[str, Any]], list[NoCapacity]]:
    """CLAIMS concurrent claims on POOL; any error other than "no capacity" fails the test."""
    barrier = threading.Barrier(WORKERS)

    def attempt(n: int) -> dict[str, Any] | NoCapacity:
        if n < WORKERS:
            barrier.wait()  # the first wave starts together: the hardest race
        try:
            return claim(broker, pool, f"user-{n}")
        except NoCapacity as exc:
            return exc

    with ThreadPoolExecutor(max_workers=WORKERS) as ex:
        results = list(ex.map(attempt, range(claims)))
    wins = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, NoCapacity)]
    return wins, refused


@pytest.fixture()
def world(aws_env: dict[str, str], unique: str) -> dict[str, Any]:
    c = helpers.clients()
    table = helpers.create_table(c["dynamodb"], f"claims-{unique}")
    template = helpers.create_template(c["ec2"], f"claims-{unique}")
    domain = f"ws-{unique}.ocap.test"
    zone = helpers.create_zone(c["route53"], domain)
    settings = BrokerSettings(table=table.table, hosted_zone_id=zone, domain=domain, start_timeout=60)
    broker = Broker(settings, ec2=c["ec2"], ddb=c["dynamodb"], route53=c["route53"])
    return {"c": c, "table": table, "template": template, "zone": zone, "domain": domain, "broker": broker}


@pytest.mark.parametrize(
    ("warm", "claims", "repeats"),
    [(50, 200, 10), pytest.param(250, 1000, 3, marks=pytest.mark.slow)],
    ids=["200-claims-on-50-x10", "1000-claims-on-250-x3"],
)
def test_concurrent_claims_never_double_book(
    world: dict[str, Any], unique: str, warm: int, claims: int, repeats: int
) -> None:
    c = world["c"]
    for repeat in range(repeats):
        pool = f"race-{unique}-{repeat}"
        # A fresh table per repeat: independent trials (and moto's index
        # queries read every item of the table, so they stay fast).
        table = helpers.create_table(c["dynamodb"], f"race-{unique}-{repeat}")
        broker = Broker(
            dataclasses.replace(world["broker"].settings, table=table.table),
            ec2=c["ec2"],
            ddb=c["dynamodb"],
            route53=c["route53"],
        )
        offered = set(helpers.fill_warm(c["ec2"], table, pool, world["template"], warm))

        wins, refused = race(broker, pool, claims)

        assert len(wins) == warm, f"repeat {repeat}: {len(wins)} claims succeeded"
        assert len(refused) == claims - warm, f"repeat {repeat}: {len(refused)} got no capacity"
        claimed = [w["instance_id"] for w in wins]
        assert len(set(claimed)) == warm, f"repeat {repeat}: double-booked {len(claimed) - len(set(claimed))}"
        assert set(claimed) == offered
        assert len({w["session_id"] for w in wins}) == warm
        assert all("retry in" in r.message and r.details["retry_after"] > 0 for r in refused)
        # The table agrees with what the winners were told: each instance is
        # Claimed by exactly the session that got it, and each session points back.
        by_instance = {w["instance_id"]: w for w in wins}
        everything = list(table.query_pool(pool))  # instance and session rows, in one read
        sessions = {r["pk"]: r for r in everything if r["pk"].startswith("session#")}
        instances = [r for r in everything if r["pk"].startswith("instance#")]
        assert len(instances) == warm and len(sessions) == warm
        for row in instances:
            won = by_instance[rows.instance_id_of(row)]
            assert row["state"] == "Claimed"
            assert row["session_id"] == won["session_id"]
            assert row["user"] == won["user"]
            session = sessions[state.session_key(won["session_id"])]
            assert (session["state"], session["instance_id"]) == ("Claimed", won["instance_id"])
        assert rows.read_demand(table, pool) == claims - warm
    # Every winner's name resolves to its own instance's address (last repeat).
    records = dns.our_records(c["route53"], world["zone"], "ws-", world["domain"])
    for w in wins:
        instance_id, record = records[w["hostname"] + "."]
        assert instance_id == w["instance_id"]
        assert record["ResourceRecords"] == [{"Value": w["address"]}]
        assert record["TTL"] == 30


def test_an_empty_pool_says_no_capacity_and_records_demand(world: dict[str, Any], unique: str) -> None:
    broker, table = world["broker"], world["table"]
    with pytest.raises(NoCapacity) as err:
        claim(broker, f"empty-{unique}", "alice")
    assert f"no warm instance in pool 'empty-{unique}'" in err.value.message
    assert "retry in 60s" in err.value.message
    assert err.value.details["unserved_demand"] == 1
    assert rows.read_demand(table, f"empty-{unique}") == 1


def describe(ec2: Any, instance_id: str) -> dict[str, Any]:
    return dict(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])


def expire_lease(table: Any, instance_id: str) -> None:
    """Let the lease's time pass without waiting: put its expiry in the past."""
    rows.set_attrs(
        table,
        state.instance_key(instance_id),
        expect={state.InstanceState.CLAIMED, state.InstanceState.IN_USE},
        lease_expires="2000-01-01T00:00:00.000Z",
    )


def records_of(world: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return dns.our_records(world["c"]["route53"], world["zone"], "ws-", world["domain"])


def test_claim_then_release_returns_the_instance_for_a_fresh_warm_up(
    world: dict[str, Any], unique: str
) -> None:
    c, table, broker = world["c"], world["table"], world["broker"]
    pool = f"cycle-{unique}"
    helpers.fill_warm(c["ec2"], table, pool, world["template"], 2)

    session = claim(broker, pool, "ann")

    inst = describe(c["ec2"], session["instance_id"])
    assert inst["State"]["Name"] == "running"
    assert inst["PublicIpAddress"] == session["address"]
    assert session["hostname"] == f"ws-{session['instance_id'][2:]}.{world['domain']}"
    assert records_of(world)[session["hostname"] + "."][1]["ResourceRecords"] == [
        {"Value": session["address"]}
    ]
    srow = table.get(state.session_key(session["session_id"]))
    assert (srow["state"], srow["instance_id"], srow["user"]) == ("Claimed", session["instance_id"], "ann")

    released = release(broker, session["session_id"])

    assert released["dns_record"] == "deleted"
    assert session["hostname"] + "." not in records_of(world)
    assert describe(c["ec2"], session["instance_id"])["State"]["Name"] in ("stopping", "stopped")
    row = table.get(state.instance_key(session["instance_id"]))
    assert row["state"] == "WarmingUp"  # back to the pool only after a fresh warm-up
    assert not {"session_id", "lease_owner", "lease_expires", rows.WARM_ATTR} & set(row)
    assert table.get(state.session_key(session["session_id"]))["state"] == "Released"
    # Repeating the release is harmless; the returned instance is not offered again yet.
    assert release(broker, session["session_id"])["already_released"] is True
    other = claim(broker, pool, "bob")
    assert other["instance_id"] != session["instance_id"]
    with pytest.raises(NoCapacity):
        claim(broker, pool, "carol")


def test_release_of_an_unhealthy_instance_hands_it_over_for_replacement(
    world: dict[str, Any], unique: str
) -> None:
    c, table, broker = world["c"], world["table"], world["broker"]
    pool = f"sick-{unique}"
    helpers.fill_warm(c["ec2"], table, pool, world["template"], 1)
    session = claim(broker, pool)
    release(broker, session["session_id"], unhealthy=True)
    assert table.get(state.instance_key(session["instance_id"]))["state"] == "Unhealthy"


def test_release_waits_for_an_upload_unless_forced(world: dict[str, Any], unique: str) -> None:
    c, table, broker = world["c"], world["table"], world["broker"]
    pool = f"busy-{unique}"
    helpers.fill_warm(c["ec2"], table, pool, world["template"], 1)
    session = claim(broker, pool)
    key = state.session_key(session["session_id"])
    table.transition(key, state.SessionState.RECORDING)  # as the agent does
    table.transition(key, state.SessionState.UPLOADING)
    with pytest.raises(SessionBusy, match="Uploading"):
        release(broker, session["session_id"])
    assert describe(c["ec2"], session["instance_id"])["State"]["Name"] == "running"
    assert release(broker, session["session_id"], force=True)["already_released"] is False
    assert table.get(key)["state"] == "Released"


def test_expired_leases_are_reclaimed_but_sessions_in_use_are_not(world: dict[str, Any], unique: str) -> None:
    c, table, broker = world["c"], world["table"], world["broker"]
    pool = f"expiry-{unique}"
    helpers.fill_warm(c["ec2"], table, pool, world["template"], 2)
    idle = claim(broker, pool, "never-came")
    used = claim(broker, pool, "came")
    table.transition(
        state.instance_key(used["instance_id"]), state.InstanceState.IN_USE
    )  # the agent's session start
    expire_lease(table, idle["instance_id"])
    expire_lease(table, used["instance_id"])

    result = prune(broker, pool)

    assert result["reclaimed"] == [idle["session_id"]]
    assert table.get(state.instance_key(idle["instance_id"]))["state"] == "WarmingUp"
    assert table.get(state.session_key(idle["session_id"]))["state"] == "Released"
    assert describe(c["ec2"], idle["instance_id"])["State"]["Name"] in ("stopping", "stopped")
    assert idle["hostname"] + "." not in records_of(world)
    assert table.get(state.instance_key(used["instance_id"]))["state"] == "InUse"
    assert describe(c["ec2"], used["instance_id"])["State"]["Name"] == "running"
    assert used["hostname"] + "." in records_of(world)


def test_prune_deletes_records_of_gone_stopped_or_moved_instances_only(
    world: dict[str, Any], unique: str
) -> None:
    c, broker = world["c"], world["broker"]
    ec2, route53, zone, domain = c["ec2"], c["route53"], world["zone"], world["domain"]
    ids = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=helpers.some_image(ec2), MinCount=4, MaxCount=4)["Instances"]
    ]
    running, stopped, gone, moved = ids
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[gone])
    address = describe(ec2, running)["PublicIpAddress"]
    for iid, value in ((running, address), (stopped, "192.0.2.1"), (gone, "192.0.2.2"), (moved, "192.0.2.3")):
        dns.upsert(route53, zone, dns.record_name("ws-", iid, domain), value, 30)
    dns.upsert(route53, zone, f"www.{domain}", "192.0.2.9", 300)  # not ours: never touched

    result = prune(broker)

    names = {dns.record_name("ws-", i, domain) + "." for i in (stopped, gone, moved)}
    assert names <= set(result["deleted"])
    left = {r["Name"] for r in route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]}
    assert dns.record_name("ws-", running, domain) + "." in left
    assert f"www.{domain}." in left
    assert not names & left


def test_the_command_line_claims_shows_and_releases(world: dict[str, Any], unique: str) -> None:
    c, table = world["c"], world["table"]
    pool = f"cli-{unique}"
    helpers.fill_warm(c["ec2"], table, pool, world["template"], 1)
    env = {
        **os.environ,
        "OCAP_STATE_TABLE": table.table,
        "OCAP_HOSTED_ZONE_ID": world["zone"],  # the domain comes from the zone
    }
    cli = [str(helpers.BIN / "ocap-broker")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], env=env, text=True, capture_output=True, check=False)

    claimed = run("claim", "--pool", pool, "--user", "dana")
    assert claimed.returncode == 0, claimed.stderr
    session = json.loads(claimed.stdout)
    assert set(session) >= {"session_id", "instance_id", "address", "hostname"}
    assert session["hostname"].endswith("." + world["domain"])
    shown = run("status", "--pool", pool)
    assert shown.returncode == 0
    assert session["instance_id"] in shown.stdout and "Claimed" in shown.stdout and "dana" in shown.stdout
    refused = run("claim", "--pool", pool)
    assert refused.returncode == 3
    assert json.loads(refused.stderr)["error"] == "NoCapacity"
    released = run("release", session["session_id"])
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["dns_record"] == "deleted"
    unknown = run("release", "0" * 32)
    assert unknown.returncode == 4


def test_a_claim_that_finds_no_capacity_reclaims_expired_leases(world: dict[str, Any], unique: str) -> None:
    c, table, broker = world["c"], world["table"], world["broker"]
    pool = f"reclaim-{unique}"
    helpers.fill_warm(c["ec2"], table, pool, world["template"], 1)
    abandoned = claim(broker, pool, "gone-away")
    expire_lease(table, abandoned["instance_id"])

    with pytest.raises(NoCapacity) as err:
        claim(broker, pool, "next")

    # The reclaimed instance needs a fresh warm-up before anyone gets it.
    assert err.value.details["reclaimed_leases"] == 1
    assert table.get(state.instance_key(abandoned["instance_id"]))["state"] == "WarmingUp"
    assert table.get(state.session_key(abandoned["session_id"]))["release_reason"] == "lease expired"
    assert abandoned["hostname"] + "." not in records_of(world)
