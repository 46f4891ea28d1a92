#!/bin/sh
# Runs once, when the warehouse's data volume is empty (the postgres image runs /docker-entrypoint-initdb.d).
# Creates the platform's owner role with the password from .env (so DATAPLATFORM_DATABASE_URL can name it),
# and Dagster's own role and database. `dataplatform setup-roles` (the warehouse-setup service) then creates
# the analyst role and grants each role what it needs; an existing role keeps its password.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v owner_password="$WAREHOUSE_OWNER_PASSWORD" -v dagster_password="$DAGSTER_POSTGRES_PASSWORD" <<'SQL'
create role dataplatform_owner login nosuperuser nocreatedb nocreaterole noreplication password :'owner_password';
create role dagster login nosuperuser nocreatedb nocreaterole noreplication password :'dagster_password';
create database dagster owner dagster;
revoke all on database dagster from public;
SQL
