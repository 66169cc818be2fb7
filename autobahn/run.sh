#!/usr/bin/env bash
# Runs Autobahn|Testsuite against the crate and gates on the result.
#
#   bash autobahn/run.sh [server|client|tls-server|tls-client|all]     (default: all)
#
#   server: wstest -m fuzzingclient drives examples/echo_server.rs (127.0.0.1:9002)
#   client: examples/autobahn_client.rs drives wstest -m fuzzingserver (127.0.0.1:9001)
#   tls-server, tls-client: the same over TLS (wss://127.0.0.1:9012 and :9011),
#           with a certificate made for the run by .ci/test-cert (needs openssl);
#           sections 1-10 only, unless AUTOBAHN_TLS_CASES=all (see below)
#   all:    the four; the two plain runs side by side, then the two TLS runs
#           (wstest is single-threaded and does most of the work)
#
# Installs wstest first if needed (autobahn/install.sh; see there for
# AUTOBAHN_HOME and AUTOBAHN_DEBS). Reports go to target/autobahn/reports/{server,client}
# (index.html is the human-readable report); autobahn/check.py gates on them and
# rewrites autobahn/summary-{server,client}.md.
#
# Environment:
#   AUTOBAHN_TIMEOUT          seconds each mode may take at most (default 1500; a correct
#                             peer needs about 500, a peer that stops answering about 5 per case)
#   AUTOBAHN_INSTALL_TIMEOUT  seconds the install may take at most (default 900; about 20 cold)
#   AUTOBAHN_TLS_CASES        "all" runs sections 12 and 13 (permessage-deflate) over TLS too;
#                             by default they run over plain TCP only: they are most of a
#                             mode's time (wstest compressing in Python), and compression
#                             takes no path through the TLS layer that sections 1-10 do not
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-all}
case $mode in
  server | client | tls-server | tls-client | all) ;;
  *)
    echo "usage: $0 [server|client|tls-server|tls-client|all]" >&2
    exit 2
    ;;
esac
# Sections 12 and 13 (compression) take about 8 minutes per mode, mostly
# in wstest itself; the bound leaves room for a slower machine.
limit=${AUTOBAHN_TIMEOUT:-1500}
server_port=9002 # echo_server, as in autobahn/fuzzingclient.json
fuzzer_port=9001 # wstest's fuzzing server, as in autobahn/fuzzingserver.json
tls_server_port=9012
tls_fuzzer_port=9011

log() { echo "autobahn: $*" >&2; }

# Every process started here is killed on the way out, whatever happens.
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

started=$SECONDS
# The examples build while wstest installs (mostly downloads and pip): each
# alone leaves a core idle. The build's output goes to a log, shown if it fails.
mkdir -p "$repo/target/autobahn/logs"
build_log=$repo/target/autobahn/logs/build.log
(cd "$repo" && cargo build --quiet --release --features tls --example echo_server --example autobahn_client) \
  >"$build_log" 2>&1 &
build_pid=$!
pids+=("$build_pid")
# wstest comes from the crossbario/autobahn-testsuite image when a Docker
# engine answers (AUTOBAHN_DOCKER=0 forces the local install), and otherwise
# from autobahn/install.sh. The Docker path cannot be exercised on machines
# without an engine (ours): it is kept small and follows the image's
# documented use (wstest as the entry point, specs and reports mounted).
if [[ ${AUTOBAHN_DOCKER:-auto} != 0 ]] && command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  image=${AUTOBAHN_IMAGE:-crossbario/autobahn-testsuite}
  wstest=$PWD/wstest-docker
  {
    echo '#!/usr/bin/env bash'
    echo "# wstest inside $image: specs from $repo/autobahn (as /config), reports under"
    echo "# $PWD (as /work). As a fuzzing client it joins the host's network to reach"
    echo "# the server under test on 127.0.0.1; as a fuzzing server its port is"
    echo "# published on 127.0.0.1 only."
    echo 'args=(); server=0'
    echo 'for a in "$@"; do'
    echo '  [[ $a == fuzzingserver ]] && server=1'
    echo "  [[ \$a == $repo/autobahn/* ]] && a=/config/\${a#$repo/autobahn/}"
    echo '  args+=("$a")'
    echo 'done'
    echo "if ((server)); then net=(-p 127.0.0.1:$fuzzer_port:$fuzzer_port -p 127.0.0.1:$tls_fuzzer_port:$tls_fuzzer_port); else net=(--network host); fi"
    echo "exec docker run --rm -i \"\${net[@]}\" -v \"$repo/autobahn:/config:ro\" -v \"$PWD:/work\" -w /work \\"
    echo "  --entrypoint wstest \"$image\" \"\${args[@]}\""
  } >"$wstest"
  chmod +x "$wstest"
  docker pull --quiet "$image" >/dev/null || {
    log "docker pull $image failed"
    exit 1
  }
  log "wstest from the $image image"
