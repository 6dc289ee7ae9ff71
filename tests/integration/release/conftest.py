"""Fixtures for the release modules' tests against the moto server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.release import harness


@pytest.fixture(scope="session")
def release_module() -> Any:
    return harness.load("ec2_image_release")


@pytest.fixture(scope="session")
def retention_module() -> Any:
    return harness.load("ec2_image_retention")


@pytest.fixture()
def make_image(ec2: Any) -> Callable[..., str]:
    """Register a stand-in image (moto keeps one snapshot per image) and tag it."""

    def make(name: str, **tags: str) -> str:
        image_id: str = ec2.register_image(Name=name, RootDeviceName="/dev/sda1")["ImageId"]
        if tags:
            ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        return image_id

    return make
