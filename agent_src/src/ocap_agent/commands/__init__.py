"""Sub-commands of ``ocap-agent``; each module has ``register(subparsers)``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ocap_agent import config, log


def add_sync_command(
    sub: Any,
    group: str,
    *,
    group_help: str,
    sync_help: str,
    doc: str | None,
    json_help: str,
    func: Callable[[argparse.Namespace], int],
) -> None:
    """``ocap-agent GROUP sync [--json]``: the shape shared by the spin-up steps reading a store."""
    p = sub.add_parser(group, help=group_help)
    actions = p.add_subparsers(dest=f"{group}_action", metavar="ACTION")
    actions.required = True
    s = actions.add_parser(
        "sync", help=sync_help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    s.add_argument("--json", action="store_true", help=json_help)
    s.set_defaults(func=func)


def setup_logging(cfg: config.Config) -> None:
    """The agent's JSON-lines log: logging.file, else <log_dir>/agent.jsonl."""
    log.setup(cfg.logging.level, cfg.logging.file or cfg.paths.resolved("log_dir") / "agent.jsonl")


def load_with_logging(args: argparse.Namespace) -> config.Config:
    """The config named by --config, with the agent's log set up from it."""
    cfg = config.load(args.config)
    setup_logging(cfg)
    return cfg