else
  wstest=$(timeout "${AUTOBAHN_INSTALL_TIMEOUT:-900}" bash "$repo/autobahn/install.sh" | tail -n1)
  [[ -x $wstest ]] || {
    log "installing wstest failed"
    exit 1
  }
fi
log "wstest ready ($((SECONDS - started)) s)"
wait "$build_pid" || {
  log "building the examples failed:"
  cat "$build_log" >&2
  exit 1
}
pids=()
log "examples built ($((SECONDS - started)) s)"
examples=$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/examples

# wstest writes its reports relative to its working directory ("outdir" in the specs).
work=$repo/target/autobahn
logs=$work/logs
mkdir -p "$work/reports" "$logs"
cd "$work"

# The TLS runs' certificate (ca.pem, server.pem, server.key) and specs; paths
# relative to $work, where wstest runs (in Docker too).
tls_skip=12,13
case ${AUTOBAHN_TLS_CASES:-} in
  all) tls_skip= ;;
  "") ;;
  *)
    log "AUTOBAHN_TLS_CASES must be empty or \"all\""
    exit 2
    ;;
esac
if [[ $mode == tls-* || $mode == all ]]; then
  rm -rf tls
  bash "$repo/.ci/test-cert" tls
  tls_exclude=$(python3 -c 'import json, sys; print(json.dumps([s + ".*" for s in sys.argv[1].split(",") if s]))' "$tls_skip")
  cat >fuzzingclient-tls.json <<EOF
{
  "outdir": "./reports/tls-server",
  "servers": [{"agent": "rfc6455", "url": "wss://127.0.0.1:$tls_server_port"}],
  "cases": ["*"], "exclude-cases": $tls_exclude, "exclude-agent-cases": {}
}
EOF
  cat >fuzzingserver-tls.json <<EOF
{
  "url": "wss://127.0.0.1:$tls_fuzzer_port",
  "key": "tls/server.key", "cert": "tls/server.pem",
  "outdir": "./reports/tls-client",
  "cases": ["*"], "exclude-cases": $tls_exclude, "exclude-agent-cases": {}
}
EOF
fi

port_free() {
  [[ -z $(ss -Htln "sport = :$1") ]] || {
    log "port $1 is already in use:"
    ss -tlnp "sport = :$1" >&2
    return 1
  }
}

# Waits until process $1 listens on port $2 (at most 30 s).
wait_listening() {
  local pid=$1 port=$2 i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || return 1
    [[ -n $(ss -Htln "sport = :$port") ]] && return 0
    sleep 0.1
  done
  return 1
}

# Fails if a process of ours listens anywhere but on loopback.
only_loopback() {
  local listeners
  listeners=$(ss -Htlnp | grep -E "pid=($(
    IFS='|'
    echo "${pids[*]}"
  ))," || true)
  if grep -vE '^\S+\s+\S+\s+\S+\s+(127\.0\.0\.1|\[::1\]):' <<<"$listeners" | grep -q .; then
    log "listening beyond loopback:"
    echo "$listeners" >&2
    return 1
  fi
}

# The sections the gate leaves out for mode $1 (none for plain runs).
skipped_sections() {
  if [[ $1 == tls-* ]]; then echo "$tls_skip"; fi
}

