"""The contenders, each a command line run as its own process on the same session folder.

Every contender gets a fresh key prefix, so none finds the others' objects;
each is timed from process start to exit, and its peak memory read from
``wait4`` (the resident set of that one process).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AWS_CLI = ROOT / ".tools" / "awscli" / "bin" / "aws"
S5CMD = ROOT / ".tools" / "bin" / "s5cmd"

# The seeds' way (001): zip the session with deflate, then one boto3 upload_file of the zip.
SEED_SCRIPT = r"""
import os, sys, tempfile, zipfile, boto3
folder, bucket, key = sys.argv[1:4]
tmp = tempfile.mkdtemp(prefix="seed-zip-")
archive = os.path.join(tmp, "session.zip")
with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
    for name in sorted(os.listdir(folder)):
        zf.write(os.path.join(folder, name), name)
boto3.client("s3").upload_file(archive, bucket, key)
os.remove(archive); os.rmdir(tmp)
"""

# s3transfer doing the same job as ours (per file, parallel parts, CRC32): the library
# alternative to our own part scheduler, measured so the choice rests on numbers.
S3TRANSFER_SCRIPT = r"""
import os, sys, boto3, botocore.config
from boto3.s3.transfer import TransferConfig
from concurrent.futures import ThreadPoolExecutor
folder, bucket, prefix = sys.argv[1:4]
part, conc = int(sys.argv[4]) << 20, int(sys.argv[5])
client = boto3.client("s3", config=botocore.config.Config(max_pool_connections=conc + 4))
cfg = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc)
def one(name):
    path, key = os.path.join(folder, name), f"{prefix}/{name}"
    client.upload_file(path, bucket, key, ExtraArgs={"ChecksumAlgorithm": "CRC32"}, Config=cfg)
with ThreadPoolExecutor(4) as pool:
    list(pool.map(one, sorted(os.listdir(folder))))
"""


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    argv: list[str]
    ours: bool = False

    def available(self) -> str:
        """Empty when runnable, else why not."""
        exe = Path(self.argv[0])
        if exe.is_absolute() and not exe.exists():
            return f"{exe} is missing: run `tools/install-tools.sh bench`"
        return ""


def agent_config(work: Path, name: str, bucket: str, prefix: str, **upload: object) -> Path:
    path = work / f"agent-{prefix}-{name}.json"
    upload_cfg = {
        "bucket": bucket,
        "key_prefix": f"{prefix}/{name}",
        "keep_local": True,  # the same folder is uploaded again by the next round
        "update_state": False,
        **upload,
    }
    path.write_text(
        json.dumps({"paths": {"data_dir": str(work / f"agent-{prefix}-{name}")}, "upload": upload_cfg})
    )
    return path


def contenders(
    folder: Path,
    bucket: str,
    endpoint: str,
    prefix: str,
    *,
    part_mb: int,
    concurrency: int,
    work: Path,
    python: str,
) -> list[Contender]:
    """Every contender; the Python ones run from PYTHON (see agent_env)."""
    tuning = {"part_size_mb": part_mb, "max_concurrency": concurrency}
    ours = agent_config(work, "ours", bucket, prefix, **tuning)
    composite = agent_config(work, "ours_composite", bucket, prefix, checksum_type="COMPOSITE", **tuning)
    return [
        Contender(
            "seed",
            "seeds' way: zip (deflate) + upload_file",
            [python, "-c", SEED_SCRIPT, str(folder), bucket, f"{prefix}/seed/session.zip"],
        ),
        Contender(
            "awscli",
            "aws s3 cp --recursive (AWS CLI, pinned)",
            [
                str(AWS_CLI),
                "s3",
                "cp",
                "--recursive",
                "--only-show-errors",
                "--endpoint-url",
                endpoint,
                str(folder),
                f"s3://{bucket}/{prefix}/awscli/",
            ],
        ),
        Contender(
            "s5cmd",
            "s5cmd cp",
            [str(S5CMD), "--endpoint-url", endpoint, "cp", f"{folder}/*", f"s3://{bucket}/{prefix}/s5cmd/"],
        ),
        Contender(
            "s3transfer",
            "boto3/s3transfer upload_file per file, CRC32",
            [
                python,
                "-c",
                S3TRANSFER_SCRIPT,
                str(folder),
                bucket,
                f"{prefix}/s3transfer",
                str(part_mb),
                str(concurrency),
            ],
        ),
        Contender(
            "ours_composite",
            "ocap-agent upload, checksum_type COMPOSITE",
            [python, "-m", "ocap_agent", "--config", str(composite), "upload", str(folder)],
        ),
        Contender(
            "ours",
            "ocap-agent upload (default: FULL_OBJECT)",
            [python, "-m", "ocap_agent", "--config", str(ours), "upload", str(folder)],
            ours=True,
        ),
    ]


def env_for(endpoint: str, access: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=access,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(ROOT),
    )
    return env
