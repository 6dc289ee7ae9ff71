"""``python -m bench.pool``: the warm pool and the broker against the seeds' ways, in one run.

    python -m bench.pool                  # 1,000-instance pool, 10 claims
    python -m bench.pool --size 200 --claims 5

Starts a private moto server, fills a pool of SIZE warm instances (as a
finished reconcile leaves them), then measures, alternating ours and the
baseline where it matters:

1. A no-change reconcile of the whole pool: ``ec2_instance_pool`` (run
   in-process: the module's own code, without Ansible's start-up) against a
   per-instance check, the way seed 003's scripts and seed 004's watchdog
   look at a fleet (one describe per instance, one state read per instance).
   Counted: AWS API calls and wall time.
2. Claim latency: ``ocap_agent.broker.claim`` (conditional lease, start,
   bounded polling for the address, UPSERT) against seed 003's Lambda (start
   the first stopped instance, sleep a fixed 15 s, read the address, UPSERT
   ``drone-<ip>``). moto starts instances at once, so ours measures the
   broker's own overhead; on AWS both add the real start time, and the
   baseline's 15 s is either too short (no address yet) or wasted.

Everything runs against one emulator on a shared machine: compare the ratios,
printed last, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from ocap_agent.broker import Broker, BrokerSettings, claim
from tests import stack
from tests.integration.pool import helpers

SEED_FIXED_WAIT_S = 15.0


def counting(clients: dict[str, Any]) -> Counter[str]:
    calls: Counter[str] = Counter()
    for service, client in clients.items():

        def count(model: Any, _service: str = service, **_: Any) -> None:
            calls[f"{_service}.{model.name}"] += 1

        client.meta.events.register("before-call", count)
    return calls


def per_instance_check(c: dict[str, Any], table: str, pool: str) -> None:
    """Baseline reconcile: list the pool, then look at every instance and its row one by one."""
    ids = []
    for page in (
        c["ec2"]
        .get_paginator("describe_instances")
        .paginate(Filters=[{"Name": "tag:Pool", "Values": [pool]}])
    ):
        ids += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
    for iid in ids:
        c["ec2"].describe_instances(InstanceIds=[iid])
        c["dynamodb"].get_item(TableName=table, Key={"pk": {"S": f"instance#{iid}"}})


def seed_claim(c: dict[str, Any], pool: str, zone: str, domain: str) -> dict[str, str]:
    """Seed 003's Lambda: first stopped instance, start, fixed sleep, address, UPSERT drone-<ip>."""
    resp = c["ec2"].describe_instances(
        Filters=[
            {"Name": "tag:Pool", "Values": [pool]},
            {"Name": "instance-state-name", "Values": ["stopped"]},
        ]
    )
    iid = resp["Reservations"][0]["Instances"][0]["InstanceId"]
    c["ec2"].start_instances(InstanceIds=[iid])
    time.sleep(SEED_FIXED_WAIT_S)
    inst = c["ec2"].describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    ip = inst["PublicIpAddress"]
    name = f"drone-{ip.replace('.', '-')}.{domain}"
    c["route53"].change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": ip}],
                    },
                }
            ]
        },
    )
    return {"instance_id": iid, "address": ip}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1000, help="warm instances in the pool (default 1000)")
    parser.add_argument("--claims", type=int, default=10, help="claims timed on our side (default 10)")
    parser.add_argument(
        "--baseline-claims", type=int, default=1, help="seed claims timed (15 s each; default 1)"
    )
    args = parser.parse_args(argv)
    u = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        server = stack.start_moto(Path(tmp) / "logs")
        try:
            # The module reads the endpoint and credentials from the environment.
            os.environ.update(stack.aws_env(server.endpoint))
            c = helpers.clients(server.endpoint)
            table = helpers.create_table(c["dynamodb"], f"bench-{u}")
            template = helpers.create_template(c["ec2"], f"bench-{u}")
            domain = f"bench-{u}.ocap.test"
            zone = helpers.create_zone(c["route53"], domain)
            pool = f"bench-{u}"
            t0 = time.perf_counter()
            helpers.fill_warm(c["ec2"], table, pool, template, args.size)
            print(
                f"filled a pool of {args.size} warm instances in {time.perf_counter() - t0:.1f}s", flush=True
            )

            # 1. no-change reconcile
            module_args = {
                "name": pool,
                "state_table": table.table,
                "launch_template_id": template,
                "warm_size": args.size,
                "max_size": args.size,
            }
            t0 = time.perf_counter()
            ours = helpers.call_module(module_args)
            ours_s = time.perf_counter() - t0
            if ours.get("failed") or ours["changed"]:
                raise SystemExit(f"the reconcile was expected to change nothing: {ours}")
            ours_calls = ours["api_calls"]
            calls = counting(c)
            t0 = time.perf_counter()
            per_instance_check(c, table.table, pool)
            base_s = time.perf_counter() - t0
            base_calls = sum(calls.values())
            print(
                f"no-change reconcile of {args.size}: ours {ours_calls['total']} calls in {ours_s:.2f}s "
                f"({', '.join(f'{k} {v}' for k, v in ours_calls.items() if k != 'total')}); "
                f"per-instance baseline {base_calls} calls in {base_s:.2f}s",
                flush=True,
            )

            # 2. claim latency
            broker = Broker(
                BrokerSettings(table=table.table, hosted_zone_id=zone, domain=domain),
                ec2=c["ec2"],
                ddb=c["dynamodb"],
                route53=c["route53"],
            )
            ours_lat = []
            for n in range(args.claims):
                t0 = time.perf_counter()
                claim(broker, pool, f"bench-{n}")
                ours_lat.append(time.perf_counter() - t0)
            base_lat = []
            for _ in range(args.baseline_claims):
                t0 = time.perf_counter()
                seed_claim(c, pool, zone, domain)
                base_lat.append(time.perf_counter() - t0)
            ours_med, base_med = statistics.median(ours_lat), statistics.median(base_lat)
            print(
                f"claim latency: ours median {ours_med * 1000:.0f} ms (n={len(ours_lat)}, "
                f"max {max(ours_lat) * 1000:.0f} ms); seed 003 median {base_med:.2f}s (n={len(base_lat)})"
            )
        finally:
            server.stop()
    print("\n== ratios (ours / baseline; lower is better)")
    print(
        f"reconcile API calls     {ours_calls['total']}/{base_calls} = {ours_calls['total'] / base_calls:.4f}"
    )
    print(f"reconcile wall time     {ours_s:.2f}/{base_s:.2f} = {ours_s / base_s:.3f}")
    print(f"claim latency (median)  {ours_med:.3f}/{base_med:.3f} = {ours_med / base_med:.4f}")
    target = "met" if ours_calls["total"] <= 15 else "NOT met"
    print(f"target <= 15 calls for a no-change reconcile of {args.size}: {target} ({ours_calls['total']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
