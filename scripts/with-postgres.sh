#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, when this machine has one
# installed (Debian's postgresql packages), exporting KBQA_TEST_POSTGRES_URL for the tests.
# Without PostgreSQL the command runs as is and the PostgreSQL variants of tests are skipped.
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "with-postgres: no PostgreSQL server installed; running without it" >&2
    exec "$@"
fi
port=${KBQA_TEST_PG_PORT:-54329}
dir=$(mktemp -d /tmp/kbqa-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"  # initdb refuses to run as root
    as_pg=(runuser -u postgres --)
fi
cleanup() {
    [ -f "$dir/data/postmaster.pid" ] && "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
if ! "${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null; then
    echo "with-postgres: the server did not start (port $port taken?):" >&2
    tail -n 3 "$dir/log" >&2
    exit 1
fi
export KBQA_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
"$@"
