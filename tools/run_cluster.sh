#!/usr/bin/env bash
# make run-cluster: a local redis-server and three chat_server nodes on
# 8080-8082 sharing it (docs/PROTOCOL.md "Cluster"). Ctrl-C stops all five
# processes (by their PIDs). REDIS_PORT (6379) and BASE_PORT (8080) move them.
set -u
B=${B:-build}
REDIS_PORT=${REDIS_PORT:-6379}
BASE_PORT=${BASE_PORT:-8080}
REDIS=${RTWS_REDIS_SERVER:-redis-server}
command -v "$REDIS" >/dev/null || { echo "run-cluster: needs redis-server (apt install redis-server)"; exit 1; }
pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    exit 0
}
trap stop INT TERM EXIT
"$REDIS" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$REDIS_PORT") 2>/dev/null && break; sleep 0.1; done
for i in 0 1 2; do
    "$B/chat_server" --host 127.0.0.1 --port $((BASE_PORT + i)) \
        --redis "redis://127.0.0.1:$REDIS_PORT" &
    pids+=($!)
done
echo "rtws cluster: redis on $REDIS_PORT, nodes on $BASE_PORT-$((BASE_PORT + 2)) - Ctrl-C stops all"
wait
