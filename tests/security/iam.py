"""IAM policy documents of the project: rendering, the wildcard check and a small evaluator.

- :func:`render_policies` renders every template under playbooks/templates/iam
  with realistic values and parses each as JSON.
- :func:`wildcard_findings` lists every wildcard in Action/Resource/Principal
  that the commented allow-list (wildcard-allowlist.yml) does not justify.
- :func:`evaluate` decides a request against policy documents the way IAM
  does for one account: an explicit Deny wins, then any Allow, else an
  implicit deny. It covers what the project's policies use (Action/NotAction,
  Resource/NotResource with wildcards and policy variables, the String*, Arn*,
  Bool and Null operators, ForAllValues/ForAnyValue, IfExists); anything else
  raises, so a policy cannot silently outgrow it.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[2]
IAM_TEMPLATES = ROOT / "playbooks" / "templates" / "iam"
ALLOWLIST = IAM_TEMPLATES / "wildcard-allowlist.yml"
ACCOUNT = "123456789012"

# Realistic values for the variables the playbook computes at run time (the
# rest come from group_vars/all, as in a run).
RUNTIME_VARS: dict[str, Any] = {
    "_ocap_account_id": ACCOUNT,
    "_ocap_partition": "aws",
    "_ocap_zone_id": "Z0123456789ABCDEFGHIJ",
    "_ocap_state_index": "pool-index",
    "_ocap_trusted_principals": [f"arn:aws:iam::{ACCOUNT}:root"],
    "_ocap_trusted_services": ["lambda.amazonaws.com"],
    "ocap_aws_region": "eu-west-1",
    "ocap_environment": "prod",
}


# -- rendering ----------------------------------------------------------------
def _resolve(raw: Mapping[str, Any], env: jinja2.Environment) -> dict[str, Any]:
    """Render group_vars values against each other until nothing changes.

    Values that plain Jinja cannot render (Ansible lookups and filters) stay
    as they are; a policy that used one would show "{{" and fail its test.
    """
    values = dict(raw)

    def render_value(value: Any) -> Any:
        if isinstance(value, str) and "{{" in value:
            try:
                return env.from_string(value).render(values)
            except (jinja2.TemplateError, TypeError, AttributeError):
                return value
        if isinstance(value, list):
            return [render_value(v) for v in value]
        if isinstance(value, dict):
            return {k: render_value(v) for k, v in value.items()}
        return value

    for _ in range(10):
        new = {k: render_value(v) for k, v in values.items()}
        if new == values:
            break
        values = new
    return values


@functools.cache
def _group_vars() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted((ROOT / "playbooks" / "group_vars" / "all").glob("*.yml")):
        out.update(yaml.safe_load(path.read_text()) or {})
    return out


def group_vars() -> dict[str, Any]:
    """playbooks/group_vars/all, as written (values not rendered yet)."""
    return copy.deepcopy(_group_vars())


@functools.cache
def template_env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(IAM_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def policy_vars(**overrides: Any) -> dict[str, Any]:
    raw = group_vars()
    raw.update(RUNTIME_VARS)
    raw.update(overrides)
    return _resolve(raw, template_env())


def policy_templates() -> list[str]:
    """Every policy document template (files starting with "_" are shared fragments)."""
    return sorted(p.name for p in IAM_TEMPLATES.glob("*.json.j2") if not p.name.startswith("_"))


def policy_name(template: str) -> str:
    return template.removesuffix(".json.j2")


def render(template: str, variables: Mapping[str, Any]) -> str:
    return template_env().get_template(template).render(variables)


def render_policies(**overrides: Any) -> dict[str, dict[str, Any]]:
    """{policy name: parsed document} for every template, rendered with realistic values."""
    variables = policy_vars(**overrides)
    return {policy_name(t): json.loads(render(t, variables)) for t in policy_templates()}


# -- wildcard check -----------------------------------------------------------
@dataclass(frozen=True)
class AllowEntry:
    policy: str
    sid: str
    field: str
    value: str
    reason: str


def load_allowlist(variables: Mapping[str, Any], path: Path = ALLOWLIST) -> list[AllowEntry]:
    env = template_env()
    entries = []
    for raw in yaml.safe_load(path.read_text()) or []:
        # "when": the entry applies only to renderings with these values.
        if any(str(variables[k]) != str(v) for k, v in (raw.get("when") or {}).items()):
            continue
        reason = str(raw.get("reason", "")).strip()
        if not reason:
            raise ValueError(f"{path.name}: entry {raw} has no reason")
        value = env.from_string(str(raw["value"])).render(variables)
        entries.append(AllowEntry(raw["policy"], raw["sid"], raw["field"], value, reason))
    return entries


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal is None:
        return []
    if isinstance(principal, str):
        return [principal]
    return [v for values in principal.values() for v in as_list(values)]


def wildcard_findings(
    policies: Mapping[str, Mapping[str, Any]], allowlist: Sequence[AllowEntry]
) -> list[str]:
    """Problems in POLICIES: unlisted wildcards, grants by exclusion, public principals, stale entries."""
    findings: list[str] = []
    used: set[AllowEntry] = set()
    index = {(e.policy, e.sid, e.field, e.value): e for e in allowlist}
    for name, doc in sorted(policies.items()):
        for n, st in enumerate(as_list(doc.get("Statement"))):
            sid = st.get("Sid") or ""
            where = f"{name} statement {sid or n}"
            if not sid:
                findings.append(f"{where}: has no Sid (the allow-list names statements by Sid)")
            allow = st.get("Effect") == "Allow"
            if allow and ("NotAction" in st or "NotResource" in st):
                findings.append(f"{where}: Allow with NotAction/NotResource grants everything not listed")
            if allow and any(p == "*" for p in _principals(st)):
                findings.append(f"{where}: Allow to Principal '*' makes it public")
            for fld in ("Action", "NotAction", "Resource", "NotResource", "Principal"):
                values = _principals(st) if fld == "Principal" else as_list(st.get(fld))
                for value in values:
                    if not isinstance(value, str) or not has_wildcard(value):
                        continue
                    entry = index.get((name, sid, fld, value))
                    if entry is None:
                        findings.append(f"{where}: wildcard {fld} {value!r} is not on the allow-list")
                    else:
                        used.add(entry)
    for entry in allowlist:
        if entry not in used and entry.policy in policies:
            findings.append(
                f"allow-list entry {entry.policy}/{entry.sid} {entry.field} {entry.value!r} matches nothing"
            )
    return findings


# -- evaluator ----------------------------------------------------------------
ContextValue = str | bool | int | Sequence[str]


@dataclass
class Request:
    action: str
    resource: str
    context: dict[str, ContextValue] = field(default_factory=dict)


ALLOW, IMPLICIT_DENY, EXPLICIT_DENY = "Allow", "ImplicitDeny", "ExplicitDeny"

_VAR = re.compile(r"\$\{([^}]+)\}")


class Unsupported(ValueError):
    """The policy uses something this evaluator does not model."""


def _context_get(context: Mapping[str, ContextValue], key: str) -> ContextValue | None:
    for k, v in context.items():
        if k.lower() == key.lower():
            return v
    return None


def substitute(pattern: str, context: Mapping[str, ContextValue]) -> str | None:
    """Replace ${var} with its context value; None when a variable is missing (no match)."""
    missing = False

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(1)
        if name in ("*", "?", "$"):
            return "\0" + name  # a literal character, escaped from glob below
        value = _context_get(context, name)
        if value is None or not isinstance(value, str):
            missing = True
            return ""
        return value.replace("*", "\0*").replace("?", "\0?")

    out = _VAR.sub(repl, pattern)
    return None if missing else out


def glob_match(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM wildcard match: '*' any run of characters (also ':' and '/'), '?' one character."""
    regex = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\0":  # escaped literal
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
        i += 1
    flags = 0 if case else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def _matches_any(
    patterns: Iterable[str], value: str, context: Mapping[str, ContextValue], *, case: bool
) -> bool:
    for p in patterns:
        s = substitute(p, context)
        if s is not None and glob_match(s, value, case=case):
            return True
    return False


