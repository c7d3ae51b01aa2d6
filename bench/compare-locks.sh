#!/usr/bin/env bash
# Lock handoff, raftkv beside etcd (issue #14 §6): a 3-node etcd 3.4 cluster, then a 3-node raftkv
# cluster, on this machine, one after the other; bench/LockBench.java runs N contenders against
# each one's leader (etcd: its v3 lock API over the JSON gateway; raftkv: /v1/locks).
#
#   bench/compare-locks.sh [contenders=16] [seconds=20]
#
# Run from the project's root after the build (mvn -B -q package -DskipTests). Needs Debian's
# etcd-server and etcd-client (apt-get install -y etcd-server etcd-client) and a JDK 17.
# Ports: etcd 13379/23379/33379 (peers +1), raftkv HTTP 28081-28083, raft 28552-28554.
set -euo pipefail
N=${1:-16}
D=${2:-20}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
for t in etcd etcdctl java; do command -v $t >/dev/null || { echo "missing $t (apt-get install -y etcd-server etcd-client)" >&2; exit 2; }; done
[ -x bin/raftkv ] && [ -d target/lib ] || { echo "build first: mvn -B -q package -DskipTests" >&2; exit 2; }
work=$(mktemp -d /tmp/raftkv-locks.XXXX)
pids=()
stop_all() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# ---- etcd
cluster="e1=http://127.0.0.1:13380,e2=http://127.0.0.1:23380,e3=http://127.0.0.1:33380"
for i in 1 2 3; do
  etcd --name e$i --data-dir "$work/etcd$i" --listen-client-urls http://127.0.0.1:${i}3379 \
    --advertise-client-urls http://127.0.0.1:${i}3379 --listen-peer-urls http://127.0.0.1:${i}3380 \
    --initial-advertise-peer-urls http://127.0.0.1:${i}3380 --initial-cluster $cluster \
    --initial-cluster-state new --initial-cluster-token locks >"$work/etcd$i.log" 2>&1 &
  pids+=($!)
done
leader=""
for _ in $(seq 60); do
  leader=$(ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:13379,127.0.0.1:23379,127.0.0.1:33379 endpoint status 2>/dev/null |
    awk -F', ' '$5 == "true" {print $1}' || true)
  [ -n "$leader" ] && break
  sleep 0.5
done
[ -n "$leader" ] || { echo "etcd elected no leader" >&2; exit 1; }
java bench/LockBench.java --target etcd --url "http://${leader#http://}" --contenders "$N" --duration "${D}s"
stop_all

# ---- raftkv
peers="n1@127.0.0.1:28552,n2@127.0.0.1:28553,n3@127.0.0.1:28554"
for i in 1 2 3; do
  bin/raftkv node --id n$i --host 127.0.0.1 --raft-port $((28551 + i)) --http-port $((28080 + i)) \
    --data-dir "$work/raftkv$i" --peers "$peers" >"$work/raftkv$i.log" 2>&1 &
  pids+=($!)
done
lead=""
for _ in $(seq 120); do
  lead=$(curl -s -m 1 http://127.0.0.1:28081/v1/cluster/status 2>/dev/null | sed -n 's/.*"leaderId":"n\([0-9]\)".*/\1/p' || true)
  [ -n "$lead" ] && break
  sleep 0.5
done
[ -n "$lead" ] || { echo "raftkv elected no leader" >&2; exit 1; }
java bench/LockBench.java --target raftkv --url "http://127.0.0.1:$((28080 + lead))" --contenders "$N" --duration "${D}s"
