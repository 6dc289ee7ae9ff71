"""A secrets scan of the repository and of files the project renders.

Finds AWS access key ids, secret-key assignments, private key PEM blocks and
literal passwords (YAML keys and quoted assignments). Values that are templates
(``{{ ... }}``, ``${...}``) or vault references are not secrets. The only
literal values let through are the fake credentials of the local test stack,
each named in ALLOWED_VALUES with the reason.

    python -m tests.security.secrets_scan        # scan the repository, exit 1 on findings
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import stack

ROOT = Path(__file__).resolve().parents[2]
MAX_BYTES = 2 * 1024 * 1024

# Literal values that look like secrets but are not credentials of anything.
ALLOWED_VALUES: dict[str, str] = {
    "testing": "moto's fake credentials (tests/stack.py FAKE_CREDENTIALS)",
    "wrong-secret": "a deliberately wrong key in a test that the S3 server refuses it",
    stack.VERSITY_ACCESS: "the local versitygw test server's access key (tests/stack.py)",
    stack.VERSITY_SECRET: "the local versitygw test server's secret key (tests/stack.py)",
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


_QUOTED = r"""["'](?P<value>[^"'\s]{4,})["']"""
# An unquoted value counts only when it looks like key material (not an expression).
_BARE_KEY = r"""(?P<bare>[A-Za-z0-9/+]{16,}={0,2})(?=\s|$)"""
RULES: list[tuple[str, re.Pattern[str]]] = [
    ("AWS access key id", re.compile(r"(?<![A-Z0-9])(?P<value>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Z0-9])")),
    (
        "AWS secret key assignment",
        re.compile(
            r"(?im)(?:aws_?secret_?access_?key|secret_?access_?key|aws_?secret_?key)"
            r"""["']?[ \t]*[:=][ \t]*(?:""" + _QUOTED + "|" + _BARE_KEY + ")"
        ),
    ),
    ("private key", re.compile(r"-----BEGIN (?P<value>(?:[A-Z0-9]+ )*PRIVATE KEY)-----")),
    (
        # A key ending in password/passwd/passphrase with a literal value.
        "password in YAML",
        re.compile(
            r"(?im)^[ \t]*-?[ \t]*(?P<key>[\w.-]*(?:password|passwd|passphrase)):[ \t]*"
            r"""(?P<value>[^\s#][^#\n]*?)[ \t]*$"""
        ),
    ),
    (
        "password assignment",
        re.compile(r"""(?i)[\w.-]*(?:password|passwd|passphrase)["']?\s*[:=]\s*""" + _QUOTED),
    ),
]
# Ansible option names that end in "password" but hold a mode, not a secret.
NOT_SECRET_KEYS = {"update_password"}
# Real private keys are longer; a shorter body is a stub in a test of key handling.
MIN_PEM_BODY = 100


def _is_placeholder(value: str) -> bool:
    """Templates and references name a secret kept elsewhere; they are not one."""
    v = value.strip("\"'")
    return (
        not v
        or v.startswith(("{", "${", "$", "!vault", "lookup(", "os.environ", "%("))
        or v.lower() in {"null", "none", "~", "true", "false", "omit"}
    )


def _pem_body_length(text: str, start: int) -> int:
    end = text.find("-----END", start)
    body = text[start : end if end != -1 else start + 10000]
    body = body.split("-----", 2)[-1].replace("\\n", "")
    return len(re.sub(r"[^A-Za-z0-9+/=]", "", body))


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    for kind, rule in RULES:
        for match in rule.finditer(text):
            groups = match.groupdict()
            value = groups.get("value") or groups.get("bare") or ""
            if kind == "private key":
                if _pem_body_length(text, match.start()) < MIN_PEM_BODY:
                    continue
            elif kind != "AWS access key id":
                if _is_placeholder(value) or value.strip("\"'") in ALLOWED_VALUES:
                    continue
                if (groups.get("key") or "").lower() in NOT_SECRET_KEYS:
                    continue
            line = text.count("\n", 0, match.start()) + 1
            shown = value if kind == "private key" else (value[:4] + "...")
            findings.append(Finding(path, line, kind, shown))
    return findings


def repository_files(root: Path = ROOT) -> list[Path]:
    """Tracked and untracked files that .gitignore does not exclude."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout
    names = sorted({n for n in out.decode().split("\0") if n})
    return [root / n for n in names if (root / n).is_file()]


def read_text(path: Path) -> str | None:
    """The file's text, or None for binaries and very large files."""
    if path.stat().st_size > MAX_BYTES:
        return None
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def scan_files(paths: Iterable[Path], root: Path = ROOT) -> Iterator[Finding]:
    for path in paths:
        text = read_text(path)
        if text is not None:
            rel = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            yield from scan_text(rel, text)


def main() -> int:
    findings = list(scan_files(repository_files()))
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
