#!/usr/bin/python
"""Ansible module ec2_instance_pool: reconcile a warm pool of stopped EC2 instances."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_instance_pool
short_description: Keep a named pool of warmed-up, stopped EC2 instances at its desired size
version_added: "1.0.0"
description:
  - Reconciles a pool of workstations launched from one launch template to the desired state, idempotently.
  - New instances are launched from the template and tagged C(Pool) and C(Version); each gets a row in the
    state table (WarmingUp). The agent inside the instance (C(ocap-agent warmup)) marks the row Healthy; the
    module then stops the instance and marks it warm. Only Healthy, stopped, warm instances can be claimed by
    the session broker (C(ocap-broker claim)).
  - Instances whose warm-up fails or times out are terminated and replaced. Instances returned by the broker
    after a session (WarmingUp and stopped) are started again for a fresh warm-up.
  - Instances on another launch template version are replaced in rolling batches, only while idle. An instance
    that a user holds (Claimed or InUse, or with an open lease) is never stopped, started or terminated.
  - The pool size follows either a fixed number of idle instances (O(warm_size)) or a busy-ratio rule with
    minimum, maximum and step limits (O(min_size), O(max_size), O(target_busy), O(step_min), O(step_max)).
    Claims that found no capacity (recorded by the broker) count as busy instances, so the pool scales out.
  - Reads cost pages, not instances - one describe of the tagged instances and one query of the table for a
    no-change run; starts, stops and terminations are batched. The calls made are returned in RV(api_calls).
  - Runs on the controller, where the C(ocap-agent) package (the state table definition) is installed.
author:
  - ocap-workstations maintainers
options:
  name:
    description: Name of the pool; the value of the C(Pool) tag and of the rows' C(pool) attribute.
    type: str
    required: true
  state_table:
    description: Name of the DynamoDB state table (defined in C(ocap_agent.state)).
    type: str
    required: true
  state:
    description:
      - V(present) reconciles the pool to its desired size.
      - V(absent) removes the pool - every idle instance is terminated (its row retired first, so a
        concurrent claim wins or the termination does, never both) and the unserved demand count is reset.
        Busy instances keep running until their sessions end; run again then to remove them (the result
        lists them in RV(pool.counts)).
      - With V(absent), no launch template or size option is needed.
    type: str
    choices: [present, absent]
    default: present
  launch_template_id:
    description: ID of the launch template instances are launched from.
    type: str
  launch_template_name:
    description: Name of the launch template instances are launched from.
    type: str
  template_version:
    description:
      - Launch template version the pool should run. C(latest), C(default) (or C($Latest), C($Default)) or a
        version number. Resolved to a number once per run.
    type: str
    default: latest
  warm_size:
    description:
      - Fixed mode. Number of idle (warm or warming) instances to keep beside the busy ones.
      - Mutually exclusive with O(min_size) and O(target_busy).
    type: int
  min_size:
    description: Ratio mode. Smallest total size of the pool (busy and idle).
    type: int
  max_size:
    description: Largest total size of the pool, in either mode.
    type: int
    default: 1000
  target_busy:
    description: Ratio mode. Busy share of the pool to aim for (0 < ratio <= 1); seed value 0.6.
    type: float
  step_min:
    description: Ratio mode. Smallest change of size; smaller excesses are kept so the pool does not flap.
    type: int
    default: 1
  step_max:
    description: Ratio mode. Largest change of size in one run.
    type: int
    default: 100
  subnet_ids:
    description: Subnets (one per Availability Zone) to spread new instances over; empty uses the template's.
    type: list
    elements: str
    default: []
  max_replacements:
    description: Most outdated idle instances replaced in one run.
    type: int
    default: 10
  replace_batch_size:
    description: Outdated instances replaced per rolling batch; the next batch starts once this one is warm.
    type: int
    default: 5
  warmup_timeout:
    description: Seconds to wait for launched or restarted instances to report Healthy; later ones fail.
    type: int
    default: 900
  scale_in_cooldown:
    description:
      - Seconds after an instance's last start during which scale-in leaves it alone (like an Auto Scaling
        group's cooldown). Capacity a burst of unserved claims just added is not removed by the next run,
        which no longer sees that demand; an instance a session just gave back is kept for a while too.
      - Failed, orphaned and outdated instances are replaced regardless. V(0) turns the cooldown off.
      - The instances kept this way are listed in RV(pool.cooling).
    type: int
    default: 600
  poll_interval:
    description: Longest interval, in seconds, between two reads of the state table while waiting.
    type: float
    default: 10
  wait:
    description:
      - Wait for warm-ups and stop the warmed-up instances in this run. With C(false), instances are launched
        or started and the next run finishes their warm-up.
    type: bool
    default: true
  tags:
    description: Extra tags for launched instances (C(Pool), C(Version) and C(Name) are set by the module).
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    description: Reads the pool and reports what would change; changes nothing.
  diff_mode:
    support: full
    description: Counts of instances per situation and per template version, before and after.
  platform:
    platforms: aws
    description: Talks to the EC2 and DynamoDB APIs from the controller.
notes:
  - Situations of an instance, as reported in RV(pool.counts) and the diff - C(busy) (Claimed or InUse),
    C(warm) (Healthy, stopped, claimable), C(ready) (Healthy, not yet stopped), C(warming) (waiting for
    the agent's warm-up), C(cold) (returned from a session, stopped, needs a fresh warm-up),
    C(failed) (Unhealthy), C(orphan) (tagged for the pool but without a claimable row).
"""

