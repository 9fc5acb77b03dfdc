#!/usr/bin/env bash
# Runs the Kafka-protocol test broker (tansu) for the Kafka variants of the
# tests: `make test` starts it, points NOVALOG_KAFKA_BROKERS at it and stops it.
#
#   scripts/broker.sh start    start in the background; returns once the port
#                              accepts connections (fails with the log tail)
#   scripts/broker.sh stop     kill it and delete its data
#   scripts/broker.sh status   exit 0 if it runs, 1 if not
#
# Storage is SQLite in a fresh temp dir per start: durable like a real broker
# (tansu's memory:// storage is not what we want to test against), and gone
# after `stop`, so every run starts from an empty cluster.
#
# Environment:
#   NOVALOG_CACHE                cache root (default ~/.cache/novalog); the
#                                binary is $NOVALOG_CACHE/tansu/bin/tansu
#   NOVALOG_BROKER_PORT          listen port on 127.0.0.1 (default 9092)
#   NOVALOG_BROKER_START_TIMEOUT seconds to wait for the port (default 60)
set -euo pipefail

cache="${NOVALOG_CACHE:-$HOME/.cache/novalog}"
tansu="$cache/tansu/bin/tansu"
host=127.0.0.1
port="${NOVALOG_BROKER_PORT:-9092}"
# One run directory per port: brokers on different ports never share a pid file.
run_dir="$cache/broker-$port"
pid_file="$run_dir/tansu.pid"
log_file="$run_dir/tansu.log"
# Holds the path of the current temp data dir, so `stop` finds it.
data_ref="$run_dir/data-dir"
start_timeout="${NOVALOG_BROKER_START_TIMEOUT:-60}"

running_pid() {
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid="$(cat "$pid_file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

fail() {
    echo "broker.sh: $*" >&2
    if [[ -f "$log_file" ]]; then
        echo "--- last lines of $log_file ---" >&2
        tail -n 40 "$log_file" >&2
    fi
    exit 1
}

remove_data() {
    if [[ -f "$data_ref" ]]; then
        local dir
        dir="$(cat "$data_ref")"
        # Only ever delete what `start` created.
        if [[ "$dir" == */novalog-tansu.* && -d "$dir" ]]; then
            rm -rf -- "$dir"
        fi
        rm -f -- "$data_ref"
    fi
}

start() {
    local pid
    if pid="$(running_pid)"; then
        echo "tansu already running (pid $pid) on $host:$port"
        return 0
    fi
    [[ -x "$tansu" ]] || fail "no tansu binary at $tansu (build it with: cargo install tansu --root $cache/tansu)"
    if port_open; then
        fail "$host:$port is already taken by another process"
    fi
    mkdir -p "$run_dir"
    remove_data
    local data
    data="$(mktemp -d "${TMPDIR:-/tmp}/novalog-tansu.XXXXXX")"
    echo "$data" >"$data_ref"
    # tansu resolves sqlite:// paths against its working directory.
    (
        cd "$data"
        exec "$tansu" broker \
            --cluster-id novalog-test \
            --listener-url "tcp://$host:$port" \
            --advertised-listener-url "tcp://$host:$port" \
            --storage-engine "sqlite://tansu.db" \
            </dev/null >"$log_file" 2>&1
    ) &
    pid=$!
    echo "$pid" >"$pid_file"

    local waited=0
    until port_open; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f -- "$pid_file"
            remove_data
            fail "tansu exited during start"
        fi
        if ((waited >= start_timeout * 10)); then
            stop >/dev/null 2>&1 || true
            fail "tansu did not listen on $host:$port within ${start_timeout}s"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "tansu running (pid $pid) on $host:$port, data in $data, log in $log_file"
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid" 2>/dev/null || true
        local waited=0
        while kill -0 "$pid" 2>/dev/null; do
            if ((waited >= 100)); then
                kill -9 "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        echo "tansu stopped (pid $pid)"
    else
        echo "tansu not running"
    fi
    rm -f -- "$pid_file"
    remove_data
}

status() {
    local pid
    if pid="$(running_pid)"; then
        if port_open; then
            echo "tansu running (pid $pid) on $host:$port"
        else
            echo "tansu running (pid $pid) but $host:$port is not accepting connections"
        fi
        return 0
    fi
    echo "tansu not running"
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
