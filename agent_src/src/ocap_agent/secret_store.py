"""Read one value from SSM Parameter Store (SecureString) or Secrets Manager.

The certificate bundle (``certs sync``) and the kiosk user's password
(``kiosk sync``) are both read this way at spin-up, with a short timeout: an
unreachable store must not hold a booting instance for long.
"""

from __future__ import annotations

from ocap_agent import aws
from ocap_agent.config import AwsConfig


class StoreUnavailableError(RuntimeError):
    """The store could not be reached or refused the read (network, permissions, throttling)."""


def fetch(store: str, name: str, aws_cfg: AwsConfig, timeout_s: float) -> str | None:
    """The stored value, or None when the store has no such parameter/secret.

    STORE is one of ``config.SECRET_STORES``, already checked by the config.
    """
    import botocore.exceptions  # noqa: PLC0415 - boto is only needed when a store is read

    overrides = {"connect_timeout": timeout_s, "read_timeout": timeout_s}
    try:
        if store == "ssm":
            ssm = aws.client("ssm", aws_cfg, **overrides)
            try:
                resp = ssm.get_parameter(Name=name, WithDecryption=True)
            except ssm.exceptions.ParameterNotFound:
                return None
            return str(resp["Parameter"]["Value"])
        sm = aws.client("secretsmanager", aws_cfg, **overrides)
        try:
            resp = sm.get_secret_value(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            return None
        return str(resp.get("SecretString") or "")
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise StoreUnavailableError(f"{store} {name}: {exc}") from exc
