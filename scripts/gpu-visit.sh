#!/usr/bin/env bash
# One visit to a lent GPU machine (no internet, no vLLM): the bundle arrives over several device
# calls, then the notebook lane (scripts/gpu-lane.sh all) and the start-time plan of #14
# (scripts/gpu-ab.sh, AB_PLAN=start) run detached, one after the other, while later calls watch.
# Run from the repository root on the device; carried files are under .gpu-bundle/ (scripts/gpu-bundle.sh).
#
#   scripts/gpu-visit.sh recv         copy whatever .gpu-bundle/ holds now to /tmp/parts, mark each part
#                                     as arrived; the first call also starts gpu-ab.sh unpack (detached)
#   scripts/gpu-visit.sh go [PLAN]    once the bundle is unpacked: unpack lab.tar.xz (the notebooks'
#                                     packages) and run PLAN detached: "nb" (notebooks), "ab" (#14 start
#                                     plan), "nb ab" (default: both, in that order)
#   scripts/gpu-visit.sh watch SECS   print progress until the plan ends or SECS pass
#   scripts/gpu-visit.sh collect DIR  copy the results (logs, junit, gpu-ab's tarball) into DIR
set -uo pipefail
cd "$(dirname "$0")/.."
PARTS=/tmp/parts VISIT=/tmp/visit
B=.gpu-bundle
mkdir -p "$PARTS" "$VISIT" /tmp/ab

recv() {
  local f n
  if [ -d "$B/stage" ] && [ ! -e /tmp/stage/gpu-ab.sh ]; then
    mkdir -p /tmp/stage && cp -r "$B"/stage/. /tmp/stage/ && cp "$B/stage/models.tar.xz" "$PARTS/"
  fi
  for f in "$B"/bundle.tar.xz.part*; do
    [ -e "$f" ] || continue
    n=${f##*part}
    [ -e "$PARTS/ok.$n" ] || { cp "$f" "$PARTS/" && touch "$PARTS/ok.$n"; echo "part $n arrived"; }
  done
  [ -e "$B/extras.tar.xz" ] && [ ! -e "$PARTS/ok.x" ] && cp "$B/extras.tar.xz" "$PARTS/" && touch "$PARTS/ok.x"
  [ -e "$B/lab.tar.xz" ] && [ ! -e "$PARTS/ok.lab" ] && cp "$B/lab.tar.xz" "$PARTS/" && touch "$PARTS/ok.lab"
  [ -d "$B/bwrap" ] && [ ! -e /tmp/bw/bwrap ] && mkdir -p /tmp/bw && cp -r "$B"/bwrap/. /tmp/bw/
  if [ -e /tmp/stage/gpu-ab.sh ] && [ ! -e "$VISIT/unpack.started" ]; then
    touch "$VISIT/unpack.started"
    setsid nohup bash /tmp/stage/gpu-ab.sh unpack > /tmp/ab/unpack.log 2>&1 < /dev/null &
    echo "unpacking started"
  fi
  ls "$PARTS"
}

plan() {  # detached
  local step
  while [ ! -e "$PARTS/UNPACKED" ] || [ ! -e "$PARTS/ok.lab" ]; do sleep 1; done
  xz -dc "$PARTS/lab.tar.xz" | tar xf - -C /tmp && echo "lab packages unpacked at $(date +%T)"
  for step in ${1:-nb ab}; do
    echo "== $step starts at $(date +%T)"
    case $step in
      nb) rm -rf /tmp/repo && cp -r "$PWD" /tmp/repo && rm -rf /tmp/repo/.gpu-bundle
          (cd /tmp/repo && BWRAP_KIT=/tmp/bw OUT=$VISIT/nb PY=python3 \
             TIKTOKEN_ENCODINGS_BASE=/tmp/tiktoken bash scripts/gpu-lane.sh all) > "$VISIT/nb.log" 2>&1 ;;
      ab) AB_PLAN=start bash /tmp/stage/gpu-ab.sh phases > /tmp/ab/phases.log 2>&1 ;;
    esac
    echo "== $step ends at $(date +%T)"
  done
  touch "$VISIT/DONE"
}

watch() {
  local end=$((SECONDS + ${1:-500}))
  while [ ! -e "$VISIT/DONE" ] && [ $SECONDS -lt $end ]; do sleep 5; done
  tail -3 /tmp/ab/unpack.log 2>/dev/null; cat "$VISIT/plan.log" 2>/dev/null
  if grep -q "nano build failed" "$VISIT/nb.log" 2>/dev/null; then
    sed -n '/nano build failed/,$p' "$VISIT/nb.log" | cut -c1-400 | tail -90
  else
    grep -E "^\[nano\]|nano built|PASSED|FAILED|ERROR|passed|failed|notebooks ran|bwrap|vllm " "$VISIT/nb.log" 2>/dev/null |
      cut -c1-240 | tail -40
  fi
  for f in /tmp/ab/S/summary.txt /tmp/ab/A/summary.txt; do [ -f "$f" ] && grep -v " BENCH: " "$f" | cut -c1-300; done
  tail -2 /tmp/ab/phases.log 2>/dev/null
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader
}

case "${1:-}" in
  recv) recv ;;
  go) shift; setsid nohup bash "$0" plan "${1:-nb ab}" > "$VISIT/plan.log" 2>&1 < /dev/null &
      echo "plan started (pid $!)" ;;
  plan) shift; plan "$@" ;;
  watch) shift; watch "${1:-500}" ;;
  collect) mkdir -p "$2"; cp -r "$VISIT"/nb "$VISIT"/*.log "$2"/ 2>/dev/null
           [ -d /tmp/ab/S ] && bash /tmp/stage/gpu-ab.sh collect "$2" >/dev/null; ls -la "$2" ;;
  *) echo "usage: $0 recv | go [PLAN] | watch SECS | collect DIR" >&2; exit 2 ;;
esac
