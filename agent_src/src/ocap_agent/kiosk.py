"""The kiosk user's password, set at every boot from a stored secret (``ocap-agent kiosk sync``).

The image holds the kiosk user disabled, with a random password nobody knows
(roles/kiosk_user): no password is ever baked into an AMI. At each boot, as
SYSTEM, this module

- reads the password from SSM (SecureString) or Secrets Manager (a plain
  string, or JSON ``{"password": ...}``), with a short timeout;
- sets it on the local account and enables the account, with password expiry
  off (an expired password would stop a researcher at the sign-in screen).
  On Windows this goes through the NetUserSetInfo API: the password is never
  on a command line, in the environment or in a log.

A pool instance boots once to warm up and again when it is claimed, so a
rotated password (a new value in the store) reaches every instance at its next
start. When the store cannot be read, an account that was enabled at an earlier
boot keeps its password (warning); one that never was stays disabled, and the
warm-up reports the instance Unhealthy rather than offering it to a user who
could not sign in.
"""

from __future__ import annotations

import ctypes
import enum
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any, Protocol

from ocap_agent import secret_store
from ocap_agent.config import Config, KioskConfig

log = logging.getLogger("ocap_agent.kiosk")

# Exit codes of `ocap-agent kiosk sync`.
EXIT_OK = 0
EXIT_FAILED = 1  # unusable stored value, or the account could not be changed
EXIT_UNSET = 3  # nothing stored or reachable and the account was never enabled


class KioskError(RuntimeError):
    """The account could not be read or changed; the message names the user and why."""


class PasswordError(ValueError):
    """The stored value is not a usable password; the message says why (never the value)."""


class Accounts(Protocol):
    """Local user accounts: what ``kiosk sync`` and the warm-up need of them."""

    def is_enabled(self, user: str) -> bool: ...

    def set_password_and_enable(self, user: str, password: str) -> None: ...


class Status(enum.Enum):
    NOT_CONFIGURED = "not-configured"  # kiosk.user is empty
    APPLIED = "applied"  # password set, account enabled
    KEPT = "kept"  # store unreachable or empty; the account keeps the password of an earlier boot
    UNSET = "unset"  # store unreachable or empty and the account is still disabled


@dataclass(frozen=True)
class SyncResult:
    status: Status
    user: str
    message: str = ""

    @property
    def exit_code(self) -> int:
        return EXIT_UNSET if self.status is Status.UNSET else EXIT_OK

    def summary(self) -> dict[str, str]:
        out = {"status": self.status.value, "user": self.user}
        if self.message:
            out["message"] = self.message
        return out


def parse_password(text: str, min_length: int) -> str:
    """The password in a stored value: the value itself, or JSON ``{"password": ...}``."""
    value = text
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None  # not JSON after all: a password may start with "{"
        if isinstance(data, dict):
            if not isinstance(data.get("password"), str):
                raise PasswordError('the stored JSON has no "password" string')
            value = data["password"]
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PasswordError("the stored password contains a line break or another control character")
    if len(value) < min_length:
        raise PasswordError(
            f"the stored password has {len(value)} characters, "
            f"expected at least {min_length} (kiosk.min_length)"
        )
    return value


# Account flags (lmaccess.h) a sync sets and clears.
UF_SCRIPT = 0x0001  # "must be set" in every USER_INFO_1008 written
UF_ACCOUNTDISABLE = 0x0002
UF_LOCKOUT = 0x0010
UF_PASSWD_CANT_CHANGE = 0x0040
UF_DONT_EXPIRE_PASSWD = 0x10000
UF_PASSWORD_EXPIRED = 0x800000


def usable_flags(flags: int) -> int:
    """FLAGS of an account a researcher can sign in to: enabled, unlocked, a password that does not expire.

    Unlocking at boot undoes a lockout from mistyped passwords in an earlier
    session; the researcher cannot change the password (the store owns it).
    """
    cleared = flags & ~(UF_ACCOUNTDISABLE | UF_LOCKOUT | UF_PASSWORD_EXPIRED)
    return cleared | UF_SCRIPT | UF_DONT_EXPIRE_PASSWD | UF_PASSWD_CANT_CHANGE