EXAMPLES = r"""
- name: Keep ten warm workstations on the latest template version
  ec2_instance_pool:
    name: recording
    state_table: ocap-workstations-dev-state
    launch_template_name: ocap-workstation
    template_version: latest
    warm_size: 10
    subnet_ids: [subnet-0a1b2c3d, subnet-4e5f6a7b]

- name: Scale with the busy share, as the predecessor did (50..1000, 60 %, steps of 5..100)
  ec2_instance_pool:
    name: recording
    state_table: ocap-workstations-dev-state
    launch_template_id: lt-0123456789abcdef0
    min_size: 50
    max_size: 1000
    target_busy: 0.6
    step_min: 5
    step_max: 100
    max_replacements: 20
    replace_batch_size: 10

- name: Remove a pool (instances in use stay until their sessions end)
  ec2_instance_pool:
    name: recording
    state_table: ocap-workstations-dev-state
    state: absent

- name: What would a reconcile change? (run the play with --check --diff)
  ec2_instance_pool:
    name: recording
    state_table: ocap-workstations-dev-state
    launch_template_name: ocap-workstation
    warm_size: 10
  check_mode: true
  register: __pool_plan
"""

RETURN = r"""
pool:
  description: The pool after the run (predicted in check mode).
  returned: always
  type: dict
  contains:
    name:
      description: Pool name.
      type: str
      sample: recording
    launch_template_id:
      description: Launch template the pool runs.
      type: str
      sample: lt-0123456789abcdef0
    template_version:
      description: Resolved launch template version number.
      type: int
      sample: 7
    desired:
      description: Total size (busy and idle) the scaling rule asked for in the last round.
      type: int
      sample: 12
    counts:
      description: Instances per situation and per template version.
      type: dict
      sample: {"states": {"busy": 2, "warm": 10}, "versions": {"7": 12}}
    unserved_demand:
      description: Claims that found no capacity and were counted into this run's scaling.
      type: int
      sample: 0
    cooling:
      description:
        - Idle instances above the desired size, kept because they started within O(scale_in_cooldown).
      type: list
      elements: str
      sample: ["i-0123456789abcdef0"]
instances:
  description: The pool's table, one entry per instance, sorted by id.
  returned: always
  type: list
  elements: dict
  sample:
    - {"instance_id": "i-0abc", "situation": "warm", "state": "Healthy", "ec2_state": "stopped", "version": 7}
actions:
  description: What the run did (or, in check mode, would do in its first round).
  returned: always
  type: dict
  contains:
    launched:
      description: Instance ids launched (in check mode, the number to launch).
      type: raw
    terminated:
      description: Instance id to the reason it was terminated.
      type: dict
    started:
      description: Instances started for a fresh warm-up.
      type: list
    stopped:
      description: Instances stopped after a successful warm-up.
      type: list
    failed_warmups:
      description: Instances whose warm-up failed or timed out in this run.
      type: list
    rows_retired:
      description: Rows whose instance no longer exists.
      type: list
api_calls:
  description: AWS API calls made by this run, per operation, and their total.
  returned: always
  type: dict
  sample: {"ec2.DescribeInstances": 1, "ec2.DescribeLaunchTemplateVersions": 1, "dynamodb.Query": 1,
           "dynamodb.GetItem": 1, "total": 4}
rounds:
  description: Reconcile rounds run (plan, act, wait); a settled pool needs one.
  returned: always
  type: int
  sample: 1
"""

