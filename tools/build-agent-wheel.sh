#!/usr/bin/env bash
# Build the agent wheel the image installs: ocap_agent-<VERSION>-py3-none-any.whl.
#
#   tools/build-agent-wheel.sh [OUT_DIR]     (default: build/agent-wheel)
#
# Prints the wheel's path. The build is reproducible (fixed zip timestamps), so
# the same source gives the same bytes and the agent role only reinstalls when
# the agent actually changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/agent-wheel}
version=$(tr -d '[:space:]' < "$root/VERSION")
python=${PYTHON:-python3}
[[ -x "$root/.venv/bin/python" ]] && python=${PYTHON:-$root/.venv/bin/python}

mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A copy keeps build/ and *.egg-info out of agent_src.
cp -R "$root/agent_src/." "$work/src"
rm -rf "$work/src/build" "$work"/src/src/*.egg-info
# VERSION may be a symlink to the repository's one VERSION file.
rm -f "$work/src/VERSION"
cp "$root/VERSION" "$work/src/VERSION"
# Offline with the environment's own build backend when it is recent enough
# (agent_src asks for setuptools>=69 and wheel); else pip fetches the backend
# from the package index in an isolated build.
build() {
  SOURCE_DATE_EPOCH=315532800 "$python" -m pip wheel --quiet --no-deps \
    --disable-pip-version-check --wheel-dir "$work/dist" "$@" "$work/src" >&2
}
build --no-build-isolation 2>/dev/null || build
built="$work/dist/ocap_agent-$version-py3-none-any.whl"
if [[ ! -f "$built" ]]; then
  echo "build-agent-wheel: expected $built; VERSION says $version but the build made: $(ls "$work/dist")" >&2
  exit 1
fi
dest="$out/ocap_agent-$version-py3-none-any.whl"
if ! cmp -s "$built" "$dest"; then
  rm -f "$out"/ocap_agent-*.whl
  cp "$built" "$dest"
fi
echo "$dest"
