"""The suite can never reach a real AWS endpoint by accident."""

import boto3
import pytest

from tests.conftest import RealAwsEndpointError


def test_request_to_real_aws_fails_loudly() -> None:
    client = boto3.client("sts", region_name="us-east-1")
    with pytest.raises(RealAwsEndpointError, match="AWS_ENDPOINT_URL"):
        client.get_caller_identity()