def _string_op(op: str, pattern: str, value: str, context: Mapping[str, ContextValue]) -> bool:
    p = substitute(pattern, context)
    if p is None:
        return False
    if op in ("StringEquals", "ArnEquals"):
        return p.replace("\0", "") == value
    if op == "StringEqualsIgnoreCase":
        return p.replace("\0", "").lower() == value.lower()
    if op in ("StringLike", "ArnLike"):
        return glob_match(p, value)
    raise Unsupported(op)


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
}
_POSITIVE = {"StringEquals", "StringLike", "ArnEquals", "ArnLike", "StringEqualsIgnoreCase"}


def _condition_holds(operator: str, key: str, expected: Any, context: Mapping[str, ContextValue]) -> bool:
    qualifier = ""
    op = operator
    if ":" in op:
        qualifier, op = op.split(":", 1)
        if qualifier not in ("ForAllValues", "ForAnyValue"):
            raise Unsupported(operator)
    if_exists = op.endswith("IfExists")
    op = op.removesuffix("IfExists")
    wanted = [str(v) for v in as_list(expected)]
    actual = _context_get(context, key)

    if op == "Null":
        return (actual is None) == (wanted[0].lower() == "true")
    if actual is None:
        if qualifier == "ForAllValues" or if_exists:
            return True
        return op in _NEGATED
    if op == "Bool":
        if qualifier:
            raise Unsupported(operator)
        got = str(actual).lower() if not isinstance(actual, bool) else ("true" if actual else "false")
        return got in [w.lower() for w in wanted]

    negated = op in _NEGATED
    base = _NEGATED.get(op, op)
    if base not in _POSITIVE:
        raise Unsupported(operator)
    values = [str(v) for v in as_list(actual)] if not isinstance(actual, str) else [actual]

    def one(value: str) -> bool:
        hit = any(_string_op(base, w, value, context) for w in wanted)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if len(values) != 1:
        raise Unsupported(f"{operator} on multi-valued key {key} needs ForAllValues/ForAnyValue")
    return one(values[0])


def _statement_applies(st: Mapping[str, Any], req: Request) -> bool:
    if "Action" in st:
        if not _matches_any(as_list(st["Action"]), req.action, {}, case=False):
            return False
    elif "NotAction" in st:
        if _matches_any(as_list(st["NotAction"]), req.action, {}, case=False):
            return False
    else:
        raise Unsupported("statement without Action or NotAction")
    if "Resource" in st:
        if not _matches_any(as_list(st["Resource"]), req.resource, req.context, case=True):
            return False
    elif "NotResource" in st and _matches_any(
        as_list(st["NotResource"]), req.resource, req.context, case=True
    ):
        return False
    for operator, block in (st.get("Condition") or {}).items():
        for key, expected in block.items():
            if not _condition_holds(operator, key, expected, req.context):
                return False
    return True


def evaluate(policies: Iterable[Mapping[str, Any]], req: Request) -> str:
    """ALLOW, IMPLICIT_DENY or EXPLICIT_DENY for REQ under every statement of POLICIES."""
    allowed = False
    for doc in policies:
        for st in as_list(doc.get("Statement")):
            if not _statement_applies(st, req):
                continue
            if st.get("Effect") == "Deny":
                return EXPLICIT_DENY
            if st.get("Effect") == "Allow":
                allowed = True
    return ALLOW if allowed else IMPLICIT_DENY
