"""The uploader's settings: the ``upload`` config section with flags applied, checked once.

Values are validated here, so every other module can trust them; a bad value
is an error naming its config key and what was expected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ocap_agent.config import Config
from ocap_agent.upload import errors, layout

MIB = 1024 * 1024
MAX_PARTS = 10_000  # S3's limit per multipart upload
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4 links live at most 7 days
CHECKSUM_TYPES = ("FULL_OBJECT", "COMPOSITE")


@dataclass(frozen=True)
class Options:
    bucket: str
    prefix: str
    journal_dir: Path
    spool_dir: Path
    keep_local: bool = False
    archive: bool = False
    part_size: int = 16 * MIB
    checksum_type: str = "FULL_OBJECT"
    concurrency: int = 8
    bandwidth_bytes_s: float = 0.0
    max_attempts: int = 8
    presign_expiry_s: int = 24 * 3600
    region: str = ""
    endpoint_url: str = ""
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    progress_interval_s: float = 10.0
    state_table: str = ""  # empty: do not touch the state table
    state_endpoint_url: str = ""
    orphan_age_s: float = 168 * 3600.0
    journal_retention_s: float = 30 * 86400.0  # 0: keep every journal

    def part_size_for(self, size: int) -> int:
        """The configured part size, grown when a file would need more than 10,000 parts."""
        part = self.part_size
        while size > part * MAX_PARTS:
            part *= 2
        return part


def _check_range(key: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise errors.InvalidSetting(f"{key}: expected a value from {low:g} to {high:g}{unit}, got {value!r}")


def from_config(
    cfg: Config,
    *,
    bucket: str | None = None,
    key_prefix: str | None = None,
    keep_local: bool | None = None,
    archive: bool | None = None,
    require_bucket: bool = True,
    use_state_table: bool = True,
) -> Options:
    """Options from CFG's ``upload`` section, command-line values taking precedence."""
    up = cfg.upload
    if bucket is not None:
        up = dataclasses.replace(up, bucket=bucket)
    if key_prefix is not None:
        up = dataclasses.replace(up, key_prefix=key_prefix)
    if require_bucket and not up.bucket.strip():
        raise errors.InvalidSetting(
            "upload.bucket: expected a bucket name; set it in the config file or pass --bucket"
        )
    _check_range("upload.part_size_mb", up.part_size_mb, 5, 5120, " MiB (S3 parts are 5 MiB to 5 GiB)")
    _check_range("upload.max_concurrency", up.max_concurrency, 1, 64)
    _check_range("upload.max_bandwidth_mbps", up.max_bandwidth_mbps, 0, 1e6, " megabits/s (0: unlimited)")
    _check_range("upload.max_attempts", up.max_attempts, 1, 20)
    _check_range("upload.presign_expiry_s", up.presign_expiry_s, 1, MAX_PRESIGN_S, " seconds")
    _check_range("upload.connect_timeout_s", up.connect_timeout_s, 0.1, 600, " seconds")
    _check_range("upload.read_timeout_s", up.read_timeout_s, 0.1, 3600, " seconds")
    _check_range("upload.progress_interval_s", up.progress_interval_s, 0.1, 3600, " seconds")
    _check_range("upload.orphan_age_h", up.orphan_age_h, 0, 24 * 3650, " hours")
    _check_range("upload.journal_retention_days", up.journal_retention_days, 0, 3650, " days (0: keep all)")
    if up.checksum_type not in CHECKSUM_TYPES:
        raise errors.InvalidSetting(
            f"upload.checksum_type: expected one of {', '.join(CHECKSUM_TYPES)}, got {up.checksum_type!r}"
        )
    paths = cfg.paths
    journal_dir = Path(up.journal_dir) if up.journal_dir else Path(paths.data_dir) / "uploads"
    return Options(
        bucket=up.bucket.strip(),
        prefix=layout.normalize_prefix(up.key_prefix),
        journal_dir=journal_dir,
        spool_dir=paths.resolved("spool_dir"),
        keep_local=up.keep_local if keep_local is None else keep_local,
        archive=up.archive if archive is None else archive,
        part_size=up.part_size_mb * MIB,
        checksum_type=up.checksum_type,
        concurrency=up.max_concurrency,
        bandwidth_bytes_s=up.max_bandwidth_mbps * 1_000_000 / 8,
        max_attempts=up.max_attempts,
        presign_expiry_s=up.presign_expiry_s,
        region=cfg.aws.region,
        endpoint_url=up.endpoint_url or cfg.aws.endpoint_url,
        connect_timeout_s=up.connect_timeout_s,
        read_timeout_s=up.read_timeout_s,
        progress_interval_s=up.progress_interval_s,
        state_table=cfg.state.table if (use_state_table and up.update_state) else "",
        state_endpoint_url=cfg.aws.endpoint_url,
        orphan_age_s=up.orphan_age_h * 3600,
        journal_retention_s=up.journal_retention_days * 86400,
    )
