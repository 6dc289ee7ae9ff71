"""A bad config stops every command before it touches the recorder, naming the key (exit 2)."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize(
    ("command", "section", "message"),
    [
        (["warmup"], {"stop_grace": 5}, "unknown config key recorder.stop_grace"),
        (
            ["session", "start"],
            {"stop_grace_s": "soon"},
            "recorder.stop_grace_s: expected a number, got 'soon'",
        ),
        (["recover"], {"command": []}, "recorder.command: expected a non-empty command"),
    ],
    ids=["unknown-key", "wrong-type", "empty-command"],
)
def test_bad_config_is_named_and_nothing_runs(make_agent, tmp_path, command, section, message) -> None:
    agent = make_agent()
    agent.config["recorder"].update(section)
    agent.write()
    res = agent.run(*command)
    assert res.returncode == 2
    assert message in res.stderr
    assert not (agent.data_dir / "sessions").exists()
    assert not (agent.data_dir / "warmup").exists()


def test_missing_and_unparsable_config_files_are_named(make_agent, tmp_path) -> None:
    agent = make_agent()
    agent.config_path.write_text("{not json")
    res = agent.run_process("warmup")
    assert res.returncode == 2 and "is not valid JSON" in res.stderr
    agent.config_path.unlink()
    res = agent.run("session", "stop")
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_no_instance_id_and_no_metadata_service_is_named_for_warmup(make_agent) -> None:
    agent = make_agent(instance_id="")
    res = agent.run("warmup", env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert res.returncode == 2
    assert "instance.instance_id: empty and the instance metadata service is disabled" in res.stderr


def test_config_check_accepts_the_agent_roles_keys(make_agent) -> None:
    agent = make_agent()
    agent.config["recorder"].update(fps=60, window_name="Game", record_audio=False, wrapper_python="py")
    agent.config["warmup"] = {"scratch_dir": "x", "min_growth_bytes": 4096}
    agent.write()
    res = agent.run("config", "show")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["recorder"]["fps"] == 60 and shown["warmup"]["min_growth_bytes"] == 4096
