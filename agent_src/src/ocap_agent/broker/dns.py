"""Route53 records of claimed workstations: one A record per instance, named after it.

``ws-<instance id without "i-">.<domain>``: the name belongs to the instance,
not to its address, so records never pile up as addresses change (seed 003's
``drone-<ip>`` did), and a record is deleted by exact match (name, type, TTL,
value), so a release never removes a record someone else changed meanwhile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})+\.?$")
# ChangeResourceRecordSets takes at most 1,000 changes per call.
MAX_CHANGES = 1000


def valid_domain(domain: str) -> bool:
    return bool(DOMAIN_RE.match(domain.lower()))


def record_name(prefix: str, instance_id: str, domain: str) -> str:
    return f"{prefix}{instance_id.removeprefix('i-')}.{domain.rstrip('.')}".lower()


def instance_of(name: str, prefix: str, domain: str) -> str | None:
    """The instance id a record NAME belongs to, or None for records that are not ours."""
    match = re.fullmatch(
        rf"{re.escape(prefix)}([0-9a-f]{{8,17}})\.{re.escape(domain.rstrip('.'))}\.?", name.lower()
    )
    return f"i-{match.group(1)}" if match else None


def zone_domain(route53: Any, zone_id: str) -> str:
    return str(route53.get_hosted_zone(Id=zone_id)["HostedZone"]["Name"]).rstrip(".").lower()


def _record(name: str, address: str, ttl: int) -> dict[str, Any]:
    return {"Name": name, "Type": "A", "TTL": ttl, "ResourceRecords": [{"Value": address}]}


def upsert(route53: Any, zone_id: str, name: str, address: str, ttl: int) -> None:
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": "ocap-broker claim",
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": _record(name, address, ttl)}],
        },
    )


def _is_missing_or_changed(exc: Exception) -> bool:
    """Route53's answer to a DELETE whose record is absent or no longer matches exactly."""
    error = getattr(exc, "response", {}).get("Error", {})
    return error.get("Code") == "InvalidChangeBatch" and (
        "not found" in error.get("Message", "") or "do not match" in error.get("Message", "")
    )


def delete_exact(route53: Any, zone_id: str, name: str, address: str, ttl: int) -> str:
    """Delete exactly this record; 'deleted', or 'absent' when it is gone or was changed by someone else."""
    try:
        route53.change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Comment": "ocap-broker release",
                "Changes": [{"Action": "DELETE", "ResourceRecordSet": _record(name, address, ttl)}],
            },
        )
    except Exception as exc:
        if _is_missing_or_changed(exc):
            return "absent"
        raise
    return "deleted"


def our_records(
    route53: Any, zone_id: str, prefix: str, domain: str
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every A record of the zone named after an instance: name -> (instance id, record set)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for page in route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rrset in page.get("ResourceRecordSets", []):
            if rrset.get("Type") != "A" or "ResourceRecords" not in rrset:
                continue
            instance_id = instance_of(rrset["Name"], prefix, domain)
            if instance_id:
                out[rrset["Name"]] = (instance_id, rrset)
    return out


def delete_records(route53: Any, zone_id: str, records: Iterable[dict[str, Any]]) -> list[str]:
    """Delete RECORDS exactly as listed, 1,000 per call; returns the names deleted.

    A batch is all-or-nothing in Route53: if one record changed since it was
    listed, that batch is retried record by record and the changed one is kept.
    """
    records = list(records)
    deleted: list[str] = []
    for start in range(0, len(records), MAX_CHANGES):
        batch = records[start : start + MAX_CHANGES]
        changes = [{"Action": "DELETE", "ResourceRecordSet": _clean(r)} for r in batch]
        try:
            route53.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Comment": "ocap-broker prune", "Changes": changes}
            )
            deleted.extend(r["Name"] for r in batch)
        except Exception as exc:
            if not _is_missing_or_changed(exc) or len(batch) == 1:
                if _is_missing_or_changed(exc):
                    continue
                raise
            for r in batch:
                deleted.extend(delete_records(route53, zone_id, [r]))
    return deleted


def _clean(rrset: dict[str, Any]) -> dict[str, Any]:
    return {k: rrset[k] for k in ("Name", "Type", "TTL", "ResourceRecords") if k in rrset}
