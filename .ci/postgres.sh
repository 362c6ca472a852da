# Sourced by .ci/run: start a local PostgreSQL cluster for the storage conformance tests and export
# PEERGOS_TEST_POSTGRES (a libpq connection string) for them.
start_postgres() {
  local ver
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
    pg_createcluster "$ver" main >/dev/null
  fi
  pg_ctlcluster "$ver" main start 2>/dev/null || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
  pg_isready -h 127.0.0.1 -p 5432
  su postgres -c "psql -q -v ON_ERROR_STOP=1 -c \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='peergos') THEN CREATE ROLE peergos LOGIN SUPERUSER PASSWORD 'peergos'; END IF; END \\\$\\\$;\""
  su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='peergos_test'\" | grep -q 1 || createdb -O peergos peergos_test"
  export PEERGOS_TEST_POSTGRES="host=127.0.0.1 port=5432 dbname=peergos_test user=peergos password=peergos"
}
