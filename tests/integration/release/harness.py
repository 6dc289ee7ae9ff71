"""Run a module of library/ in this process, the way ansible-playbook would, and read its result.

``ansible-playbook`` costs about two seconds per start here, so most checks call a
module's ``main()`` directly with Ansible's own test hook for module arguments;
a few tests still go through ``ansible-playbook`` to prove the wiring.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import ansible.module_utils
import botocore.loaders
import botocore.session
from ansible.module_utils.common import warnings as ansible_warnings
from ansible.module_utils.testing import patch_module_args

ROOT = Path(__file__).resolve().parents[3]

# ansible.cfg's module_utils = module_utils, for in-process imports.
if str(ROOT / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(ROOT / "module_utils"))


# Every module run builds new boto3 sessions, and each would parse the EC2 service model
# again (about a second here). The model files are read-only: share one loader per path.
botocore.session.create_loader = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)


def load(name: str) -> ModuleType:
    """Import library/NAME.py as a fresh module object."""
    spec = importlib.util.spec_from_file_location(f"library_{name}", ROOT / "library" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def warnings(result: dict[str, Any]) -> list[str]:
    """The warning texts of a module result."""
    return [w["event"]["msg"] if isinstance(w, dict) else str(w) for w in result.get("warnings", [])]


def run(
    module: ModuleType, args: dict[str, Any], *, check: bool = False, diff: bool = True
) -> dict[str, Any]:
    """Call MODULE.main() with ARGS; return its JSON result (``failed`` set on fail_json)."""
    # None stands for "not given", as `omit` does in a playbook.
    full = {k: v for k, v in args.items() if v is not None}
    full.update(_ansible_check_mode=check, _ansible_diff=diff)
    # A module process starts with no warnings; in one test process they would pile up.
    ansible_warnings._global_warnings.clear()
    ansible_warnings._global_deprecations.clear()
    out = io.StringIO()
    with patch_module_args(full), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        module.main()
    text = out.getvalue()
    try:
        result: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        sys.stderr.write(text)
        raise
    return result
