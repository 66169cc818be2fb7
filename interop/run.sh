#!/usr/bin/env bash
# Interoperability checks against peers nobody on the team wrote: Python
# `websockets` and Node `ws` as clients of our server and as servers for our
# client, a real headless Chromium on the `chat` example, and the client
# checks again through nginx as a reverse proxy. permessage-deflate is offered
# by every client and checked in both directions (`deflate`, `no-deflate`,
# `browser-deflate`). Then over TLS (peers prefixed `tls:`), with a throwaway
# CA and server certificate made by openssl for this run: Python websockets
# as client of interop_server over wss://, our client against a Python
# websockets TLS server, and headless Chromium on the chat example over
# https/wss. See interop/README.md.
#
# Run from anywhere: bash interop/run.sh
# Environment:
#   INTEROP_TIMEOUT  overall bound in seconds (default 600, installs included)
#   INTEROP_SKIP_INSTALL=1  use what is installed; install nothing
#   CHROMIUM         the browser (default /usr/bin/chromium)
# Exits non-zero if any check fails (or anything needed is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# One overall bound: the script re-runs itself under timeout(1).
if [[ -z "${INTEROP_BOUNDED:-}" ]]; then
  export INTEROP_BOUNDED=1
  exec timeout --kill-after=15 "${INTEROP_TIMEOUT:-600}" bash "$0" "$@"
fi

OUT=target/interop
LOGS=$OUT/logs
VENV=$OUT/venv
PY=$VENV/bin/python
NODE_DIR=interop
RESULTS=$OUT/results.txt
mkdir -p "$LOGS"
: >"$RESULTS"

step() { printf '\n==> %s\n' "$*"; }

# ---- everything started here is stopped here ----
PIDS=()
CERTS=
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # Bounded: up to 5 s each, then SIGKILL.
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  [[ -z "$CERTS" ]] || rm -rf "$CERTS"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# ---- install (idempotent) ----
stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

