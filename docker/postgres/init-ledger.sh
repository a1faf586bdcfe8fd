#!/usr/bin/env bash
# Creates the mlchaos ledger role and database next to Airflow's metadata DB. Run once by the
# postgres image on an empty data directory (/docker-entrypoint-initdb.d). The password is passed
# as a psql variable and quoted by psql (:'name'), so any character in it is safe.
#   env: MLCHAOS_LEDGER_PASSWORD (required), MLCHAOS_LEDGER_USER / MLCHAOS_LEDGER_DB (default
#   mlchaos), POSTGRES_USER / POSTGRES_DB (set by the image: the superuser to connect as).
set -euo pipefail

: "${MLCHAOS_LEDGER_PASSWORD:?MLCHAOS_LEDGER_PASSWORD is not set}"
ledger_user="${MLCHAOS_LEDGER_USER:-mlchaos}"
ledger_db="${MLCHAOS_LEDGER_DB:-mlchaos}"

psql -v ON_ERROR_STOP=1 --no-psqlrc \
  --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
  -v ledger_user="$ledger_user" -v ledger_db="$ledger_db" \
  -v ledger_password="$MLCHAOS_LEDGER_PASSWORD" <<'SQL'
CREATE ROLE :"ledger_user" LOGIN PASSWORD :'ledger_password';
CREATE DATABASE :"ledger_db" OWNER :"ledger_user";
REVOKE ALL ON DATABASE :"ledger_db" FROM PUBLIC;
SQL
