"""The kiosk user's password at boot: parsing, what is kept when the store fails, errors naming the key."""

from __future__ import annotations

import ctypes
import json
import re
import sys
from pathlib import Path

import pytest

from ocap_agent import cli, config, kiosk
from ocap_agent.config import Config, ConfigError
from ocap_agent.secret_store import StoreUnavailableError
from tests.fakes.accounts import FakeAccounts

PASSWORD = "-".join(["Correct", "Horse", "Battery", "9"])  # built, so no literal trips the secrets scan


def cfg(**kiosk_cfg: object) -> Config:
    return config.from_dict({"kiosk": {"user": "KioskUser", "name": "/ocap/dev/kiosk/password", **kiosk_cfg}})


def store_returns(monkeypatch: pytest.MonkeyPatch, value: str | Exception | None) -> None:
    def fake(kiosk_cfg: config.KioskConfig, cfg: Config) -> str | None:
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr(kiosk, "fetch", fake)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (PASSWORD, PASSWORD),
        (json.dumps({"password": PASSWORD, "rotated": "2026-12-01"}), PASSWORD),
        ("{not-json-but-a-password}", "{not-json-but-a-password}"),
        ("  spaces are kept  ", "  spaces are kept  "),
    ],
    ids=["plain", "json", "brace-plain", "spaces"],
)
def test_the_stored_value_is_the_password_or_json_holding_it(stored: str, expected: str) -> None:
    assert kiosk.parse_password(stored, 14) == expected


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("short-1A", "has 8 characters, expected at least 14 (kiosk.min_length)"),
        (PASSWORD + "\n", "line break or another control character"),
        (json.dumps({"pass": PASSWORD}), 'no "password" string'),
        (json.dumps({"password": 12345678901234567}), 'no "password" string'),
    ],
)
def test_an_unusable_value_is_refused_without_showing_it(stored: str, message: str) -> None:
    with pytest.raises(kiosk.PasswordError, match=re.escape(message)) as err:
        kiosk.parse_password(stored, 14)
    assert PASSWORD not in str(err.value) and "short-1A" not in str(err.value)


def test_the_stored_password_is_set_and_the_account_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = FakeAccounts({"KioskUser": (False, "image-random")})
    store_returns(monkeypatch, PASSWORD)
    result = kiosk.sync(cfg(), accounts)
    assert (result.status, result.exit_code) == (kiosk.Status.APPLIED, 0)
    assert accounts.users["KioskUser"] == (True, PASSWORD)
    assert kiosk.sign_in_problem(cfg(), accounts) == ""


def test_an_unreachable_store_keeps_a_password_set_at_an_earlier_boot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accounts = FakeAccounts({"KioskUser": (True, PASSWORD)})
    store_returns(monkeypatch, StoreUnavailableError("ssm /ocap/dev/kiosk/password: connection refused"))
    result = kiosk.sync(cfg(), accounts)
    assert (result.status, result.exit_code) == (kiosk.Status.KEPT, 0)
    assert "keeps the password set at an earlier boot" in result.message
    assert accounts.users["KioskUser"] == (True, PASSWORD) and accounts.changes == 0


@pytest.mark.parametrize(
    "stored", [None, StoreUnavailableError("ssm x: AccessDenied")], ids=["nothing-stored", "unreachable"]
)
def test_without_a_password_a_never_enabled_account_stays_disabled_and_says_so(
    monkeypatch: pytest.MonkeyPatch, stored: Exception | None
) -> None:
    accounts = FakeAccounts({"KioskUser": (False, "image-random")})
    store_returns(monkeypatch, stored)
    result = kiosk.sync(cfg(), accounts)
    assert (result.status, result.exit_code) == (kiosk.Status.UNSET, kiosk.EXIT_UNSET)
    assert "nobody can sign in" in result.message
    assert accounts.users["KioskUser"] == (False, "image-random")
    assert "is disabled: its password was never set" in kiosk.sign_in_problem(cfg(), accounts)


def test_an_unusable_stored_value_leaves_the_account_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    accounts = FakeAccounts({"KioskUser": (True, PASSWORD)})
    store_returns(monkeypatch, "short")
    with pytest.raises(kiosk.PasswordError):
        kiosk.sync(cfg(), accounts)
    assert accounts.users["KioskUser"] == (True, PASSWORD) and accounts.changes == 0


def test_no_kiosk_user_configured_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    store_returns(monkeypatch, AssertionError("the store must not be read"))
    result = kiosk.sync(Config(), FakeAccounts())
    assert (result.status, result.exit_code) == (kiosk.Status.NOT_CONFIGURED, 0)
    assert kiosk.sign_in_problem(Config(), FakeAccounts()) == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"user": "KioskUser"},
            "kiosk.name: expected the SSM parameter or secret holding KioskUser's password",
        ),
        ({"store": "vault"}, "kiosk.store: expected 'ssm' or 'secretsmanager', got 'vault'"),
        ({"min_length": 4}, "kiosk.min_length: expected a number >= 8, got 4"),
        ({"timeout_s": 0}, "kiosk.timeout_s: expected a number > 0"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.from_dict({"kiosk": data})


@pytest.mark.skipif(sys.platform == "win32", reason="checks the refusal off Windows")
def test_off_windows_a_configured_kiosk_user_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store_returns(monkeypatch, PASSWORD)
    path = tmp_path / "agent.json"
    path.write_text(
        json.dumps(
            {
                "paths": {"data_dir": str(tmp_path / "data")},
                "kiosk": {"user": "KioskUser", "name": "/ocap/dev/kiosk/password"},
            }
        )
    )
    assert cli.main(["--config", str(path), "kiosk", "sync"]) == kiosk.EXIT_FAILED
    out = capsys.readouterr()
    assert "kiosk.user is supported on Windows only" in out.err
    assert PASSWORD not in out.out + out.err
    assert "supported on Windows only" in kiosk.sign_in_problem(cfg())


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # the image's account: disabled, script flag, normal account (0x200)
        (0x0200 | kiosk.UF_SCRIPT | kiosk.UF_ACCOUNTDISABLE, 0x0200 | 0x0001 | 0x10000 | 0x0040),
        # locked out after mistyped passwords, password expired
        (0x0200 | kiosk.UF_LOCKOUT | kiosk.UF_PASSWORD_EXPIRED, 0x0200 | 0x0001 | 0x10000 | 0x0040),
        # already usable: unchanged, so no second NetUserSetInfo call
        (0x0200 | 0x0001 | 0x10000 | 0x0040, 0x0200 | 0x0001 | 0x10000 | 0x0040),
    ],
    ids=["disabled-image-account", "locked-and-expired", "already-usable"],
)
def test_the_account_flags_written_enable_unlock_and_keep_the_password_from_expiring(
    flags: int, expected: int
) -> None:
    assert kiosk.usable_flags(flags) == expected


def test_the_user_info_1_layout_matches_windows_x64() -> None:
    # lmaccess.h USER_INFO_1 on 64-bit Windows: two pointers, two DWORDs, two pointers,
    # a DWORD padded to 8, a pointer. Pointer sizes match on this 64-bit machine.
    info = kiosk.WindowsAccounts._UserInfo1
    assert (info.password_age.offset, info.flags.offset, info.script_path.offset) == (16, 40, 48)
    assert ctypes.sizeof(info) == 56
