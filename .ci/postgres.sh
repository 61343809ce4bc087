#!/usr/bin/env bash
# Install (Debian's postgresql), start PostgreSQL on loopback and create a test database.
#
# Prints the line
#   export RECSEEK_TEST_POSTGRES_URL=postgresql+psycopg://recseek:recseek@127.0.0.1:5432/recseek_test
# and, when sourced, also exports it. Needs root (apt-get, pg_ctlcluster).
# Safe to source: it never exits the calling shell; it returns non-zero on failure.

_recseek_pg_main() {
  local db=recseek_test user=recseek password=recseek port ver
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "installing postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
    } || { echo "apt-get install postgresql failed" >&2; return 1; }
  fi
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if [ -z "$ver" ]; then echo "no PostgreSQL version found under /usr/lib/postgresql" >&2; return 1; fi
  if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$ver main"; then
    pg_createcluster "$ver" main >/dev/null || { echo "pg_createcluster $ver main failed" >&2; return 1; }
  fi
  # loopback only
  pg_conftool "$ver" main set listen_addresses 'localhost' >/dev/null 2>&1 || true
  if ! pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $4}' | grep -q online; then
    pg_ctlcluster "$ver" main start || { echo "pg_ctlcluster $ver main start failed" >&2; return 1; }
  fi
  port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
  local i
  for i in $(seq 1 30); do
    if su postgres -c "psql -p $port -qtAc 'select 1'" >/dev/null 2>&1; then break; fi
    sleep 1
  done
  su postgres -c "psql -p $port -qtAc \"select 1 from pg_roles where rolname='$user'\"" | grep -q 1 ||
    su postgres -c "psql -p $port -qc \"create role $user login password '$password'\"" >/dev/null ||
    { echo "cannot create role $user" >&2; return 1; }
  su postgres -c "psql -p $port -qtAc \"select 1 from pg_database where datname='$db'\"" | grep -q 1 ||
    su postgres -c "createdb -p $port -O $user $db" ||
    { echo "cannot create database $db" >&2; return 1; }
  RECSEEK_TEST_POSTGRES_URL="postgresql+psycopg://$user:$password@127.0.0.1:$port/$db"
  export RECSEEK_TEST_POSTGRES_URL
  echo "export RECSEEK_TEST_POSTGRES_URL=$RECSEEK_TEST_POSTGRES_URL"
}

_recseek_pg_main
