"""The one place where the agent builds AWS clients.

Region, endpoint and credentials come from the standard AWS environment
(``AWS_REGION``, ``AWS_ENDPOINT_URL``, profiles, the instance role) unless the
config sets them. Retries use botocore's ``standard`` mode (jittered backoff on
throttling, 5xx and connection errors) with a bounded number of attempts.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
import botocore.config

from ocap_agent import __version__
from ocap_agent.config import AwsConfig


def client_config(aws: AwsConfig, **overrides: Any) -> botocore.config.Config:
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": aws.max_attempts},
        "user_agent_extra": f"ocap-agent/{__version__}",
        "connect_timeout": 10,
        "read_timeout": 60,
    }
    options.update(overrides)
    return botocore.config.Config(**options)


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


def client(service: str, aws: AwsConfig | None = None, **overrides: Any) -> Any:
    """A boto3 client for SERVICE honouring the config's region/endpoint, if set."""
    aws = aws or AwsConfig()
    kwargs: dict[str, Any] = {"config": client_config(aws, **overrides)}
    if aws.region:
        kwargs["region_name"] = aws.region
    if aws.endpoint_url:
        kwargs["endpoint_url"] = aws.endpoint_url
    session: Any = _session()
    return session.client(service, **kwargs)
