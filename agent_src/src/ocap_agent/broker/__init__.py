"""The session broker: claim, release, prune and status over the state table.

``ocap-broker`` (:mod:`ocap_agent.broker_cli`) and the Lambda handler
(:mod:`ocap_agent.broker.lambda_handler`) wrap the same plain functions.
"""

from ocap_agent.broker.core import (
    Broker,
    BrokerError,
    BrokerSettings,
    InvalidInput,
    NoCapacity,
    SessionBusy,
    StartFailed,
    UnknownSession,
    claim,
    prune,
    reclaim_expired,
    release,
    render_table,
    status,
)

__all__ = [
    "Broker",
    "BrokerError",
    "BrokerSettings",
    "InvalidInput",
    "NoCapacity",
    "SessionBusy",
    "StartFailed",
    "UnknownSession",
    "claim",
    "prune",
    "reclaim_expired",
    "release",
    "render_table",
    "status",
]
