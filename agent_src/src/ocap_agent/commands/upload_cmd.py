"""``ocap-agent upload SESSION_DIR`` and ``ocap-agent uploads run|status|recover``.

``upload`` prints one JSON document on stdout (the manifest, its key and
pre-signed links) and progress on stderr; the exit code says what to do next:
0 done, 2 bad input, 3 refused by S3 (bucket, permission, conflict), 4 local
disk, 75 try again later (the session stays queued).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ocap_agent import config, log, spool
from ocap_agent.upload import errors, options

# The transfer machinery (boto3, threads) is imported by the commands that use
# it: every `ocap-agent` call, `session start` at unlock included, loads this
# module to build its parser and must not pay for boto3.


def register(sub: Any) -> None:
    p = sub.add_parser("upload", help="upload one finished session folder now")
    p.add_argument("session_dir", metavar="SESSION_DIR", help="folder holding the recording (*.mkv, *.mcap)")
    p.add_argument("--bucket", help="S3 bucket (overrides upload.bucket)")
    p.add_argument("--key-prefix", help="key prefix (overrides upload.key_prefix)")
    p.add_argument("--keep-local", action="store_true", default=None, help="keep the folder after the upload")
    p.add_argument(
        "--archive", action="store_true", default=None, help="upload one stored zip instead of files"
    )
    p.set_defaults(func=run_upload)

    q = sub.add_parser("uploads", help="the upload spool: run, status, recover")
    q.add_argument("action", choices=("run", "status", "recover"))
    q.add_argument("--bucket", help="S3 bucket (overrides upload.bucket)")
    q.add_argument("--key-prefix", help="key prefix (overrides upload.key_prefix)")
    q.add_argument("--json", action="store_true", help="status: print JSON instead of a table")
    q.set_defaults(func=run_uploads)


def _has_config_file(args: argparse.Namespace) -> bool:
    return bool(args.config or os.environ.get(config.ENV_CONFIG_PATH))


def _setup(args: argparse.Namespace) -> config.Config:
    """Load the (optional) config; log JSON lines to the agent's log file when there is one."""
    cfg = config.load(args.config, required=False)
    file = cfg.logging.file
    if not file and _has_config_file(args):
        file = str(cfg.paths.resolved("log_dir") / "agent.jsonl")
    log.setup(cfg.logging.level, file or None)
    return cfg


def _fail(exc: errors.UploadError) -> int:
    print(f"ocap-agent: {exc}", file=sys.stderr)
    return exc.exit_code


def run_upload(args: argparse.Namespace) -> int:
    from ocap_agent.upload.uploader import upload_session  # noqa: PLC0415 - see the note at the imports

    cfg = _setup(args)
    try:
        opts = options.from_config(
            cfg,
            bucket=args.bucket,
            key_prefix=args.key_prefix,
            keep_local=args.keep_local,
            archive=args.archive,
            use_state_table=_has_config_file(args),
        )
        result = upload_session(Path(args.session_dir), opts)
    except errors.UploadError as exc:
        return _fail(exc)
    for ticket in spool.tickets(opts.spool_dir):  # it was queued too: nothing left to do for it
        if ticket.session_id == result.session_id:
            spool.remove(ticket)
    print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    return errors.EXIT_OK


def _human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:,.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def run_uploads(args: argparse.Namespace) -> int:
    from ocap_agent.upload import runner, s3client  # noqa: PLC0415 - see the note at the imports

    cfg = _setup(args)
    try:
        opts = options.from_config(
            cfg,
            bucket=args.bucket,
            key_prefix=args.key_prefix,
            require_bucket=args.action != "status",
            use_state_table=_has_config_file(args),
        )
        if args.action == "status":
            rows = runner.status(opts)
            if args.json:
                print(json.dumps([r.to_dict() for r in rows], indent=2))
            else:
                print(f"{'SESSION':<40} {'STATE':<16} {'DONE':>12} {'TOTAL':>12}  ERROR")
                for r in rows:
                    print(
                        f"{r.session_id:<40} {r.state:<16} {_human_size(r.bytes_done):>12} "
                        f"{_human_size(r.bytes_total):>12}  {r.last_error}"
                    )
            return errors.EXIT_OK
        client = s3client.make(opts)
        if args.action == "run":
            outcomes = runner.run(opts, client=client)
            for o in outcomes:
                print(json.dumps({"session_id": o.session_id, "status": o.status, "detail": o.detail}))
            failed = [o for o in outcomes if o.status == "failed"]
            return failed[0].exit_code if failed else errors.EXIT_OK
        actions = runner.recover(opts, client=client)
        for a in actions:
            print(json.dumps(a.to_dict()))
        return errors.EXIT_OK
    except errors.UploadError as exc:
        return _fail(exc)
