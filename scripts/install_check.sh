#!/usr/bin/env bash
# Install check: build the wheel, install it into fresh virtualenvs OUTSIDE the repository and use
# it as a user would (tests/e2e/test_wheel_install.py, tests/e2e/test_walkthrough.py).
#   scripts/install_check.sh [--keep]      (`make install-check`; --keep leaves the work folder)
# 1. the wheel: `pip wheel --no-deps` of a copy of the sources (setuptools from PyPI through
#    build isolation);
# 2. venv "pinned": the wheel with [all] (Airflow, Dagster, GX, scikit-learn for the demo) and
#    constraints.txt, plus the Slack provider the user's DAG alerts through;
# 3. venv "lowest": an existing deployment at the lowest Airflow and Dagster the extras declare
#    ($LOWEST_AIRFLOW, $LOWEST_DAGSTER; other packages at constraints.txt's pins where those
#    allow them), then `pip install 'WHEEL[airflow,dagster]'` WITHOUT constraints, as a user
#    would: the deployment's Airflow and Dagster must stay in place (checked here and by the test);
# 4. the tests, run by the repository's .venv, driving the two venvs' console scripts.
# Only package registries are used; pip's cache (~/.cache/pip) makes a second run fast.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LOWEST_AIRFLOW=3.2.0
LOWEST_DAGSTER=1.13.0
# pins of constraints.txt left to pip for the lowest venv: Airflow's and Dagster's own packages,
# and what Airflow 3.2.0 itself excludes (aiosqlite<0.22, starlette through its FastAPI range).
# Unconstrained, pip pairs Airflow 3.2.0 with a FastAPI it cannot start its execution API on.
LOWEST_UNPINNED='^(apache-airflow|dagster|aiosqlite|starlette)'

keep=0
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install-check: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { echo "install-check: $*"; }
work=$(mktemp -d "${TMPDIR:-/tmp}/mlchaos-install-check.XXXXXX")
if [[ $keep -eq 0 ]]; then trap 'rm -rf "$work"' EXIT; else say "work folder kept: $work"; fi
t_start=$SECONDS

step() {  # step NAME LOG COMMAND...: run quietly into LOG; its tail and a failure when it fails
  local name=$1 log=$2 t0=$SECONDS
  shift 2
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "install-check: $name failed (log: $log)" >&2
    exit 1
  fi
  say "$name: $((SECONDS - t0)) s"
}

# built from a copy of the sources (tracked and new files, none that git ignores): an in-tree build
# writes build/ into the repository, which two builds at once would share
mkdir "$work/src"
git ls-files -z -co --exclude-standard \
  | tar --null -T - --ignore-failed-read -cf - | tar -xf - -C "$work/src"
step "wheel" "$work/wheel.log" .venv/bin/python -m pip wheel --no-deps -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/mlchaos_orchestration-*.whl)

step "venv pinned" "$work/pinned.log" bash -c "
  python3 -m venv '$work/pinned' &&
  '$work/pinned/bin/python' -m pip install -c '$PWD/constraints.txt' \
    '$wheel[all]' apache-airflow-providers-slack"

grep -v -i -E "$LOWEST_UNPINNED" constraints.txt >"$work/lowest-constraints.txt"
step "venv lowest: Airflow $LOWEST_AIRFLOW + Dagster $LOWEST_DAGSTER" "$work/lowest.log" bash -c "
  python3 -m venv '$work/lowest' &&
  '$work/lowest/bin/python' -m pip install -c '$work/lowest-constraints.txt' \
    'apache-airflow==$LOWEST_AIRFLOW' apache-airflow-providers-slack \
    'dagster==$LOWEST_DAGSTER' 'dagster-webserver==$LOWEST_DAGSTER'"
step "venv lowest: the wheel with [airflow,dagster]" "$work/lowest-wheel.log" \
  "$work/lowest/bin/python" -m pip install "$wheel[airflow,dagster]"
for want in "apache-airflow==$LOWEST_AIRFLOW" "dagster==$LOWEST_DAGSTER"; do
  probe="from importlib.metadata import version; print(version('${want%%==*}'))"
  have=$("$work/lowest/bin/python" -c "$probe")
  if [[ "$have" != "${want##*==}" ]]; then
    echo "install-check: installing the wheel changed $want to $have" >&2
    exit 1
  fi
done
say "Airflow $LOWEST_AIRFLOW and Dagster $LOWEST_DAGSTER stayed in place"

export MLCHAOS_WHEEL_VENV="$work/pinned" MLCHAOS_LOWEST_VENV="$work/lowest"
export MLCHAOS_LOWEST_AIRFLOW="$LOWEST_AIRFLOW" MLCHAOS_LOWEST_DAGSTER="$LOWEST_DAGSTER"
t0=$SECONDS
rc=0
.venv/bin/python -m pytest -q -p no:cacheprovider --timeout 1500 --durations=12 \
  tests/e2e/test_wheel_install.py tests/e2e/test_walkthrough.py || rc=$?
say "tests: $((SECONDS - t0)) s (exit $rc); install-check total: $((SECONDS - t_start)) s"
if [[ $rc -eq 5 ]]; then echo "install-check: FAILED, no tests ran" >&2; fi
exit $rc
