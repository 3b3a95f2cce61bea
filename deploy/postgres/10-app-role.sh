#!/bin/sh
# Run by the postgres image when its data directory is first created: the application role
# that the API and workers connect as (the migrate service connects as the owner).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_role="$APP_DB_USER" -v app_password="$APP_DB_PASSWORD" <<'SQL'
CREATE ROLE :"app_role" LOGIN PASSWORD :'app_password';
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v app_role="$APP_DB_USER" -v owner="$POSTGRES_USER" -f /conveyor/app-privileges.sql
