#!/usr/bin/env bash
# Local Airflow for the mlchaos example DAGs: source it, then e.g.
#   python -m mlchaos_orchestration.airflow.dagtest feature_pipeline --logical-date 2026-11-20 \
#     --conf '{"mlchaos": {"experiment": "nulls-amount"}}'
# or `airflow standalone` (UI on :8080). Idempotent: migrates the metadata DB and writes the
# example's sample data only when missing.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$REPO/.venv/bin:$PATH"
export MLCHAOS_HOME="${MLCHAOS_HOME:-$REPO/.mlchaos}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$MLCHAOS_HOME/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
mkdir -p "$AIRFLOW_HOME"
[ -f "$AIRFLOW_HOME/airflow.db" ] || airflow db migrate >/dev/null
python - <<'PY'
from mlchaos_orchestration.examples.locations import ExampleConfig, prepare
print("\n".join(prepare(ExampleConfig.from_env())))
PY
set +euo pipefail
