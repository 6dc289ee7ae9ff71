"""Small AWS functions shared by this project's modules (imported as ``ansible.module_utils.ocap_aws``).

Every module builds on amazon.aws' ``AnsibleAWSModule`` (region, credentials,
``endpoint_url`` and retries come from there); this file only adds what several
modules repeat:

- ``aws_client(module, service)`` / ``ec2_client(module)``: a client whose calls
  retry throttling when passed ``aws_retry=True``.
- ``tag_list`` / ``tag_dict`` / ``tag_filters``: conversions between Ansible dicts
  and the EC2 tag shapes.
- ``paginate(client, operation, key, **params)``: every page of a describe call.
- ``chunks(items, size)``: batch calls (filters and id lists have size limits).
- ``api_supported(module, operation, **params)``: whether the endpoint implements
  an API action at all (a DryRun probe), so a module can tell "this emulator or
  partition lacks the action" apart from a real failure, and say so.
- ``AWS_ERRORS``: the exception types a module's single AWS error handler catches.
- ``ModuleFailure``: raised for bad input found after argument validation; the
  module's single error handler turns it into ``fail_json`` with its details.

Functions take and return plain dicts and lists in the EC2 API's own shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

try:
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    # What the one error handler of a module catches: every failure an AWS call can raise.
    AWS_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError, ResponseParserError)
except ImportError:  # pragma: no cover - AnsibleAWSModule reports the missing SDK
    AWS_ERRORS = ()

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

T = TypeVar("T")

# Error codes with which AWS endpoints (and emulators that follow them) answer an
# action they do not implement.
UNSUPPORTED_ERROR_CODES = frozenset(
    {"InvalidAction", "NotImplemented", "UnsupportedOperation", "UnknownOperationException"}
)

# Instance states in which an instance still holds on to its image and template version:
# everything but shutting-down/terminated.
LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")

# EC2 accepts at most 200 values in one filter and 200 versions in one delete call.
EC2_BATCH_SIZE = 200


class ModuleFailure(Exception):
    """Bad input or state found while running; ``details`` go into the failure result."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


def aws_client(module: Any, service: str) -> Any:
    """A client for SERVICE; pass ``aws_retry=True`` to a call to retry throttling and eventual consistency.

    Region, credentials and ``endpoint_url`` come from the module's AWS options; with
    no ``endpoint_url``, botocore honours ``AWS_ENDPOINT_URL`` (how tests reach moto).
    """
    return module.client(service, retry_decorator=AWSRetry.jittered_backoff(retries=10))


def ec2_client(module: Any) -> Any:
    return aws_client(module, "ec2")


def tag_list(tags: Mapping[str, str] | None) -> list[dict[str, str]]:
    """``{"k": "v"}`` -> ``[{"Key": "k", "Value": "v"}]``, sorted by key so results compare stably."""
    return [{"Key": str(k), "Value": str(v)} for k, v in sorted((tags or {}).items())]


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """``[{"Key": "k", "Value": "v"}]`` -> ``{"k": "v"}``."""
    return {t["Key"]: t.get("Value", "") for t in tags or ()}


def tag_filters(tags: Mapping[str, str] | None) -> list[dict[str, Any]]:
    """Describe-call filters that match every tag in TAGS."""
    return [{"Name": f"tag:{k}", "Values": [str(v)]} for k, v in sorted((tags or {}).items())]


def chunks(items: Sequence[T], size: int = EC2_BATCH_SIZE) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def paginate(client: Any, operation: str, key: str, **params: Any) -> list[Any]:
    """All items under KEY across every page of OPERATION (throttling retried)."""

    def _all_pages() -> list[Any]:
        items: list[Any] = []
        for page in client.get_paginator(operation).paginate(**params):
            items.extend(page.get(key, []))
        return items

    # A throttled page restarts the listing: pages are not resumable across retries.
    items: list[Any] = AWSRetry.jittered_backoff(retries=10)(_all_pages)()
    return items


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_unsupported(exc: BaseException) -> bool:
    """True when EXC says the endpoint lacks the action rather than that the call failed.

    AWS answers an unknown action with ``InvalidAction``; emulators answer with a
    non-AWS (HTML) error page, which botocore cannot parse. AWS itself always answers
    in its own XML, so a parse error means the endpoint does not speak this action.
    """
    return isinstance(exc, ResponseParserError) or error_code(exc) in UNSUPPORTED_ERROR_CODES


def api_supported(module: Any, operation: str, *, service: str = "ec2", **params: Any) -> bool:
    """Probe OPERATION of SERVICE (an API with ``DryRun``, such as EC2) with ``DryRun=True``:
    does this endpoint implement it?

    ``DryRunOperation`` (allowed) and ``UnauthorizedOperation`` (implemented, not
    permitted: the real call will then fail with AWS' own message) both mean yes.
    The probe client does not retry, so an emulator's error page costs one request.
    """
    probe = module.client(service, config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    try:
        getattr(probe, operation)(DryRun=True, **params)
    except (ClientError, ResponseParserError) as exc:
        return not is_unsupported(exc)
    return True
