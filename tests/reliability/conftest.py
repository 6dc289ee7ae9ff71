"""Reliability fixtures: a private S3 server (versitygw) these tests may restart or kill
without disturbing anyone else's tests, and the checks that count lost sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from ocap_agent import aws, config
from ocap_agent.upload import options
from tests import stack
from tests.integration.upload.support import write_session


@dataclass
class PrivateS3:
    server: stack.Server
    data_dir: Path
    log_dir: Path

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def env(self) -> dict[str, str]:
        return stack.s3_env(self.server.endpoint)

    def client(self) -> Any:
        env = self.env
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def restart(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL) and start it again: same port, same data."""
        if kill:
            self.server.kill()
        self.server = stack.restart(self.server, self.log_dir)


@pytest.fixture(scope="module")
def private_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateS3]:
    base = tmp_path_factory.mktemp("private-s3")
    s3 = PrivateS3(stack.start_versitygw(base / "data", base / "logs"), base / "data", base / "logs")
    yield s3
    s3.server.stop()


@pytest.fixture()
def s3_private_env(private_s3: PrivateS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    for k, v in private_s3.env.items():
        monkeypatch.setenv(k, v)
    aws._session.cache_clear()
    yield private_s3.env
    aws._session.cache_clear()


@dataclass
class Trial:
    """One session under test: where it lives, what it held, where its agent keeps state."""

    folder: Path
    original: dict[str, bytes]
    agent_dir: Path
    config_path: Path
    notes: list[str] = field(default_factory=list)

    @property
    def session_id(self) -> str:
        return self.folder.name


def make_trial(root: Path, name: str, sizes: dict[str, int], bucket: str, **upload: Any) -> Trial:
    folder = write_session(root / "sessions", name, sizes)
    original = {p.name: p.read_bytes() for p in folder.iterdir()}
    agent_dir = root / "agents" / name
    cfg = {
        "paths": {"data_dir": str(agent_dir)},
        "upload": {
            "bucket": bucket,
            "part_size_mb": 5,
            "max_concurrency": 2,
            "update_state": False,
            **upload,
        },
    }
    agent_dir.mkdir(parents=True)
    config_path = agent_dir / "agent.json"
    config_path.write_text(json.dumps(cfg))
    return Trial(folder, original, agent_dir, config_path)


def trial_options(trial: Trial, **override: Any) -> options.Options:
    data = json.loads(trial.config_path.read_text())
    data["upload"].update(override)
    return options.from_config(config.from_dict(data), use_state_table=False)


def lost_or_corrupted(s3: Any, bucket: str, trial: Trial, prefix: str = "recordings") -> list[str]:
    """What of TRIAL's session is not in S3 byte for byte (empty list: nothing lost)."""
    problems = []
    for name, data in trial.original.items():
        key = f"{prefix}/{trial.session_id}/{name}"
        try:
            stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            problems.append(f"{key}: missing")
            continue
        if stored != data:
            problems.append(f"{key}: {len(stored)} bytes differ from the local {len(data)}")
    try:
        manifest = json.loads(
            s3.get_object(Bucket=bucket, Key=f"{prefix}/{trial.session_id}/manifest.json")["Body"].read()
        )
        if {f["name"]: f["size"] for f in manifest["files"]} != {
            n: len(d) for n, d in trial.original.items()
        }:
            problems.append("manifest does not list the session's files")
    except s3.exceptions.NoSuchKey:
        problems.append("manifest missing")
    return problems


def local_intact(trial: Trial) -> bool:
    """The local copy is still complete and unchanged."""
    return trial.folder.is_dir() and all(
        (trial.folder / n).is_file() and (trial.folder / n).read_bytes() == d
        for n, d in trial.original.items()
    )
