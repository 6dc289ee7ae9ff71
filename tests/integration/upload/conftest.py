"""Fixtures for the upload contract tests: a bucket on the shared S3 server,
synthetic sessions, an agent config in a temp dir, and a way to run the CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from ocap_agent import aws, config
from ocap_agent.upload import options
from tests.integration.upload.support import MIB, run_agent, run_agent_inprocess, write_session

SessionFactory = Callable[..., Path]


@pytest.fixture()
def s3(s3_env: dict[str, str]) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture()
def bucket(s3: Any, unique: str) -> str:
    name = f"upload-{unique}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture()
def make_session(tmp_path: Path) -> SessionFactory:
    def make(
        name: str = "sess-a_20261123T100000Z",
        files: dict[str, int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Path:
        sizes = files if files is not None else {"screen.mkv": 12 * MIB + 123, "screen.mcap": 300_001}
        return write_session(tmp_path / "sessions", name, sizes, meta)

    return make


@pytest.fixture()
def agent_config(tmp_path: Path) -> Callable[..., Path]:
    """Write an agent config (data under tmp_path) with UPLOAD overrides; return its path."""

    def write(**upload: Any) -> Path:
        cfg = {
            "paths": {"data_dir": str(tmp_path / "agent")},
            "upload": {"part_size_mb": 5, "max_concurrency": 4, "update_state": False, **upload},
        }
        path = tmp_path / "agent.json"
        path.write_text(json.dumps(cfg))
        return path

    return write


@dataclass
class UploadEnv:
    """Everything a contract test needs: the server, a bucket, sessions, a config, the CLI."""

    s3: Any
    bucket: str
    env: dict[str, str]
    tmp: Path
    make_session: SessionFactory
    config: Callable[..., Path]

    @property
    def journal_dir(self) -> Path:
        return self.tmp / "agent" / "uploads"

    def upload(
        self, folder: Path, *extra: str, config: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``ocap-agent upload``: in this process, or as a real process when ENV is given."""
        args = [
            "--config",
            str(config or self.config()),
            "upload",
            str(folder),
            "--bucket",
            self.bucket,
            *extra,
        ]
        return run_agent(args, env) if env is not None else run_agent_inprocess(args)


@pytest.fixture()
def u(  # noqa: PLR0917 - pytest passes fixtures positionally
    s3: Any,
    bucket: str,
    s3_env: dict[str, str],
    tmp_path: Path,
    make_session: SessionFactory,
    agent_config: Any,
) -> UploadEnv:
    return UploadEnv(s3, bucket, s3_env, tmp_path, make_session, agent_config)


@pytest.fixture(autouse=True)
def _fresh_aws_session() -> Iterator[None]:
    """The agent caches its boto3 session (and so its credentials) per process: start
    and leave each test with none, so servers with different keys never mix."""
    aws._session.cache_clear()
    yield
    aws._session.cache_clear()


def api_options(u: UploadEnv, **upload: Any) -> options.Options:
    """Options as ``ocap-agent upload --bucket`` would build them from U's config."""
    data = json.loads(u.config(**upload).read_text())
    return options.from_config(config.from_dict(data), bucket=u.bucket, use_state_table=False)
