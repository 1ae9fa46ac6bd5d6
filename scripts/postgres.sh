#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: Debian's PostgreSQL 15 (installed with apt-get,
# pinned, when missing), a fresh cluster in a temporary folder, owned by an unprivileged user
# (the `postgres` account when run as root: initdb refuses root), listening on 127.0.0.1 only,
# on a free port, with trust authentication (loopback, test data only).
#   scripts/postgres.sh start DIR   starts a cluster in DIR (which must not exist); prints its URL
#   scripts/postgres.sh stop DIR    stops it (immediately) and removes DIR
set -euo pipefail
PG_MAJOR=15
PG_VERSION="15.18-0+deb12u1"
bin="/usr/lib/postgresql/$PG_MAJOR/bin"
cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    if [ ! -x "$bin/initdb" ]; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        $sudo apt-get update -q >&2
        version="$PG_VERSION"
        if ! apt-cache madison "postgresql-$PG_MAJOR" | awk '{print $3}' | grep -qxF "$PG_VERSION"; then
            version="$(apt-cache policy "postgresql-$PG_MAJOR" | awk '/Candidate:/ {print $2}')"
            echo "!!! postgresql-$PG_MAJOR $PG_VERSION is gone from the archive; installing $version !!!" >&2
        fi
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
            "postgresql-$PG_MAJOR=$version" >&2
    fi
    [ ! -e "$dir" ] || { echo "$dir exists" >&2; exit 1; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    chmod 700 "$dir"
    as_owner "$bin/initdb" --pgdata="$dir/data" --username=sworn --auth=trust \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://sworn@127.0.0.1:$port/postgres"
    ;;
stop)
    if [ -d "$dir/data" ]; then
        as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode=immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