import datetime as dt
import math
import time
from collections import Counter
from typing import Any

from ansible.module_utils.ocap_pool import (
    Member,
    Plan,
    Scaling,
    classify,
    counts,
    plan,
    plan_removal,
    predict,
)
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # AnsibleAWSModule reports the missing SDK
    BotoCoreError = ClientError = Exception  # type: ignore[misc,assignment]

try:
    from ocap_agent import state
    from ocap_agent.broker import rows

    HAS_OCAP = True
except ImportError:
    HAS_OCAP = False

LIVE_FILTER = {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
# EC2 takes up to 1,000 ids in one start/stop/terminate call; waiters and
# describe calls are given 200 at a time (the filter value limit).
ACTION_BATCH = 1000
DESCRIBE_BATCH = 200
# An instance tagged for the pool but without a row is only an orphan once it
# is older than this: a concurrent run may be between launch and row creation.
ORPHAN_GRACE = dt.timedelta(minutes=10)


class PoolError(Exception):
    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class Pool:
    """Observe, act and wait for one pool. Every AWS call goes through here; run() catches errors."""

    def __init__(self, module: Any) -> None:
        self.module = module
        p = module.params
        self.name: str = p["name"]
        self.calls: Counter[str] = Counter()
        self.ec2 = self._counted(module.client("ec2"), "ec2")
        ddb = self._counted(module.client("dynamodb"), "dynamodb")
        self.table = state.StateTable(ddb, p["state_table"])
        self.actions: dict[str, Any] = {
            "launched": [],
            "terminated": {},
            "started": [],
            "stopped": [],
            "failed_warmups": [],
            "rows_retired": [],
        }
        self.template_id = ""
        self.version = 0
        self.template_tags: dict[str, str] = {}

    def _counted(self, client: Any, service: str) -> Any:
        def count(model: Any, **_: Any) -> None:
            self.calls[f"{service}.{model.name}"] += 1

        client.meta.events.register("before-call", count)
        return client

    # -- observe ---------------------------------------------------------------
    def resolve_template(self) -> None:
        p = self.module.params
        raw = str(p["template_version"]).strip()
        aliases = {"latest": "$Latest", "$latest": "$Latest", "default": "$Default", "$default": "$Default"}
        version = aliases.get(raw.lower(), raw)
        if version not in ("$Latest", "$Default") and not (version.isdigit() and int(version) > 0):
            raise PoolError(
                f"template_version: expected 'latest', 'default' or a version number, got {raw!r}"
            )
        ident = (
            {"LaunchTemplateId": p["launch_template_id"]}
            if p["launch_template_id"]
            else {"LaunchTemplateName": p["launch_template_name"]}
        )
        try:
            found = self.ec2.describe_launch_template_versions(Versions=[version], **ident)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if "NotFound" in code or "Malformed" in code:
                raise PoolError(
                    f"launch template {next(iter(ident.values()))!r} version {raw!r} not found: {code}"
                ) from None
            raise
        versions = found.get("LaunchTemplateVersions", [])
        if not versions:
            raise PoolError(f"launch template {next(iter(ident.values()))!r} has no version {raw!r}")
        v = versions[0]
        self.template_id = v["LaunchTemplateId"]
        self.version = int(v["VersionNumber"])
        # RunInstances' own tag specification replaces the template's for
        # instances: carry the template's instance tags over explicitly.
        for spec in v.get("LaunchTemplateData", {}).get("TagSpecifications", []):
            if spec.get("ResourceType") == "instance":
                self.template_tags.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})

    def observe(self) -> tuple[list[Member], dict[str, dict[str, Any]]]:
        table_rows = {rows.instance_id_of(r): r for r in rows.pool_instances(self.table, self.name)}
        instances: dict[str, dict[str, Any]] = {}
        for page in self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag:Pool", "Values": [self.name]}, LIVE_FILTER],
            PaginationConfig={"PageSize": 1000},
        ):
            for r in page.get("Reservations", []):
                for inst in r.get("Instances", []):
                    instances[inst["InstanceId"]] = inst
        now = dt.datetime.now(dt.UTC)
        members = []
        for iid in sorted(set(table_rows) | set(instances)):
            row = table_rows.get(iid)
            inst = instances.get(iid)
            tags = {t["Key"]: t.get("Value", "") for t in (inst or {}).get("Tags", [])}
            version_tag = tags.get("Version") or (row or {}).get("template_version")
            row_state = row.get("state") if row else None
            if row and row_state not in ("Claimed", "InUse") and row.get("session_id"):
                # An open lease (e.g. the agent marked it Unhealthy mid-session):
                # the release will hand it back; until then it is busy.
                row_state = "Claimed"
            launched = (inst or {}).get("LaunchTime")  # the last start, for a stopped-and-started one
            started_at = launched if isinstance(launched, dt.datetime) else None
            if row is None and started_at is not None and now - started_at < ORPHAN_GRACE:
                row_state = "Provisioning"  # being launched by a concurrent run: leave it alone
            members.append(
                Member(
                    instance_id=iid,
                    state=row_state,
                    ec2_state=inst["State"]["Name"] if inst else None,
                    version=int(str(version_tag)) if str(version_tag or "").isdigit() else None,
                    template_id=tags.get("aws:ec2launchtemplate:id") or (row or {}).get("template_id"),
                    warm=bool(row and rows.WARM_ATTR in row),
                    subnet_id=(inst or {}).get("SubnetId"),
                    started_at=started_at,
                )
            )
        return members, table_rows

    def scaling(self) -> Scaling:
        p = self.module.params
        s = Scaling(
            min_size=p["min_size"] or 0,
            max_size=p["max_size"],
            target_busy=p["target_busy"] if p["target_busy"] is not None else 0.6,
            step_min=p["step_min"],
            step_max=p["step_max"],
            warm_size=p["warm_size"],
        )
        errors = s.validate()
        for opt in ("max_replacements", "replace_batch_size", "warmup_timeout"):
            if p[opt] < (0 if opt == "max_replacements" else 1):
                errors.append(f"{opt}: expected a positive integer, got {p[opt]}")
        if p["scale_in_cooldown"] < 0:
            errors.append(
                f"scale_in_cooldown: expected a number of seconds >= 0, got {p['scale_in_cooldown']}"
            )
        if p["poll_interval"] <= 0:
            errors.append(f"poll_interval: expected a positive number of seconds, got {p['poll_interval']}")
        if errors:
            raise PoolError("; ".join(errors))
        return s

    # -- act -------------------------------------------------------------------
    def retire(self, instance_id: str, reason: str, expect: set[Any]) -> bool:
        """Take an idle row out of the pool before terminating; False if a claim won it meanwhile."""
        try:
            self.table.transition(
                state.instance_key(instance_id),
                state.InstanceState.RETIRED,
                expect=expect,
                condition="attribute_not_exists(session_id)",
                remove=(state.POOL_ATTR, rows.WARM_ATTR),  # retired rows leave the pool index
                retired_from=self.name,
                reason=reason[:500],
            )
        except state.TransitionConflict:
            return False
        return True

    def terminate(self, doomed: dict[str, str], members: dict[str, Member]) -> None:
        idle = {state.InstanceState(s) for s in ("Provisioning", "WarmingUp", "Healthy", "Unhealthy")}
        go = []
        for iid, reason in sorted(doomed.items()):
            m = members[iid]
            if m.state is None or m.state == "Retired" or self.retire(iid, reason, idle):
                go.append(iid)
                self.actions["terminated"][iid] = reason
        for start in range(0, len(go), ACTION_BATCH):
            self.ec2.terminate_instances(InstanceIds=go[start : start + ACTION_BATCH])

    def launch(self, p: Plan) -> list[str]:
        extra = self.module.params["tags"] or {}
        tags = {
            **self.template_tags,
            **{str(k): str(v) for k, v in extra.items()},
            "Pool": self.name,
            "Version": str(self.version),
            "Name": f"{self.name}-v{self.version}",
        }
        by_subnet = Counter(p.launch_subnets)
        launched: list[str] = []
        for subnet, count in sorted(by_subnet.items(), key=lambda kv: kv[0] or ""):
            params: dict[str, Any] = {
                "LaunchTemplate": {"LaunchTemplateId": self.template_id, "Version": str(self.version)},
                "MinCount": count,
                "MaxCount": count,
                "TagSpecifications": [
                    {
                        "ResourceType": "instance",
                        "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
                    }
                ],
            }
            if subnet:
                params["SubnetId"] = subnet
            try:
                resp = self.ec2.run_instances(**params)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "InsufficientInstanceCapacity" or count == 1:
                    raise
                # Not enough capacity for all of them: take what there is; the
                # next round (or run) launches the rest, maybe in another subnet.
                resp = self.ec2.run_instances(**{**params, "MinCount": 1})
            ids = [i["InstanceId"] for i in resp.get("Instances", [])]
            rows.create_instance_rows(
                self.table,
                (
                    {
                        state.PK: state.instance_key(iid),
                        "state": state.InstanceState.WARMING_UP,
                        state.POOL_ATTR: self.name,
                        "template_id": self.template_id,
                        "template_version": self.version,
                    }
                    for iid in ids
                ),
            )
            launched.extend(ids)
        self.actions["launched"].extend(launched)
        return launched

    def start(self, ids: list[str]) -> None:
        for start in range(0, len(ids), ACTION_BATCH):
            self.ec2.start_instances(InstanceIds=ids[start : start + ACTION_BATCH])
        self.actions["started"].extend(ids)

    def stop_and_mark_warm(self, stop: list[str], already_stopped: list[str]) -> None:
        for start in range(0, len(stop), ACTION_BATCH):
            self.ec2.stop_instances(InstanceIds=stop[start : start + ACTION_BATCH])
        if stop:
            # A claim starts the instance at once: it must be fully stopped
            # before it is offered, or the start would fail.
            waiter = self.ec2.get_waiter("instance_stopped")
            delay = max(1, min(int(self.module.params["poll_interval"]), 15))
            for start in range(0, len(stop), DESCRIBE_BATCH):
                waiter.wait(
                    InstanceIds=stop[start : start + DESCRIBE_BATCH],
                    WaiterConfig={"Delay": delay, "MaxAttempts": max(1, 600 // delay)},
                )
            self.actions["stopped"].extend(stop)
        for iid in [*stop, *already_stopped]:
            # False: it left Healthy meanwhile (the agent found a fault), so it is not offered.
            rows.mark_warm(self.table, iid)

    def retire_rows(self, ids: list[str]) -> None:
        every = set(state.InstanceState) - {state.InstanceState.RETIRED}
        for iid in ids:
            try:
                self.table.transition(
                    state.instance_key(iid),
                    state.InstanceState.RETIRED,
                    expect=every,
                    remove=(state.POOL_ATTR, rows.WARM_ATTR),
                    retired_from=self.name,
                    reason="instance no longer exists",
                )
                self.actions["rows_retired"].append(iid)
            except state.TransitionConflict:
                continue

    def wait_warm(self, ids: list[str]) -> None:
        """Poll the table (one query per poll, growing interval) until IDS leave warm-up, or time out."""
        params = self.module.params
        pending = set(ids)
        deadline = time.monotonic() + params["warmup_timeout"]
        delay = 0.2
        warming = (state.InstanceState.PROVISIONING, state.InstanceState.WARMING_UP)
        watched = (*warming, state.InstanceState.UNHEALTHY)
        while pending:
            seen = rows.pool_instances(self.table, self.name, watched)
            now = {rows.instance_id_of(r): r["state"] for r in seen}
            self.actions["failed_warmups"].extend(
                sorted(i for i in pending if now.get(i) == state.InstanceState.UNHEALTHY.value)
            )
            pending = {i for i in pending if now.get(i) in ("Provisioning", "WarmingUp")}
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(delay, left))
            delay = min(delay * 1.5, params["poll_interval"])
        for iid in sorted(pending):
            try:
                self.table.transition(
                    state.instance_key(iid),
                    state.InstanceState.UNHEALTHY,
                    expect=set(warming),
                    reason=f"warm-up did not finish within {params['warmup_timeout']}s",
                )
                self.actions["failed_warmups"].append(iid)
            except state.TransitionConflict:
                continue  # it finished just now

    # -- the run -----------------------------------------------------------------
    def remove(self) -> dict[str, Any]:
        """state=absent: terminate the idle instances and reset the demand count; busy ones stay."""
        members, _ = self.observe()
        demand = rows.read_demand(self.table, self.name)
        before = counts(members)
        removal = plan_removal(members)
        changed = not removal.empty or demand > 0
        if self.module.check_mode:
            self.actions.update(terminated=dict(removal.terminate), rows_retired=removal.retire_rows)
        else:
            self.retire_rows(removal.retire_rows)
            self.terminate(removal.terminate, {m.instance_id: m for m in members})
            if demand:
                rows.consume_demand(self.table, self.name, demand)
        # Whatever a concurrent claim won (not terminated) is still there, now busy.
        gone = {*self.actions["terminated"], *self.actions["rows_retired"]}
        after_members = [m for m in members if m.instance_id not in gone]
        busy = [m.instance_id for m in after_members if classify(m) != "gone"]
        if busy:
            self.module.warn(
                f"pool {self.name}: {len(busy)} instance(s) still running ({', '.join(busy[:10])}): "
                "in use or claimed meanwhile; run again once their sessions end"
            )
        return self.result(changed, before, after_members, desired=0, demand=0, rounds=1)

    def run(self) -> dict[str, Any]:
        params = self.module.params
        if params["state"] == "absent":
            return self.remove()
        scaling = self.scaling()
        self.resolve_template()
        members, _ = self.observe()
        demand = rows.read_demand(self.table, self.name)
        before = counts(members)
        budget = params["max_replacements"]
        batch = params["replace_batch_size"]
        max_rounds = 4 + math.ceil(budget / batch)
        changed = False
        consumed = False
        rounds = 0
        last = Plan()
        after_members = members
        for _ in range(max_rounds):
            rounds += 1
            last = plan(
                members,
                template_id=self.template_id,
                version=self.version,
                scaling=scaling,
                demand=demand,
                replace_budget=min(batch, budget),
                subnets=params["subnet_ids"],
                now=dt.datetime.now(dt.UTC),
                scale_in_cooldown_s=params["scale_in_cooldown"],
            )
            if self.module.check_mode:
                # Instances still warming up would be stopped and offered by a real run.
                if not last.empty or (last.waiting and params["wait"]):
                    changed = True
                    after_members = predict(members, last, self.version, self.template_id)
                    self.actions.update(
                        launched=last.launch,
                        terminated=dict(last.terminate),
                        started=last.start,
                        stopped=last.stop,
                        rows_retired=last.retire_rows,
                    )
                break
            if last.empty and not (last.waiting and params["wait"]):
                break
            if not last.empty:
                changed = True
            by_id = {m.instance_id: m for m in members}
            self.retire_rows(last.retire_rows)
            self.terminate(last.terminate, by_id)
            budget -= last.replaced_outdated
            launched = self.launch(last) if last.launch else []
            if launched and demand and not consumed:
                # The count is subtracted once; the run keeps planning with it, or
                # its next round would scale the new capacity straight back in.
                rows.consume_demand(self.table, self.name, demand)
                consumed = True
            if last.start:
                self.start(last.start)
            self.stop_and_mark_warm(last.stop, last.mark_warm)
            to_wait = [*launched, *last.start, *last.waiting]
            if not params["wait"]:
                members, _ = self.observe()
                break
            if to_wait:
                self.wait_warm(to_wait)
            members, _ = self.observe()
            after_members = members
        else:
            self.module.warn(
                f"pool {self.name} did not settle within {max_rounds} rounds; the next run continues"
            )
        if not self.module.check_mode:
            after_members = members
        return self.result(
            changed,
            before,
            after_members,
            desired=last.desired,
            demand=demand,
            rounds=rounds,
            cooling=last.cooling,
        )

    def result(
        self,
        changed: bool,
        before: dict[str, dict[str, int]],
        after_members: list[Member],
        *,
        desired: int,
        demand: int,
        rounds: int,
        cooling: list[str] | None = None,
    ) -> dict[str, Any]:
        """The module's result (see RETURN) for the pool as AFTER_MEMBERS describe it."""
        after = counts(after_members)
        calls = dict(sorted(self.calls.items()))
        calls["total"] = sum(self.calls.values())
        return {
            "changed": changed,
            "pool": {
                "name": self.name,
                "launch_template_id": self.template_id,
                "template_version": self.version,
                "desired": desired,
                "counts": after,
                "unserved_demand": demand,
                "cooling": sorted(cooling or []),
            },
            "instances": [
                {
                    "instance_id": m.instance_id,
                    "situation": classify(m),
                    "state": m.state,
                    "ec2_state": m.ec2_state,
                    "version": m.version,
                    "subnet_id": m.subnet_id,
                }
                for m in after_members
                if classify(m) != "gone"
            ],
            "actions": self.actions,
            "api_calls": calls,
            "rounds": rounds,
            "diff": {"before": before, "after": after},
        }


def main() -> None:
    argument_spec = dict(
        name=dict(type="str", required=True),
        state_table=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        launch_template_id=dict(type="str"),
        launch_template_name=dict(type="str"),
        template_version=dict(type="str", default="latest"),
        warm_size=dict(type="int"),
        min_size=dict(type="int"),
        max_size=dict(type="int", default=1000),
        target_busy=dict(type="float"),
        step_min=dict(type="int", default=1),
        step_max=dict(type="int", default=100),
        subnet_ids=dict(type="list", elements="str", default=[]),
        max_replacements=dict(type="int", default=10),
        replace_batch_size=dict(type="int", default=5),
        warmup_timeout=dict(type="int", default=900),
        scale_in_cooldown=dict(type="int", default=600),
        poll_interval=dict(type="float", default=10),
        wait=dict(type="bool", default=True),
        tags=dict(type="dict", default={}),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[
            ["launch_template_id", "launch_template_name"],
            ["warm_size", "min_size"],
            ["warm_size", "target_busy"],
        ],
        required_if=[
            ["state", "present", ["launch_template_id", "launch_template_name"], True],
            ["state", "present", ["warm_size", "min_size"], True],
        ],
    )
    if not HAS_OCAP:
        module.fail_json(
            msg="the ocap-agent package (ocap_agent) must be installed beside Ansible on the controller"
        )
    pool = Pool(module)
    try:
        result = pool.run()
    except PoolError as exc:
        module.fail_json(msg=exc.msg, api_calls=dict(pool.calls), **exc.details)
    except (ClientError, BotoCoreError) as exc:
        module.fail_json_aws(
            exc, msg=f"reconciling pool {module.params['name']} failed", actions=pool.actions
        )
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
