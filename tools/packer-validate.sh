#!/usr/bin/env bash
# Check the Packer template offline: `packer init` (pinned plugins from
# .tools/packer-plugins, no download) then `packer validate` with two
# placeholder-but-valid variable sets: the defaults, and every optional
# feature on (region copies with KMS keys, builder CIDRs, Fast Launch).
#
#   tools/packer-validate.sh [TEMPLATE_DIR]     (default: packer/)
#
# Exits non-zero, naming the template folder and the variable set, when a
# file is invalid. Needs ansible-playbook on PATH (the ansible provisioner
# checks for it) and the playbook the template names.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/packer}
export PACKER_PLUGIN_PATH=${PACKER_PLUGIN_PATH:-$root/.tools/packer-plugins}
export CHECKPOINT_DISABLE=1
packer=${PACKER:-$(command -v packer || echo "$root/.tools/bin/packer")}

fail() { echo "packer-validate: $*" >&2; exit 1; }
[[ -x "$packer" ]] || fail "no packer binary ($packer): run tools/install-tools.sh packer"
command -v ansible-playbook >/dev/null || fail "ansible-playbook is not on PATH: the ansible provisioner needs it (use .venv/bin)"
[[ -d "$dir" ]] || fail "no template folder $dir"

version=$(tr -d '[:space:]' < "$root/VERSION")
kms="arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
kms_eu="arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

if ! out=$("$packer" init "$dir" 2>&1); then
  fail "packer init failed for $dir (are the pinned plugins in $PACKER_PLUGIN_PATH?):"$'\n'"$out"
fi

validate() {
  local name=$1; shift
  local out
  if ! out=$("$packer" validate "$@" "$dir" 2>&1); then
    fail "$dir is invalid (variable set: $name):"$'\n'"$out"
  fi
  echo "packer-validate: $dir valid with the $name variable set"
}

validate defaults -var "version=$version"
validate all-options \
  -var "version=$version" \
  -var "environment=prod" \
  -var "aws_region=us-east-1" \
  -var "instance_type=g4dn.xlarge" \
  -var "kms_key_id=$kms" \
  -var 'ami_regions=["eu-west-1"]' \
  -var "region_kms_key_ids={\"eu-west-1\"=\"$kms_eu\"}" \
  -var 'builder_cidrs=["203.0.113.0/24"]' \
  -var "subnet_id=subnet-0123456789abcdef0" \
  -var "associate_public_ip=false" \
  -var "deprecate_after_days=0" \
  -var "fast_launch_enabled=true" \
  -var "ansible_verbosity=2"
