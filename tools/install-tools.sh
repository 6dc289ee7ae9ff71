#!/usr/bin/env bash
# Install every pinned non-Python tool into .tools/: Packer and its plugins,
# the local S3 server (versitygw), the local ACME CA (Pebble and its DNS test
# server). Idempotent: each build is stamped and skipped when already done.
#
#   tools/install-tools.sh [packer|servers|bench|all]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=tools/versions.env
source "$here/versions.env"
build="$here/go-build.sh"
what=${1:-all}

install_servers() {
  "$build" github.com/versity/versitygw "v$VERSITYGW_VERSION" ./cmd/versitygw versitygw
  "$build" github.com/letsencrypt/pebble/v2 "v$PEBBLE_VERSION" ./cmd/pebble pebble
  "$build" github.com/letsencrypt/pebble/v2 "v$PEBBLE_VERSION" ./cmd/pebble-challtestsrv pebble-challtestsrv
}

install_packer() {
  "$build" github.com/hashicorp/packer "v$PACKER_VERSION" . packer
  # The plugin's source says prerelease "dev"; clear it so the binary reports
  # exactly the pinned version and `required_plugins` matches it.
  "$build" github.com/hashicorp/packer-plugin-amazon "v$PACKER_PLUGIN_AMAZON_VERSION" . packer-plugin-amazon \
    "-X github.com/hashicorp/packer-plugin-amazon/version.VersionPrerelease="
  "$build" github.com/hashicorp/packer-plugin-ansible "v$PACKER_PLUGIN_ANSIBLE_VERSION" . packer-plugin-ansible \
    "-X github.com/hashicorp/packer-plugin-ansible/version.VersionPrerelease="
  export PACKER_PLUGIN_PATH="$root/.tools/packer-plugins"
  export CHECKPOINT_DISABLE=1
  local name version
  for name in amazon ansible; do
    version=PACKER_PLUGIN_${name^^}_VERSION
    version=${!version}
    local dest="$PACKER_PLUGIN_PATH/github.com/hashicorp/$name/packer-plugin-${name}_v${version}_x5.0_linux_amd64"
    if [[ ! -x "$dest" || "$root/.tools/bin/packer-plugin-$name" -nt "$dest" ]]; then
      local staged="$root/.tools/stage/packer-plugin-${name}_v${version}_x5.0_linux_amd64"
      mkdir -p "$(dirname "$staged")"
      cp "$root/.tools/bin/packer-plugin-$name" "$staged"
      "$root/.tools/bin/packer" plugins install --path "$staged" "github.com/hashicorp/$name" >&2
    fi
  done
}

install_bench() {
  "$build" github.com/peak/s5cmd/v2 "v$S5CMD_VERSION" . s5cmd
  # The AWS CLI pins its own botocore, so it lives in a venv of its own.
  local venv="$root/.tools/awscli"
  if [[ ! -x "$venv/bin/aws" || "$(cat "$venv/.stamp" 2>/dev/null)" != "$AWSCLI_VERSION" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "awscli==$AWSCLI_VERSION"
    printf '%s' "$AWSCLI_VERSION" > "$venv/.stamp"
  fi
}

case "$what" in
  servers) install_servers ;;
  packer) install_packer ;;
  bench) install_bench ;;
  all) install_servers; install_packer ;;
  *) echo "usage: $0 [packer|servers|bench|all]" >&2; exit 2 ;;
esac
