"""``ocap-agent``: a thin command line over plain functions.

Each command module exposes ``register(subparsers)``, which adds its
sub-command(s) and sets ``func`` (taking the parsed args, returning an exit
code). Adding a command means adding its module to COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ocap_agent import __version__
from ocap_agent.config import ENV_CONFIG_PATH, ConfigError

COMMAND_MODULES: tuple[str, ...] = (
    "ocap_agent.commands.config_cmd",
    "ocap_agent.commands.warmup_cmd",
    "ocap_agent.commands.session_cmd",
    "ocap_agent.commands.recover_cmd",
    "ocap_agent.commands.certs_cmd",
    "ocap_agent.commands.kiosk_cmd",
    "ocap_agent.commands.upload_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocap-agent",
        description="Recording workstation agent: warm-up, sessions, upload, certificates, kiosk user.",
    )
    parser.add_argument("--version", action="version", version=f"ocap-agent {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None,
        help=f"config file (JSON); default: ${ENV_CONFIG_PATH}",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"ocap-agent: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