# run_server NAME PORT SPEC [ECHO_SERVER_ARGS...]: wstest -m fuzzingclient
# against echo_server, then the gate.
run_server() {
  local name=$1 port=$2 spec=$3 t0=$SECONDS pid status=0
  shift 3
  rm -rf "reports/$name"
  port_free "$port" || return 1
  "$examples/echo_server" "127.0.0.1:$port" "$@" >"$logs/$name-echo_server.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_listening "$pid" "$port" || {
    log "$name: echo_server did not start:"
    tail -n 20 "$logs/$name-echo_server.log" >&2
    return 1
  }
  only_loopback || return 1
  log "$name: wstest -m fuzzingclient against echo_server on 127.0.0.1:$port"
  timeout --kill-after=10 "$limit" "$wstest" -m fuzzingclient -s "$spec" \
    >"$logs/$name-fuzzingclient.log" 2>&1 || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ((status == 124 || status == 137)); then
    log "$name: wstest did not finish within ${limit} s (AUTOBAHN_TIMEOUT)"
  elif ((status != 0)); then
    log "$name: wstest exited with status $status:"
    tail -n 20 "$logs/$name-fuzzingclient.log" >&2
  fi
  log "$name: ran in $((SECONDS - t0)) s"
  # The gate runs (and rewrites the summary) whatever happened above.
  python3 "$repo/autobahn/check.py" "$name" "reports/$name" "$repo/autobahn/summary-$name.md" \
    --skip-sections "$(skipped_sections "$name")" && ((status == 0))
}

# run_client NAME PORT SPEC SCHEME: autobahn_client against wstest -m
# fuzzingserver, then the gate.
run_client() {
  local name=$1 port=$2 spec=$3 scheme=$4 t0=$SECONDS pid status=0
  rm -rf "reports/$name"
  port_free "$port" || return 1
  # --webport 0: no web UI (it would listen on 0.0.0.0:8080); the launcher
  # that install.sh writes binds the spec's url host (127.0.0.1) only.
  "$wstest" -m fuzzingserver -s "$spec" --webport 0 >"$logs/$name-fuzzingserver.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_listening "$pid" "$port" || {
    log "$name: wstest -m fuzzingserver did not start:"
    tail -n 20 "$logs/$name-fuzzingserver.log" >&2
    return 1
  }
  only_loopback || return 1
  log "$name: autobahn_client against wstest -m fuzzingserver on 127.0.0.1:$port"
  # The run's certificate authority, over TLS only (`client` alone makes none).
  local ca=()
  if [[ $scheme == wss ]]; then ca=("AUTOBAHN_CA_FILE=$work/tls/ca.pem"); fi
  env "${ca[@]}" timeout --kill-after=10 "$limit" "$examples/autobahn_client" \
    "$scheme://127.0.0.1:$port" >"$logs/$name-autobahn_client.log" 2>&1 || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if ((status == 124 || status == 137)); then
    log "$name: autobahn_client did not finish within ${limit} s (AUTOBAHN_TIMEOUT)"
  elif ((status != 0)); then
    log "$name: autobahn_client exited with status $status:"
    tail -n 20 "$logs/$name-autobahn_client.log" >&2
  fi
  log "$name: ran in $((SECONDS - t0)) s"
  # The gate runs (and rewrites the summary) whatever happened above.
  python3 "$repo/autobahn/check.py" "$name" "reports/$name" "$repo/autobahn/summary-$name.md" \
    --skip-sections "$(skipped_sections "$name")" && ((status == 0))
}

plain_server() { run_server server $server_port "$repo/autobahn/fuzzingclient.json"; }
tls_server() { run_server tls-server $tls_server_port fuzzingclient-tls.json --tls-cert tls/server.pem --tls-key tls/server.key; }
plain_client() { run_client client $fuzzer_port "$repo/autobahn/fuzzingserver.json" ws; }
tls_client() { run_client tls-client $tls_fuzzer_port fuzzingserver-tls.json wss; }

# Runs two of the above side by side; fails if either does.
side_by_side() {
  local a b status=0
  # Each in a subshell that kills what it started when it ends.
  (
    trap cleanup EXIT
    $1
  ) &
  a=$!
  (
    trap cleanup EXIT
    $2
  ) &
  b=$!
  wait "$a" || status=1
  wait "$b" || status=1
  return $status
}

failed=0
case $mode in
  server) plain_server || failed=1 ;;
  client) plain_client || failed=1 ;;
  tls-server) tls_server || failed=1 ;;
  tls-client) tls_client || failed=1 ;;
  all)
    # The plain runs take far longer (sections 12 and 13): they go together.
    side_by_side plain_server plain_client || failed=1
    side_by_side tls_server tls_client || failed=1
    ;;
esac
log "reports: $work/reports/ (index.html in each), logs: $logs/"
if ((failed)); then
  log "FAILED"
  exit 1
fi
log "passed"
