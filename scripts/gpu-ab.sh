#!/usr/bin/env bash
# Flag sets side by side on one GPU, timed in alternation (benchmarks/gpu_ab.py): how the
# 2026-11-28 rows of docs/presets.md were measured. Runs on the GPU machine from a staging
# folder that holds this script, gpu_ab.py, gpu_presets.py (its log parsing), lab/ (a copy of gptoss_lab; only the cross-check needs it) and, as device calls
# bring them one by one, scripts/gpu-bundle.sh's parts plus models.tar.xz (models/gpt-oss-20b
# and o200k_base.tiktoken):
#
#   gpu-ab.sh unpack            (detached) unpack each part as its marker PARTS/ok.NN appears,
#                               extras once PARTS/ok.x does; touch PARTS/UNPACKED; compile bytecode
#   gpu-ab.sh go SECONDS        wait for UNPACKED, start the phases detached, watch them
#   gpu-ab.sh watch SECONDS     print the summary lines until the phases end or SECONDS pass
#   gpu-ab.sh collect DIR       pack the results (server logs included) into DIR
#
# The device calls that bring the parts and run it: docs/presets.md, H100 section, "2026-12-07".
#
# Phase A: the preset (P), the vLLM recipe (R) and, where memory allows (>= 120 GB), the preset
# plus one recipe flag (S: --stream-interval 20, C: --max-cudagraph-capture-size 2048); b1 and c64
# in three alternating rounds, c256 for P and R, then lab.bench vs `vllm bench serve` on P.
# Phase B: what phase A could not hold, one c64 run each. On 2026-11-28 (H200) phase A ran with
# `--stagger kv` (then the default): C failed to start; gpu_ab.py now waits for each server to be ready.
#
# AB_PLAN=start (one H100, 2026-12-07): once the bytecode is compiled (PARTS/COMPILED), phase S starts
# the lab flag set L alone on the fresh machine and stops it (the cold start); phase A starts L again
# (compile caches kept: the warm start, alone), then P and R beside it (each launched once the one
# before has its KV cache, --stagger kv), and times b1 and c64 of all
# three in three alternating rounds (b1: L and P only). NPARTS (default 3) is how many bundle parts there are.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PARTS=${PARTS:-/tmp/parts}
RES=${RES:-/tmp/ab}
mkdir -p "$RES"
export PYTHONPATH=/tmp/site:$HERE/lab PYTHONUNBUFFERED=1 TIKTOKEN_ENCODINGS_BASE=/tmp/tiktoken
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 GPTOSS_LAB_CACHE_DIR=/tmp/lab-cache

P="--async-scheduling"
R="--async-scheduling --no-enable-prefix-caching --max-num-batched-tokens 8192 --max-cudagraph-capture-size 2048 --stream-interval 20"
S="--async-scheduling --stream-interval 20"
C="--async-scheduling --max-cudagraph-capture-size 2048"
N="--async-scheduling --no-enable-prefix-caching"
L="--async-scheduling --max-cudagraph-capture-size 64"

wait_for() { while [ ! -e "$1" ]; do sleep 0.3; done; }

unpack() {
  local t0=$SECONDS i
  for i in $(seq -f %02g 0 $((${NPARTS:-3} - 1))); do wait_for "$PARTS/ok.$i"; cat "$PARTS/bundle.tar.xz.part$i"; done |
    xz -dc -T0 | tar xf - -C /tmp
  echo "bundle unpacked at +$((SECONDS - t0)) s"
  wait_for "$PARTS/ok.x"
  xz -dc "$PARTS/extras.tar.xz" | tar xf - -C /tmp
  mkdir -p /tmp/models /tmp/tiktoken /tmp/mt
  xz -dc "$PARTS/models.tar.xz" | tar xf - -C /tmp/mt
  cp -r /tmp/mt/models/. /tmp/models/ && cp /tmp/mt/o200k_base.tiktoken /tmp/tiktoken/
  echo "all unpacked at +$((SECONDS - t0)) s"; touch "$PARTS/UNPACKED"
  python3 -m compileall -q -j 0 /tmp/site "$HERE" > /dev/null 2>&1
  echo "bytecode compiled at +$((SECONDS - t0)) s"; touch "$PARTS/COMPILED"
}

phases() {
  local mem
  mem=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)
  cd /
  if [ "${AB_PLAN:-}" = start ]; then
    wait_for "$PARTS/COMPILED"
    python3 "$HERE/gpu_ab.py" --res "$RES/S" --server "L@0.3=$L" --start-only
    python3 "$HERE/gpu_ab.py" --res "$RES/A" --server "L@0.3=$L" --server "P@0.3=$P" --server "R@0.3=$R" --b1 L,P --reps 3 \
      --stagger kv
  elif [ "${mem:-0}" -ge 120000 ]; then
    python3 "$HERE/gpu_ab.py" --res "$RES/A" --server "P@0.26=$P" --server "R@0.26=$R" --server "S@0.19=$S" \
      --server "C@0.19=$C" --b1 P,R --reps 3 --c256 P,R --crosscheck P --cc-repeats 2
    python3 "$HERE/gpu_ab.py" --res "$RES/B" --server "L@0.45=$L" --server "N@0.45=$N" --b1 L --reps 1
  else
    python3 "$HERE/gpu_ab.py" --res "$RES/A" --server "P@0.45=$P" --server "R@0.45=$R" --reps 3 --c256 P,R \
      --crosscheck P --cc-repeats 2
    python3 "$HERE/gpu_ab.py" --res "$RES/B" --server "S@0.45=$S" --server "C@0.45=$C" --b1 none --reps 1
  fi
  touch "$RES/ALL_DONE"
}

watch() {
  local end=$((SECONDS + ${1:-500}))
  while [ ! -e "$RES/ALL_DONE" ] && [ $SECONDS -lt $end ]; do sleep 3; done
  cat "$RES"/unpack.log 2>/dev/null | tail -3
  for f in "$RES"/S/summary.txt "$RES"/A/summary.txt "$RES"/B/summary.txt; do
    [ -f "$f" ] && grep -v " BENCH: " "$f" | cut -c1-420
  done
  tail -3 "$RES/phases.log" 2>/dev/null
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
}

case "${1:-}" in
  unpack) unpack ;;
  go)
    wait_for "$PARTS/UNPACKED"
    setsid nohup bash "$0" phases > "$RES/phases.log" 2>&1 < /dev/null &
    echo "phases started (pid $!)"; watch "${2:-500}" ;;
  phases) phases ;;
  watch) watch "${2:-500}" ;;
  collect)
    mkdir -p "$2"
    tar cf - -C "$(dirname "$RES")" "$(basename "$RES")" | xz -T0 > "$2/ab.tar.xz"
    for p in S A B; do [ -f "$RES/$p/summary.txt" ] && cp "$RES/$p/summary.txt" "$2/summary-$p.txt"; done
    ls -la "$2" ;;
  *) echo "usage: $0 unpack | go SECONDS | watch SECONDS | collect DIR" >&2; exit 2 ;;
esac