install_apt() {
  local missing=()
  [[ -x "${CHROMIUM:-/usr/bin/chromium}" ]] || missing+=(chromium)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
  command -v openssl >/dev/null || missing+=(openssl)
  if ((${#missing[@]})); then
    echo "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1 \
      || { tail -20 "$LOGS/apt.log"; return 1; }
  else
    echo "chromium, nginx and openssl present"
  fi
}

install_python() {
  local want
  want=$(sha256sum interop/requirements.txt | cut -d' ' -f1)
  if [[ -x "$PY" ]] && stamp_ok "$VENV/.requirements" "$want"; then
    echo "python venv up to date ($("$PY" -c 'import websockets; print("websockets", websockets.__version__)'))"
    return
  fi
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r interop/requirements.txt
  echo "$want" >"$VENV/.requirements"
  echo "installed $("$PY" -c 'import websockets; print("websockets", websockets.__version__)')"
}

install_node() {
  local want
  want=$(cat interop/package.json interop/package-lock.json | sha256sum | cut -d' ' -f1)
  if stamp_ok "$NODE_DIR/node_modules/.interop-stamp" "$want"; then
    echo "node_modules up to date"
    return
  fi
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$NODE_DIR/node_modules/.interop-stamp"
}

step "install"
started=$SECONDS
if [[ -z "${INTEROP_SKIP_INSTALL:-}" ]]; then
  install_apt
  install_python
  install_node
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
echo "install took $((SECONDS - started)) s"

step "build examples (release, --features tls)"
# One build serves both runs: TLS is used only when asked for (--tls-cert,
# wss://). The binaries are found where cargo puts them (CARGO_TARGET_DIR,
# build.target-dir, or ./target).
cargo build --release --locked --quiet --features tls \
  --example echo_server --example interop_server --example interop_client --example chat
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps --locked \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
EXAMPLES=$TARGET_DIR/release/examples
echo "examples in $EXAMPLES"

# ---- servers ----
# start NAME COMMAND...: runs COMMAND in the background, logs under $LOGS,
# and waits (bounded) for the ws://ADDR, wss://ADDR, http://ADDR or
# https://ADDR it prints once listening (on standard output or error); sets
# ADDR.
start() {
  local name=$1
  shift
  "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err" &
  PIDS+=($!)
  local pid=$!
  for _ in $(seq 200); do
    ADDR=$(cat "$LOGS/$name.out" "$LOGS/$name.err" 2>/dev/null | grep -m1 -oE '(wss?|https?)://[0-9.]+:[0-9]+' | sed -E 's#^[a-z]+://##' || true)
    [[ -n "$ADDR" ]] && { echo "$name listening on $ADDR"; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "$name did not start:"; cat "$LOGS/$name.err"
  return 1
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---- checks ----
# run_peer PEER COMMAND...: runs a check program, records its PASS/FAIL lines
# as "PEER" results. A program that ends without a line for some check, or
# exits non-zero without any FAIL line, counts as a failure of its own.
run_peer() {
  local peer=$1
  shift
  local log="$LOGS/$peer.log" rc=0
  echo "-- $peer"
  timeout --kill-after=5 180 "$@" >"$log" 2>"$log.err" || rc=$?
  cat "$log"
  local n_fail
  n_fail=$(grep -c '^FAIL ' "$log" || true)
  sed -nE "s/^(PASS|FAIL) ([^ :]+).*/\1 $peer \2/p" "$log" >>"$RESULTS"
  if ((rc != 0 && n_fail == 0)); then
    echo "FAIL $peer exit-status-$rc" >>"$RESULTS"
    echo "FAIL: exited with status $rc"; tail -5 "$log.err"
  fi
}

ECHO_CHECKS=(text-utf8 binary-256 length-boundaries large-1MiB large-16MiB fragmented-ping pipelined-100 ping-pong deflate no-deflate)

step "our server (interop_server, echo_server) with Python websockets and Node ws as clients"
start interop_server "$EXAMPLES/interop_server" 127.0.0.1:0
OURS=$ADDR
start echo_server "$EXAMPLES/echo_server" 127.0.0.1:0
ECHO=$ADDR
run_peer "python-client->rust-server" "$PY" interop/py_client.py "ws://$OURS"
run_peer "node-client->rust-server" node interop/node_client.js "ws://$OURS"
run_peer "python-client->echo_server" "$PY" interop/py_client.py "ws://$ECHO" "${ECHO_CHECKS[@]}"
run_peer "node-client->echo_server" node interop/node_client.js "ws://$ECHO" "${ECHO_CHECKS[@]}"

step "our client (interop_client) with Python websockets and Node ws as servers"
start py_server "$PY" interop/py_server.py 0
run_peer "rust-client->python-server" "$EXAMPLES/interop_client" "ws://$ADDR"
start node_server node interop/node_server.js 0
run_peer "rust-client->node-server" "$EXAMPLES/interop_client" "ws://$ADDR"

step "a real browser (headless Chromium) on the chat example"
start chat "$EXAMPLES/chat" 127.0.0.1:0
rm -f "$OUT/chat.png"
run_peer "chromium->chat" node interop/browser_chat.js "http://$ADDR/" "$OUT/chat.png"

step "through nginx (reverse proxy) in front of interop_server"
NGX=$PWD/$OUT/nginx
mkdir -p "$NGX"
NGINX_PORT=$(free_port)
sed -e "s#@PREFIX@#$NGX#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@UPSTREAM@#${OURS##*:}#g" \
  interop/nginx.conf.in >"$NGX/nginx.conf"
"$NGINX" -t -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$LOGS/nginx-t.log" 2>&1 \
  || { cat "$LOGS/nginx-t.log"; echo "FAIL nginx config-test" >>"$RESULTS"; }
"$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$LOGS/nginx.out" 2>"$LOGS/nginx.err" &
PIDS+=($!)
NGINX_PID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null && break
  kill -0 "$NGINX_PID" 2>/dev/null || break
  sleep 0.05
done
echo "nginx ($("$NGINX" -v 2>&1 | sed 's/.*: //')) on 127.0.0.1:$NGINX_PORT -> $OURS"
run_peer "python-client->nginx->rust-server" "$PY" interop/py_client.py "ws://127.0.0.1:$NGINX_PORT"
run_peer "node-client->nginx->rust-server" node interop/node_client.js "ws://127.0.0.1:$NGINX_PORT"

# ---- TLS ----
step "TLS: test certificates (openssl, fresh for this run)"
CERTS=$(mktemp -d "${TMPDIR:-/tmp}/rfc6455-interop-tls.XXXXXX")
# .ci/test-cert: a CA and a server certificate it signed (IP:127.0.0.1,
# IP:::1, DNS:localhost, serverAuth); server.pem is the chain to serve.
if bash .ci/test-cert "$CERTS" >"$LOGS/openssl.log" 2>&1 &&
  openssl verify -CAfile "$CERTS/ca.pem" -purpose sslserver "$CERTS/server-leaf.pem" >>"$LOGS/openssl.log" 2>&1; then
  echo "CA $CERTS/ca.pem; server certificate $CERTS/server.pem (IP:127.0.0.1, DNS:localhost), key $CERTS/server.key"
  TLS_FLAGS=(--tls-cert "$CERTS/server.pem" --tls-key "$CERTS/server.key")

  step "TLS: our server (interop_server) with Python websockets as client, over wss://"
  start tls-interop_server "$EXAMPLES/interop_server" 127.0.0.1:0 "${TLS_FLAGS[@]}"
  run_peer "tls:python-client->rust-server" env INTEROP_CA_FILE="$CERTS/ca.pem" "$PY" interop/py_client.py "wss://$ADDR"

  step "TLS: our client (interop_client) with a Python websockets TLS server, over wss://"
  start tls-py_server "$PY" interop/py_server.py 0 "${TLS_FLAGS[@]}"
  run_peer "tls:rust-client->python-server" env INTEROP_CA_FILE="$CERTS/ca.pem" "$EXAMPLES/interop_client" "wss://$ADDR"

  step "TLS: headless Chromium on the chat example over https:// and wss://"
  start tls-chat "$EXAMPLES/chat" 127.0.0.1:0 "${TLS_FLAGS[@]}"
  rm -f "$OUT/chat-tls.png"
  run_peer "tls:chromium->chat" node interop/browser_chat.js "https://$ADDR/" "$OUT/chat-tls.png"
else
  echo "cannot make the test certificates (openssl missing or failing):"
  tail -20 "$LOGS/openssl.log" 2>/dev/null || true
  echo "FAIL tls:setup certificates" >>"$RESULTS"
fi

# ---- summary ----
step "summary"
cat "$RESULTS"
passed=$(grep -c '^PASS ' "$RESULTS" || true)
failed=$(grep -c '^FAIL ' "$RESULTS" || true)
tls_passed=$(grep -c '^PASS tls:' "$RESULTS" || true)
tls_failed=$(grep -c '^FAIL tls:' "$RESULTS" || true)
echo
echo "plain: $((passed - tls_passed)) passed, $((failed - tls_failed)) failed; tls: $tls_passed passed, $tls_failed failed"
echo "interop: $passed passed, $failed failed"
[[ -s "$OUT/chat.png" ]] && echo "screenshot: $OUT/chat.png"
[[ -s "$OUT/chat-tls.png" ]] && echo "screenshot (TLS): $OUT/chat-tls.png"
((failed == 0 && passed > 0))
