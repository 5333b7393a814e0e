#!/usr/bin/env bash
# Run once by the postgres image on an empty data directory
# (/docker-entrypoint-initdb.d): the roles of deploy/compose.yaml.
#
#   trellis_owner   owns database trellis and runs `trellis migrate`; CREATEROLE
#                   because the first migration makes trellis_writer.
#   trellis_writer  the runtime role the migrations grant to (made here already
#                   so that the login role below can join it; the migration
#                   accepts an existing one).
#   trellis_app     what `trellis serve` logs in as: a member of trellis_writer
#                   and nothing more.
#
# The passwords come from the container's environment (OWNER_PASSWORD,
# APP_PASSWORD), never from this file.
set -euo pipefail

: "${OWNER_PASSWORD:?set OWNER_PASSWORD}"
: "${APP_PASSWORD:?set APP_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$OWNER_PASSWORD" -v app_password="$APP_PASSWORD" <<'SQL'
CREATE ROLE trellis_owner LOGIN CREATEROLE PASSWORD :'owner_password';
CREATE ROLE trellis_writer NOLOGIN;
CREATE ROLE trellis_app LOGIN PASSWORD :'app_password' IN ROLE trellis_writer;
CREATE DATABASE trellis OWNER trellis_owner;
REVOKE ALL ON DATABASE trellis FROM PUBLIC;
GRANT CONNECT ON DATABASE trellis TO trellis_writer;
SQL
