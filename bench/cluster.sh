#!/usr/bin/env bash
# bench/cluster.sh - the router's Redis engine next to one memory node.
#
#   bash bench/cluster.sh                      # 10,000 subscribers, 5 s windows
#   BENCH_CLUSTER_SUBS=300 BENCH_CLUSTER_SECS=2 bash bench/cluster.sh   # small
#
# Starts a redis-server (appendonly yes, appendfsync no) on a free 127.0.0.1
# port, three bench/peers/rtws_fanout nodes on it (--redis) and one without
# Redis (the memory engine), all on ports the OS picks, and stops them by PID.
# Then, with bench/loadgen --mode fanout (every delivery checked: in order,
# once):
#   1. latency: 1 subscriber, 1 publish in flight: the publish-to-delivery
#      p50/p99 with the publisher on node A and the subscriber on node B
#      (cross-node), both on node A, and both on the memory node;
#   2. fan-out: SUBS subscribers spread over the three nodes (publisher on
#      node A, 16 publishes in flight) vs SUBS subscribers on the memory node:
#      deliveries/s.
# Prints the figures with the commands that made them and the machine's
# cores (Redis, the nodes and the load generator share them).
set -u
cd "$(dirname "$0")/.." || exit 1
B=build/bench_cluster
SUBS=${BENCH_CLUSTER_SUBS:-10000}
SECS=${BENCH_CLUSTER_SECS:-5}
WARM=${BENCH_CLUSTER_WARMUP:-1}
REDIS=${RTWS_REDIS_SERVER:-/usr/bin/redis-server}
mkdir -p "$B"
[ -x "$REDIS" ] || { echo "cluster: no redis-server ($REDIS): skipped"; exit 0; }
gcc -std=c99 -O2 -Wall -Wextra bench/loadgen.c -o "$B/loadgen" || exit 1
gcc -std=c99 -O2 -Wall -Wextra bench/peers/rtws_fanout.c -o "$B/rtws_fanout" || exit 1

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_node OUTVAR [REDIS_URL]: a node on an OS-chosen port
start_node() {
    local log="$B/node_$RANDOM.log" i
    "$B/rtws_fanout" 0 ${2:+"$2"} >"$log" 2>&1 &
    pids+=($!)
    for i in $(seq 100); do
        if grep -q '^listening on' "$log"; then
            printf -v "$1" '%s' "$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)/\1/p' "$log")"
            return 0
        fi
        sleep 0.05
    done
    echo "cluster: a node did not start (see $log)"; exit 1
}

rport=$(free_port)
rdir=$(mktemp -d "$B/redis.XXXXXX")
"$REDIS" --port "$rport" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync no \
    --dir "$rdir" --daemonize no >/dev/null 2>&1 &
pids+=($!)
for i in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && break; sleep 0.05; done
url="redis://127.0.0.1:$rport"
start_node A "$url"; start_node N2 "$url"; start_node N3 "$url"; start_node M
ulimit -n "$((SUBS + 1000))" 2>/dev/null || true
echo "machine: $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)); redis-server $("$REDIS" --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') appendfsync no"
echo "nodes: A=$A B=$N2 C=$N3 (Redis engine), memory node M=$M"

# run LABEL ARGS...: loadgen, then the lines that carry the figures
run() {
    local label=$1; shift
    echo "== $label: $B/loadgen $*"
    "$B/loadgen" "$@" 2>&1 | grep -E '^fanout: (publish to its last|[0-9]+ subscribers,|delivery latency)|error|capped'
}
L="--mode fanout --conns 1 --pipeline 1 --warmup $WARM --duration $SECS"
run "latency, publisher on node A, subscriber on node B (cross-node)" $L --ports "$N2" --pub-port "$A"
run "latency, publisher and subscriber on node A (one Redis node)" $L --ports "$A" --pub-port "$A"
run "latency, publisher and subscriber on the memory node" $L --port "$M"
F="--mode fanout --conns $SUBS --pipeline 16 --warmup $WARM --duration $SECS"
run "fan-out, $SUBS subscribers over nodes A, B, C (publisher on A)" $F --ports "$A,$N2,$N3" --pub-port "$A"
run "fan-out, $SUBS subscribers on the memory node" $F --port "$M"
rm -rf "$rdir"
