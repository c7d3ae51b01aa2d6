#!/usr/bin/env bash
# Manual experiment (root: it mounts a 48 MB tmpfs): a 3-node cluster on 127.0.0.1 (HTTP 9081-9083)
# whose node n3 keeps its data on the tmpfs. The tmpfs is filled up under writes, then emptied; n3 is
# restarted if its process died (as a supervisor would), and the script reports how long after the
# space came back n3 had applied everything committed. Run after the build, from the repo root:
#   sudo multi-jvm/scripts/disk-full.sh .
set -u
repo=$1; cd "$repo"
base=/tmp/df; umount $base/mnt 2>/dev/null; rm -rf $base; mkdir -p $base/mnt
mount -t tmpfs -o size=48m tmpfs $base/mnt
peers="n1@127.0.0.1:3552,n2@127.0.0.1:3553,n3@127.0.0.1:3554"
export RAFTKV_JAVA_OPTS="${RAFTKV_JAVA_OPTS:-} -XX:ErrorFile=$base/hs_err_%p.log"  # the SIGBUS report, out of the repo
pids=()
for i in 1 2 3; do
  d=$base/n$i; [ $i = 3 ] && d=$base/mnt/n3
  bin/raftkv node --id n$i --host 127.0.0.1 --raft-port $((3551+i)) --http-port $((9080+i)) --data-dir $d --peers $peers > $base/n$i.log 2>&1 &
  pids+=($!)
done
trap 'for p in "${pids[@]}"; do kill -9 $p 2>/dev/null; done; sleep 1; umount $base/mnt 2>/dev/null' EXIT
for _ in $(seq 120); do curl -s -m1 http://127.0.0.1:9081/health | grep -q '"healthy":true' && break; sleep 0.5; done
val=$(head -c 4000 /dev/zero | tr '\0' 'x')
put() { curl -s -o /dev/null -w '%{http_code}' -m 5 -X PUT --data-binary "$val" http://127.0.0.1:9081/v1/kv/$1; }
for k in $(seq 1 200); do put k$k >/dev/null; done
echo "$(date +%T) 200 writes; n3: $(curl -s -m1 http://127.0.0.1:9083/v1/cluster/status | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["role"], s["appliedIndex"])')"
dd if=/dev/zero of=$base/mnt/filler bs=64k 2>/dev/null; df -h $base/mnt | tail -1
ok=0; fail=0
for k in $(seq 201 3200); do c=$(put k$k); [ "$c" = 200 ] && ok=$((ok+1)) || fail=$((fail+1)); done
echo "$(date +%T) disk of n3 full: 3000 more writes through n1: $ok ok, $fail failed"
echo "  n3 health: $(curl -s -m2 http://127.0.0.1:9083/health)"
echo "  n3 log: $(grep -c -i 'persist\|Failed to persist' $base/n3.log) persist-failure lines, $(grep -c 'cannot read its journal' $base/n3.log) failed recoveries"
rm -f $base/mnt/filler; freed=$(date +%s.%N); echo "$(date +%T) space freed"
if ! kill -0 ${pids[2]} 2>/dev/null; then
  echo "  n3 process is gone: $(grep -m1 -o 'SIGBUS[^,]*' $base/n3.log || tail -1 $base/n3.log); restarting it as a supervisor would"
  bin/raftkv node --id n3 --host 127.0.0.1 --raft-port 3554 --http-port 9083 --data-dir $base/mnt/n3 --peers $peers >> $base/n3.log 2>&1 &
  pids[2]=$!
fi
lead=$(curl -s -m1 http://127.0.0.1:9081/v1/cluster/status | python3 -c 'import json,sys; print(json.load(sys.stdin)["commitIndex"])')
for _ in $(seq 600); do
  a=$(curl -s -m1 http://127.0.0.1:9083/v1/cluster/status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["appliedIndex"])' 2>/dev/null)
  [ -n "$a" ] && [ "$a" -ge "$lead" ] && break; sleep 0.2
done
echo "$(date +%T) n3 applied ${a:-?} of commit $lead, $(python3 -c "import time; print(round(time.time()-$freed,1))") s after space came back"
echo "  n3 health: $(curl -s -m2 http://127.0.0.1:9083/health)"
grep -E "Reopened|recovered|cannot read its journal|Cannot reopen|cut short|raftkv:" $base/n3.log | cut -c1-220 | tail -6
