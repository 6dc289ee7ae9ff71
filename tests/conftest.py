"""One conftest for the whole suite: local servers started once, and a guard against real AWS.

Fixtures:
- ``moto_server``: moto in server mode (session scope); ``aws_env`` points the
  process environment (boto3, subprocesses, ansible) at it.
- ``s3_server``: versitygw over a directory (session scope), persistent across
  restarts; ``s3_env`` is the environment for clients of it.
- ``ddb``/``ec2``/... : boto3 clients against moto.

Nothing reaches a real AWS endpoint: fake credentials are set before any test
runs, and every botocore request to a non-loopback host fails the test loudly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.httpsession
import pytest

from tests import stack

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class RealAwsEndpointError(AssertionError):
    pass


def _refuse_non_loopback(original: Any) -> Any:
    def send(self: Any, request: Any) -> Any:
        host = urlsplit(request.url).hostname or ""
        if host not in LOOPBACK and not host.startswith("127."):
            raise RealAwsEndpointError(
                f"test tried to reach {host}: set AWS_ENDPOINT_URL to the local emulator"
            )
        return original(self, request)

    return send


def pytest_configure(config: pytest.Config) -> None:
    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(key, None)
    os.environ.update(stack.FAKE_CREDENTIALS)
    botocore.httpsession.URLLib3Session.send = _refuse_non_loopback(  # type: ignore[method-assign]
        botocore.httpsession.URLLib3Session.send
    )


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def moto_server(stack_dir: Path) -> Iterator[stack.Server]:
    server = stack.start_moto(stack_dir / "logs")
    yield server
    server.stop()


@pytest.fixture()
def aws_env(moto_server: stack.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's environment (and its subprocesses) at the moto server."""
    env = stack.aws_env(moto_server.endpoint)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture(scope="session")
def s3_server(stack_dir: Path) -> Iterator[stack.Server]:
    server = stack.start_versitygw(stack_dir / "s3", stack_dir / "logs")
    yield server
    server.stop()


@pytest.fixture()
def s3_env(s3_server: stack.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's environment at the persistent S3 server."""
    env = stack.s3_env(s3_server.endpoint)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture()
def unique() -> str:
    """A short unique suffix so tests sharing one server never collide."""
    return uuid.uuid4().hex[:8]


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture()
def ddb(aws_env: dict[str, str]) -> Any:
    return _client("dynamodb", aws_env["AWS_ENDPOINT_URL"])


@pytest.fixture()
def ec2(aws_env: dict[str, str]) -> Any:
    return _client("ec2", aws_env["AWS_ENDPOINT_URL"])