class WindowsAccounts:
    """Local accounts through netapi32 (NetUserGetInfo / NetUserSetInfo)."""

    _MESSAGES = {
        5: "access denied (run as SYSTEM or an administrator)",
        2221: "no such local user (roles/kiosk_user creates it)",
        2245: "the password does not meet the password policy (length, complexity or history)",
    }

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise KioskError(
                "the kiosk user is a local Windows account: kiosk.user is supported on Windows only"
            )
        self._netapi: Any = ctypes.WinDLL("netapi32")

    class _UserInfo1(ctypes.Structure):
        _fields_ = [
            ("name", ctypes.c_wchar_p),
            ("password", ctypes.c_wchar_p),
            ("password_age", ctypes.c_uint32),
            ("priv", ctypes.c_uint32),
            ("home_dir", ctypes.c_wchar_p),
            ("comment", ctypes.c_wchar_p),
            ("flags", ctypes.c_uint32),
            ("script_path", ctypes.c_wchar_p),
        ]

    def _check(self, status: int, user: str, what: str) -> None:
        if status != 0:
            why = self._MESSAGES.get(status, f"NET_API_STATUS {status}")
            raise KioskError(f"{what} of local user {user}: {why}")

    def _flags(self, user: str) -> int:
        buf = ctypes.c_void_p()
        self._check(self._netapi.NetUserGetInfo(None, user, 1, ctypes.byref(buf)), user, "reading")
        try:
            return int(ctypes.cast(buf, ctypes.POINTER(self._UserInfo1)).contents.flags)
        finally:
            self._netapi.NetApiBufferFree(buf)

    def is_enabled(self, user: str) -> bool:
        return not self._flags(user) & UF_ACCOUNTDISABLE

    def set_password_and_enable(self, user: str, password: str) -> None:
        # USER_INFO_1003 is one LPWSTR: the new password, set as an administrator reset.
        info_1003 = ctypes.c_wchar_p(password)
        self._check(
            self._netapi.NetUserSetInfo(None, user, 1003, ctypes.byref(info_1003), None),
            user,
            "setting the password",
        )
        # USER_INFO_1008 is one DWORD: the account's flags.
        flags = self._flags(user)
        wanted = usable_flags(flags)
        if wanted != flags:
            info_1008 = ctypes.c_uint32(wanted)
            self._check(
                self._netapi.NetUserSetInfo(None, user, 1008, ctypes.byref(info_1008), None),
                user,
                "enabling the account",
            )


def default_accounts() -> Accounts:
    return WindowsAccounts()


def fetch(kiosk: KioskConfig, cfg: Config) -> str | None:
    return secret_store.fetch(kiosk.store, kiosk.name, cfg.aws, kiosk.timeout_s)


def sync(cfg: Config, accounts: Accounts | None = None) -> SyncResult:
    """Set the stored password on the kiosk user and enable it; keep what it has if the store fails.

    Raises PasswordError (the stored value is unusable: the account is not
    touched) or KioskError (the account cannot be read or changed: at most the
    new password is set, the account stays disabled if it was).
    """
    kiosk = cfg.kiosk
    if not kiosk.user:
        return SyncResult(Status.NOT_CONFIGURED, "", "no kiosk user configured (kiosk.user)")
    accounts = accounts or default_accounts()
    where = f"{kiosk.store} {kiosk.name}"
    try:
        text = fetch(kiosk, cfg)
        problem = "" if text is not None else f"no password stored in {where}"
    except secret_store.StoreUnavailableError as exc:
        text, problem = None, f"password store unreachable: {exc}"
    if text is None:
        if accounts.is_enabled(kiosk.user):
            msg = f"{problem}; {kiosk.user} keeps the password set at an earlier boot"
            log.warning(msg, extra={"event": "kiosk.kept"})
            return SyncResult(Status.KEPT, kiosk.user, msg)
        msg = f"{problem}; {kiosk.user} stays disabled: nobody can sign in to this instance"
        log.error(msg, extra={"event": "kiosk.no_password"})
        return SyncResult(Status.UNSET, kiosk.user, msg)
    password = parse_password(text, kiosk.min_length)
    accounts.set_password_and_enable(kiosk.user, password)
    log.info(
        "kiosk user %s: password set from %s, account enabled",
        kiosk.user,
        where,
        extra={"event": "kiosk.applied"},
    )
    return SyncResult(Status.APPLIED, kiosk.user)


def sign_in_problem(cfg: Config, accounts: Accounts | None = None) -> str:
    """Why a researcher could not sign in as the kiosk user ("" when they can, or none is configured)."""
    user = cfg.kiosk.user
    if not user:
        return ""
    try:
        if (accounts or default_accounts()).is_enabled(user):
            return ""
    except KioskError as exc:
        return str(exc)
    return f"kiosk user {user} is disabled: its password was never set (ocap-agent kiosk sync)"
