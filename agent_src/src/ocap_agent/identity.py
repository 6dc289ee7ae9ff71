"""Who and where the agent is: instance id, user, image version.

Config values win; empty ones are filled at run time: the instance id from the
instance metadata service (IMDSv2: a session token first, as the launch
template requires), the user from the login name, the image version from the
agent's own version (the repository's one VERSION file feeds both).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from ocap_agent import __version__
from ocap_agent.config import ConfigError, InstanceConfig

IMDS_ENDPOINT = "http://169.254.169.254"
# botocore's own variables, so one setting steers both the agent and boto3.
ENV_IMDS_ENDPOINT = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
ENV_IMDS_DISABLED = "AWS_EC2_METADATA_DISABLED"
TOKEN_TTL_S = 60


@dataclass(frozen=True)
class Identity:
    instance_id: str
    user: str
    image_version: str
    pool: str


def imds_instance_id(endpoint: str | None = None, timeout_s: float = 2.0) -> str:
    """The instance id from IMDSv2; raises ConfigError naming the config key to set instead."""
    if os.environ.get(ENV_IMDS_DISABLED, "").lower() == "true":
        raise ConfigError(
            f"instance.instance_id: empty and the instance metadata service is disabled ({ENV_IMDS_DISABLED})"
        )
    # Imported here: urllib.request costs every ``session start`` a tenth of a
    # second, and the instance id is usually in the config.
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    base = (endpoint or os.environ.get(ENV_IMDS_ENDPOINT) or IMDS_ENDPOINT).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigError(f"{ENV_IMDS_ENDPOINT}: expected an http(s) URL, got {base!r}")
    try:
        token_req = urllib.request.Request(  # noqa: S310 - the base is http(s) by construction
            f"{base}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)},
        )
        with urllib.request.urlopen(token_req, timeout=timeout_s) as resp:  # noqa: S310 - http only
            token = str(resp.read().decode())
        id_req = urllib.request.Request(  # noqa: S310
            f"{base}/latest/meta-data/instance-id", headers={"X-aws-ec2-metadata-token": token}
        )
        with urllib.request.urlopen(id_req, timeout=timeout_s) as resp:  # noqa: S310
            instance_id = str(resp.read().decode()).strip()
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(
            f"instance.instance_id: empty and the instance metadata service at {base} did not answer ({exc})"
        ) from None
    if not instance_id.startswith("i-"):
        raise ConfigError(f"instance.instance_id: metadata service returned {instance_id!r}, not an id")
    return instance_id


def resolve(cfg: InstanceConfig) -> Identity:
    return Identity(
        instance_id=cfg.instance_id or imds_instance_id(),
        user=cfg.user or getpass.getuser(),
        image_version=cfg.image_version or __version__,
        pool=cfg.pool,
    )
