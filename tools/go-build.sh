#!/usr/bin/env bash
# Build one Go command at a pinned module version into .tools/bin.
#
#   tools/go-build.sh MODULE VERSION PACKAGE OUTPUT [LDFLAGS]
#
# `go install MODULE@VERSION` refuses modules whose go.mod carries `replace`
# directives (packer does), so the module is downloaded from the module proxy,
# copied somewhere writable and built in place. A stamp next to the binary
# records what was built; a second call with the same arguments does nothing.
set -euo pipefail
module=$1 version=$2 package=$3 output=$4 ldflags=${5:-}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.tools/bin"
stamp="$bin/.$(basename "$output").stamp"
want="$module@$version $package $ldflags"
mkdir -p "$bin"
if [[ -x "$bin/$output" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
echo "building $output from $module@$version" >&2
dir=$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -R "$dir/." "$work/"
chmod -R u+w "$work"
(cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$output.tmp" "$package")
mv "$bin/$output.tmp" "$bin/$output"
printf '%s' "$want" > "$stamp"
