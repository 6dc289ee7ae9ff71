"""The S3 client the uploader uses, built through the agent's one AWS module.

botocore's ``standard`` retry mode gives jittered exponential backoff on
throttling, 5xx and connection errors (bounded by ``upload.max_attempts``).
We send our own CRC32 with every request, so botocore is told not to compute
another one; presigned links use SigV4 (SigV2 links are refused by S3 and by
S3-compatible servers alike).
"""

from __future__ import annotations

from typing import Any

from ocap_agent import aws
from ocap_agent.config import AwsConfig
from ocap_agent.upload.options import Options


def make(opts: Options) -> Any:
    aws_cfg = AwsConfig(region=opts.region, endpoint_url=opts.endpoint_url, max_attempts=opts.max_attempts)
    return aws.client(
        "s3",
        aws_cfg,
        max_pool_connections=opts.concurrency + 4,
        connect_timeout=opts.connect_timeout_s,
        read_timeout=opts.read_timeout_s,
        signature_version="s3v4",
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        tcp_keepalive=True,
    )
