#!/usr/bin/env bash
# Set up everything `make test` / `make demo` need. Idempotent and fast when already done.
#   scripts/bootstrap.sh [--with-browser] [--with-serving]
# - .venv (python3 -m venv) with `pip install -c constraints.txt -e '.[dev]'`, re-run only when
#   pyproject.toml or constraints.txt changed (hash kept in .venv/.mlchaos-stamp);
# - Debian's PostgreSQL server binaries (apt, as root; the system cluster is not started:
#   tests start their own private servers);
# - with --with-browser: Debian's chromium (apt), for browser tests. Never `playwright install`.
# - with --with-serving: Debian's redis-server and prometheus (apt; services not started), for game days.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

with_browser=0
with_serving=0
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    --with-serving) with_serving=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { echo "bootstrap: $*"; }

venv=.venv
stamp="$venv/.mlchaos-stamp"
if [[ ! -x "$venv/bin/python" ]]; then
  say "creating $venv ($(python3 --version))"
  python3 -m venv "$venv"
fi
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
  say "installing -e '.[dev]' with constraints.txt (pyproject.toml or constraints.txt changed)"
  log="$venv/.mlchaos-install.log"
  if ! "$venv/bin/python" -m pip install -c constraints.txt -e '.[dev]' >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "bootstrap: pip install failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

apt_updated=0
apt_install() {  # apt_install PACKAGE: install a Debian package without starting its services
  if [[ $EUID -ne 0 ]]; then
    echo "bootstrap: '$1' missing; as root run: apt-get update && apt-get install -y $1" >&2
    return 1
  fi
  if [[ $apt_updated -eq 0 ]]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install $1"
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then  # deny service start-up during the install (standard Debian hook)
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null \
    || { [[ $added_policy -eq 1 ]] && rm -f "$policy"; return 1; }
  if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
}

if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  apt_install postgresql
fi

if [[ $with_browser -eq 1 ]] && ! command -v chromium >/dev/null; then
  apt_install chromium
fi

# game day (serving side): a private Redis (online features) and Prometheus (probes) on loopback
if [[ $with_serving -eq 1 ]]; then
  command -v redis-server >/dev/null || apt_install redis-server
  command -v prometheus >/dev/null || apt_install prometheus
fi

say "ready"
