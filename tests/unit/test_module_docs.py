"""Sanity checks for every module in library/, in the spirit of ``ansible-test sanity`` (validate-modules).

For each module:
- DOCUMENTATION, EXAMPLES and RETURN exist and parse as YAML (doc fragments merged);
- the documented options equal the argument_spec the module really builds (captured
  by running its main() up to AnsibleModule), with the same type, default, choices,
  required, elements, aliases and suboptions;
- option names used in mutually_exclusive / required_if / required_one_of exist;
- ``attributes`` declares check_mode and diff_mode support;
- every RETURN value has a description, ``returned`` and ``type``;
- EXAMPLES are a list of tasks, and at least one of them calls the module.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils import basic
from ansible.parsing.plugin_docs import read_docstring

from tests.integration.release import harness

LIBRARY = Path(__file__).resolve().parents[2] / "library"
MODULES = sorted(p.stem for p in LIBRARY.glob("*.py") if not p.name.startswith("_"))
SUPPORT = {"full", "partial", "none", "N/A"}


class _Captured(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


def _module_kwargs(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    def capture(self: Any, **kwargs: Any) -> None:
        raise _Captured(kwargs)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    module = harness.load(name)
    with pytest.raises(_Captured) as captured:
        module.main()
    return captured.value.kwargs


def _fragment_options(fragment: str) -> dict[str, Any]:
    """Options of a collection doc fragment such as ``amazon.aws.common.modules``.

    Resolved by import rather than through Ansible's plugin loader, whose collection
    finder depends on import order within one test process.
    """
    parts = fragment.split(".")
    assert len(parts) in (3, 4), f"doc fragment {fragment!r}: expected namespace.collection.name[.var]"
    namespace, collection, name = parts[:3]
    var = parts[3].upper() if len(parts) == 4 else "DOCUMENTATION"
    module = importlib.import_module(
        f"ansible_collections.{namespace}.{collection}.plugins.doc_fragments.{name}"
    )
    text = getattr(module.ModuleDocFragment, var, None) or "{}"  # a fragment may add only notes
    options: dict[str, Any] = (yaml.safe_load(text) or {}).get("options") or {}
    return options


def _docs(name: str) -> tuple[dict[str, Any], Any, Any]:
    data = read_docstring(str(LIBRARY / f"{name}.py"), verbose=False, ignore_errors=False)
    doc = data.get("doc")
    assert doc, f"{name}: DOCUMENTATION is missing or empty"
    doc = dict(doc)
    options = dict(doc.get("options") or {})
    fragments = doc.get("extends_documentation_fragment") or []
    for fragment in [fragments] if isinstance(fragments, str) else fragments:
        for option, spec in _fragment_options(fragment).items():
            assert option not in options, f"{name}: option {option} is documented and in fragment {fragment}"
            options[option] = spec
    doc["options"] = options
    return doc, data.get("plainexamples"), data.get("returndocs")


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    return value


def _compare(where: str, documented: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    problems = []
    if set(documented) != set(spec):
        missing = sorted(set(spec) - set(documented))
        extra = sorted(set(documented) - set(spec))
        problems.append(
            f"{where}: undocumented options {missing}, documented but not in argument_spec {extra}"
        )
    for option in sorted(set(documented) & set(spec)):
        doc, arg = documented[option] or {}, spec[option]
        here = f"{where}{option}"
        if not doc.get("description"):
            problems.append(f"{here}: no description")
        checks = {
            "type": (doc.get("type", "str"), arg.get("type", "str")),
            "default": (_norm(doc.get("default")), _norm(arg.get("default"))),
            "choices": (_norm(doc.get("choices")), _norm(arg.get("choices"))),
            "required": (bool(doc.get("required", False)), bool(arg.get("required", False))),
            "elements": (doc.get("elements"), arg.get("elements")),
            "aliases": (sorted(doc.get("aliases") or []), sorted(arg.get("aliases") or [])),
        }
        for key, (documented_value, spec_value) in checks.items():
            if documented_value != spec_value:
                problems.append(
                    f"{here}: {key} documented as {documented_value!r}, argument_spec has {spec_value!r}"
                )
        if doc.get("suboptions") or arg.get("options"):
            problems += _compare(f"{here}.", doc.get("suboptions") or {}, arg.get("options") or {})
    return problems


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_match_the_argument_spec(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    doc, _examples, _returns = _docs(name)
    kwargs = _module_kwargs(name, monkeypatch)
    assert doc.get("module") == name, f"{name}: DOCUMENTATION module: is {doc.get('module')!r}"
    assert doc.get("short_description"), f"{name}: no short_description"
    problems = _compare("", doc.get("options") or {}, kwargs["argument_spec"])
    assert not problems, "\n".join(problems)

    options = set(kwargs["argument_spec"])
    for rule in ("mutually_exclusive", "required_one_of", "required_together"):
        for group in kwargs.get(rule) or []:
            assert set(group) <= options, f"{name}: {rule} names unknown options {set(group) - options}"
    for condition in kwargs.get("required_if") or []:
        names = {condition[0], *condition[2]}
        assert names <= options, f"{name}: required_if names unknown options {names - options}"


@pytest.mark.parametrize("name", MODULES)
def test_attributes_declare_check_and_diff_mode(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    doc, _examples, _returns = _docs(name)
    attributes = doc.get("attributes") or {}
    for attribute in ("check_mode", "diff_mode"):
        assert attribute in attributes, f"{name}: attributes.{attribute} is missing"
        assert attributes[attribute].get("support") in SUPPORT, f"{name}: attributes.{attribute}.support"
    kwargs = _module_kwargs(name, monkeypatch)
    claims_check_mode = attributes["check_mode"]["support"] in {"full", "partial"}
    assert bool(kwargs.get("supports_check_mode")) == claims_check_mode, (
        f"{name}: attributes.check_mode says {attributes['check_mode']['support']}, "
        f"supports_check_mode is {kwargs.get('supports_check_mode')}"
    )


@pytest.mark.parametrize("name", MODULES)
def test_return_values_are_described(name: str) -> None:
    _doc, _examples, returns = _docs(name)
    assert returns, f"{name}: RETURN is missing or empty"

    def check(prefix: str, values: dict[str, Any]) -> None:
        for key, value in values.items():
            assert value.get("description"), f"{name}: RETURN {prefix}{key} has no description"
            assert value.get("type"), f"{name}: RETURN {prefix}{key} has no type"
            if not prefix:
                assert value.get("returned"), f"{name}: RETURN {key} has no 'returned'"
            if value.get("contains"):
                check(f"{prefix}{key}.", value["contains"])

    check("", returns)


@pytest.mark.parametrize("name", MODULES)
def test_examples_are_tasks_that_call_the_module(name: str) -> None:
    _doc, examples, _returns = _docs(name)
    tasks = yaml.safe_load(examples or "")
    assert isinstance(tasks, list) and tasks, f"{name}: EXAMPLES is not a list of tasks"
    called = [
        t for t in tasks if isinstance(t, dict) and (name in t or any(k.endswith(f".{name}") for k in t))
    ]
    assert called, f"{name}: no example calls {name}"
    for task in tasks:
        assert task.get("name"), f"{name}: an example task has no name"
