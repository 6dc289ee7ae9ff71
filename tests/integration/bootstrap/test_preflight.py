"""Bad input stops bootstrap and teardown before any AWS call, with a message naming the variable."""

from __future__ import annotations

from typing import Any

import pytest

from tests import stack
from tests.integration.bootstrap.playbook_runner import env_for, playbook

CASES: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "bad CIDR": (
        "bootstrap",
        {"ocap_dcv_allowed_cidrs": ["203.0.113.0/24", "10.0.0.300/8"]},
        ["ocap_dcv_allowed_cidrs", "10.0.0.300/8"],
    ),
    "bad multipart retention": (
        "bootstrap",
        {"ocap_recordings_abort_multipart_days": 0},
        ["ocap_recordings_abort_multipart_days (0)"],
    ),
    "teardown confirming another environment": (
        "teardown",
        {"ocap_teardown_confirm": "prod"},
        ["-e ocap_teardown_confirm=tbad", "ocap_teardown_confirm is 'prod'"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_with_a_message_naming_the_variable(case: str) -> None:
    name, variables, expected = CASES[case]
    # An endpoint nothing listens on: a run that got past preflight would fail differently.
    env = env_for(f"http://127.0.0.1:{stack.free_port()}")
    run = playbook(env, name, variables={"ocap_environment": "tbad", **variables})
    assert run.returncode != 0
    for text in expected:
        assert text in run.output, run.output[-3000:]
    # Stopped in preflight: no task that talks to AWS started.
    assert "TASK [Find" not in run.output, run.output[-3000:]
