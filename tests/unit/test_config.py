"""The config loader: defaults, and errors that name the bad key and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocap_agent import config
from ocap_agent.config import ConfigError


def test_empty_file_gives_working_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text("{}")
    cfg = config.load(p)
    assert cfg.recorder.command == ["ocap"]
    assert cfg.recorder.env == {"OWA_DISABLE_VERSION_CHECK": "1"}
    assert cfg.recorder.stop_grace_s == 40.0
    assert cfg.paths.resolved("sessions_dir") == Path(cfg.paths.data_dir) / "sessions"
    assert cfg.instance.instance_id == ""  # filled from IMDSv2 at run time


def test_values_are_coerced_where_natural() -> None:
    cfg = config.from_dict({"recorder": {"command": "ocap", "stop_grace_s": 5, "fps": 30}})
    assert cfg.recorder.command == ["ocap"]
    assert cfg.recorder.stop_grace_s == 5.0 and isinstance(cfg.recorder.stop_grace_s, float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"recorder": {"comand": ["ocap"]}}, "unknown config key recorder.comand"),
        ({"recordr": {}}, "unknown config key recordr"),
        ({"recorder": {"stop_grace_s": "forty"}}, "recorder.stop_grace_s: expected a number, got 'forty'"),
        ({"recorder": {"fps": 29.97}}, "recorder.fps: expected an integer, got 29.97"),
        ({"recorder": {"record_audio": "yes"}}, "recorder.record_audio: expected true or false"),
        ({"recorder": {"command": ["ocap", 3]}}, "recorder.command[1]: expected a string"),
        ({"recorder": {"env": {"A": 1}}}, "recorder.env: expected an object of strings"),
        ({"recorder": {"command": []}}, "recorder.command: expected a non-empty command"),
        ({"recorder": {"stop_grace_s": -1}}, "recorder.stop_grace_s: expected a number >= 0, got -1"),
        ({"recorder": {"start_timeout_s": 0}}, "recorder.start_timeout_s: expected a number > 0"),
        ({"recorder": {"fps": -5}}, "recorder.fps: expected a number >= 0"),
        ({"warmup": {"min_growth_bytes": 0}}, "warmup.min_growth_bytes: expected a number >= 1"),
        ({"state": {"table": 7}}, "state.table: expected a string, got 7"),
        ({"instance": {"instance_id": None}}, "instance.instance_id: expected a string, got None"),
        ({"paths": []}, "paths: expected an object"),
        ([], "config: expected an object"),
    ],
)
def test_bad_values_name_the_key_and_the_expectation(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.from_dict(data)
    assert message in str(info.value)


def test_unknown_key_error_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known: .*stop_grace_s"):
        config.from_dict({"recorder": {"grace": 1}})


def test_file_problems_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"recorder": {')
    with pytest.raises(ConfigError, match=r"not valid JSON: line 1"):
        config.load(bad)
    monkeypatch.delenv(config.ENV_CONFIG_PATH, raising=False)
    with pytest.raises(ConfigError, match="OCAP_AGENT_CONFIG"):
        config.load(None)


def test_environment_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"state": {"table": "from-env"}}))
    monkeypatch.setenv(config.ENV_CONFIG_PATH, str(p))
    assert config.load().state.table == "from-env"
