"""The agent's one typed configuration, loaded from one JSON file.

The agent role writes the file (``to_nice_json``). Every key has a default
where one makes sense; an unknown key or a value of the wrong type is an error
that names the key, e.g. ``upload.part_size_mb: expected an integer, got 'x'``.

Each section is a frozen dataclass. Adding a key means adding a field with a
default to its section: the loader, the error messages and ``config show``
follow from the field's type annotation.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

ENV_CONFIG_PATH = "OCAP_AGENT_CONFIG"


class ConfigError(ValueError):
    """A configuration problem; the message names the key and what was expected."""


def _default_data_dir() -> str:
    if sys.platform == "win32":
        return os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"), "ocap-agent")
    return os.path.join(os.path.expanduser("~"), ".local", "state", "ocap-agent")


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{key}: expected a number >= {low:g}, got {value!r}")


# Where the agent reads secrets from (ocap_agent.secret_store): SSM SecureString or Secrets Manager.
SECRET_STORES = ("ssm", "secretsmanager")


def _secret_store(key: str, value: str) -> None:
    if value not in SECRET_STORES:
        raise ConfigError(f"{key}: expected 'ssm' or 'secretsmanager', got {value!r}")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: expected a number > 0, got {value!r}")


@dataclass(frozen=True)
class PathsConfig:
    # Everything the agent keeps on disk lives under data_dir unless overridden.
    data_dir: str = field(default_factory=_default_data_dir)
    sessions_dir: str = ""  # default: <data_dir>/sessions
    spool_dir: str = ""  # default: <data_dir>/spool
    log_dir: str = ""  # default: <data_dir>/logs

    def resolved(self, name: str) -> Path:
        value = getattr(self, name)
        if value:
            return Path(value)
        return Path(self.data_dir) / name.removesuffix("_dir")


@dataclass(frozen=True)
class InstanceConfig:
    # Empty means "ask the instance metadata service" (IMDSv2) at run time.
    instance_id: str = ""
    image_version: str = ""  # default: the agent's own version (one VERSION file)
    pool: str = ""
    user: str = ""  # default: the interactive user running the agent


@dataclass(frozen=True)
class AwsConfig:
    # Empty values defer to the standard AWS environment and config files
    # (AWS_REGION, AWS_ENDPOINT_URL, profiles, instance role).
    region: str = ""
    endpoint_url: str = ""
    max_attempts: int = 8


@dataclass(frozen=True)
class StateConfig:
    # The DynamoDB state table; "" runs without one (recordings never depend on it).
    table: str = "ocap-state"


@dataclass(frozen=True)
class RecorderConfig:
    # argv of the recorder; the session path is appended. Tests and rehearsals
    # point this at the simulated recorder.
    command: list[str] = field(default_factory=lambda: ["ocap"])
    extra_args: list[str] = field(default_factory=list)
    fps: int = 0  # 0: OCAP's own default
    window_name: str = ""
    record_audio: bool = True
    env: dict[str, str] = field(default_factory=lambda: {"OWA_DISABLE_VERSION_CHECK": "1"})
    start_timeout_s: float = 60.0
    stop_grace_s: float = 40.0
    # Windows only: the interpreter that runs the CTRL_BREAK wrapper and, in
    # it, the recorder (OCAP's conda environment). Default: the agent's own.
    wrapper_python: str = ""

    def __post_init__(self) -> None:
        if not self.command or not self.command[0]:
            raise ConfigError('recorder.command: expected a non-empty command, e.g. ["ocap"]')
        _at_least("recorder.fps", self.fps, 0)
        _positive("recorder.start_timeout_s", self.start_timeout_s)
        _at_least("recorder.stop_grace_s", self.stop_grace_s, 0)


@dataclass(frozen=True)
class WarmupConfig:
    # The throw-away recording lives here; default <data_dir>/warmup.
    scratch_dir: str = ""
    # "Really recording": both files exist and grew by at least this much.
    min_growth_bytes: int = 1

    def __post_init__(self) -> None:
        _at_least("warmup.min_growth_bytes", self.min_growth_bytes, 1)


@dataclass(frozen=True)
class UploadConfig:
    bucket: str = ""
    key_prefix: str = "recordings"
    keep_local: bool = False  # true: keep the session folder after a verified upload
    archive: bool = False  # true: one stored (uncompressed) zip instead of one object per file
    part_size_mb: int = 16
    # Whole-object checksum of multipart uploads: FULL_OBJECT (CRC32 of the object, checked
    # by S3 at completion) or COMPOSITE (CRC32 of the parts' CRC32s). Parts carry a CRC32 either way.
    checksum_type: str = "FULL_OBJECT"
    max_concurrency: int = 8
    max_bandwidth_mbps: float = 0.0  # megabits per second; 0: unlimited
    max_attempts: int = 8
    presign_expiry_s: int = 3600 * 24
    # S3 only; empty: aws.endpoint_url, then the AWS environment (AWS_ENDPOINT_URL_S3...).
    endpoint_url: str = ""
    journal_dir: str = ""  # default: <data_dir>/uploads
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    progress_interval_s: float = 10.0  # log cadence when not on a terminal
    update_state: bool = True  # move the session row to Uploaded (best effort)
    # `uploads recover`: abort unknown multipart uploads of other sessions only when older.
    orphan_age_h: float = 168.0
    # `uploads run` deletes the journals of sessions verified in S3 and removed (or kept
    # by keep_local) longer ago than this; they list as "done" until then. 0: keep them all.
    journal_retention_days: float = 30.0


@dataclass(frozen=True)
class CertsConfig:
    # Where the renewal job stores the bundle: "ssm" (SecureString parameter) or
    # "secretsmanager"; name is the parameter name or secret id.
    store: str = "ssm"
    name: str = ""
    # Default: DCV's configuration folder on Windows (the LocalSystem profile's
    # AppData\Local\NICE\dcv), /etc/dcv elsewhere.
    install_dir: str = ""
    cert_file: str = "dcv.pem"
    key_file: str = "dcv.key"
    # Per-request timeout reaching the store: at spin-up an unreachable store must not
    # hold the instance for long (the installed certificate is kept instead).
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _secret_store("certs.store", self.store)
        for key in ("cert_file", "key_file"):
            value = getattr(self, key)
            if not value or os.path.basename(value) != value:
                raise ConfigError(f"certs.{key}: expected a file name without folders, got {value!r}")
        _positive("certs.timeout_s", self.timeout_s)


@dataclass(frozen=True)
class KioskConfig:
    # The local user researchers sign in as (roles/kiosk_user); empty: no kiosk user
    # is managed (`kiosk sync` does nothing, the warm-up does not check one).
    user: str = ""
    # Where its password is stored, read at every boot: "ssm" (SecureString) or
    # "secretsmanager" (a plain string, or JSON with a "password" key).
    store: str = "ssm"
    name: str = ""
    timeout_s: float = 10.0
    # A stored password shorter than this is refused (the account keeps what it has).
    min_length: int = 14

    def __post_init__(self) -> None:
        _secret_store("kiosk.store", self.store)
        if self.user and not self.name:
            raise ConfigError(
                f"kiosk.name: expected the SSM parameter or secret holding {self.user}'s password"
            )
        _positive("kiosk.timeout_s", self.timeout_s)
        _at_least("kiosk.min_length", self.min_length, 8)


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"
    file: str = ""  # default: <log_dir>/agent.jsonl


@dataclass(frozen=True)
class Config:
    paths: PathsConfig = field(default_factory=PathsConfig)
    instance: InstanceConfig = field(default_factory=InstanceConfig)
    aws: AwsConfig = field(default_factory=AwsConfig)
    state: StateConfig = field(default_factory=StateConfig)
    recorder: RecorderConfig = field(default_factory=RecorderConfig)
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    upload: UploadConfig = field(default_factory=UploadConfig)
    certs: CertsConfig = field(default_factory=CertsConfig)
    kiosk: KioskConfig = field(default_factory=KioskConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


T = TypeVar("T")


def _type_name(tp: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if tp in names:
        return names[tp]
    origin = typing.get_origin(tp)
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "an object of strings"
    return str(tp)


def _coerce(key: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is list:
        (item_type,) = typing.get_args(tp)
        if isinstance(value, str) and item_type is str:
            return [value]  # "command": "ocap" is the natural spelling
        if isinstance(value, list):
            return [_coerce(f"{key}[{i}]", item_type, v) for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return dict(value)
    elif origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(key, option, value)
            except ConfigError:
                continue
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _build(cls: type[T], data: Any, prefix: str) -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown config key {where}{unknown[0]} (known: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)  # type: ignore[arg-type]
        else:
            kwargs[name] = _coerce(key, tp, value)
    return cls(**kwargs)


def from_dict(data: Any) -> Config:
    """Build a Config from parsed JSON, naming the first bad key."""
    return _build(Config, data, "")


def load(path: str | os.PathLike[str] | None = None, *, required: bool = True) -> Config:
    """Load the config from PATH, else $OCAP_AGENT_CONFIG, else built-in defaults.

    ``required=False`` lets commands whose flags are enough (``upload``) run
    without any file.
    """
    if path is None:
        path = os.environ.get(ENV_CONFIG_PATH) or None
    if path is None:
        if required:
            raise ConfigError(f"no config file: pass --config PATH or set {ENV_CONFIG_PATH}")
        return Config()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    return from_dict(data)


def to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)
