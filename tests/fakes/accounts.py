"""Local accounts in memory: what ``kiosk.WindowsAccounts`` does to Windows, observable in tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from ocap_agent import kiosk


@dataclass
class FakeAccounts:
    """Users -> (enabled, password); ``refuse`` makes the next change fail like the policy would."""

    users: dict[str, tuple[bool, str]] = field(default_factory=dict)
    refuse: str = ""
    changes: int = 0

    def is_enabled(self, user: str) -> bool:
        if user not in self.users:
            raise kiosk.KioskError(f"reading of local user {user}: no such local user")
        return self.users[user][0]

    def set_password_and_enable(self, user: str, password: str) -> None:
        self.is_enabled(user)
        if self.refuse:
            raise kiosk.KioskError(f"setting the password of local user {user}: {self.refuse}")
        self.users[user] = (True, password)
        self.changes += 1
