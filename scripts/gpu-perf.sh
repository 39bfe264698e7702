#!/usr/bin/env bash
# The `perf` stage of scripts/gpu-lane.sh: serve gpt-oss-20b/120b at their real size with
# random weights (--load-format dummy) under each flag set, time launch -> ready, and run
# `vllm bench serve` at 1 and 64 users. How docs/presets.md was measured.
#
#   scripts/gpu-lane.sh perf unpack DIR        DIR holds scripts/gpu-bundle.sh's parts, and
#                                              models.tar.xz (model folders + o200k vocabulary)
#   scripts/gpu-lane.sh perf start PHASE...    run phases detached (the machine's calls are short);
#                                              PHASE:b1 runs only that level (a second start: 20b-lab2)
#   scripts/gpu-lane.sh perf wait SECONDS      wait for the phases, print the summary so far
#   scripts/gpu-lane.sh perf collect DIR       pack $RES into DIR/perf.tar.xz (+ summary.txt)
#   scripts/gpu-lane.sh perf stop              stop the phases and any server they started
#   scripts/gpu-lane.sh perf run PHASE...      run phases in the foreground
#
# Phases: 20b-preset 20b-recipe 20b-lab 120b-preset 120b-lab (flags below). Everything goes
# to $RES (default /tmp/perf): summary.txt, per-phase server logs and `vllm bench serve` JSON.
# `python benchmarks/gpu_presets.py $RES` turns them into benchmarks/results/*.json.
# Model folders come from gptoss_lab.dummy.model_folder (published config + lab tokenizer).
set -uo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."

SITE=${SITE:-/tmp/site}
RES=${RES:-/tmp/perf}
MODELS=${MODELS:-/tmp/models}
PORT=${PORT:-8000}
PY=${PY:-python3}
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export TIKTOKEN_ENCODINGS_BASE=${TIKTOKEN_ENCODINGS_BASE:-$(dirname "$MODELS")/tiktoken}
read -r -a VLLM <<< "${VLLM_CMD:-$PY -m vllm.entrypoints.cli.main}"  # VLLM_CMD: another vllm launcher
PARSERS=(--tool-call-parser openai --enable-auto-tool-choice --reasoning-parser openai_gptoss)

# name -> "model|flags". The preset rows mirror gptoss_lab/presets.py; the recipe row is the
# vLLM gpt-oss recipe's Hopper flags; the lab row captures CUDA graphs only up to batch 16.
declare -A PHASES=(
  [20b-preset]="gpt-oss-20b|--async-scheduling"
  [20b-recipe]="gpt-oss-20b|--async-scheduling --no-enable-prefix-caching --max-num-batched-tokens 8192 --max-cudagraph-capture-size 2048 --stream-interval 20"
  [20b-lab]="gpt-oss-20b|--max-cudagraph-capture-size 16"
  [120b-preset]="gpt-oss-120b|--async-scheduling"
  [120b-lab]="gpt-oss-120b|--max-cudagraph-capture-size 16"
)
# level -> "concurrency prompts input output warmups"; w64 is a discarded warm-up at 64 users
# (it triggers the Triton JIT of the MoE routing kernels before c64 is timed).
declare -A LEVELS=([b1]="1 8 1024 512 2" [w64]="64 64 1024 16 0" [c64]="64 128 1024 1024 4")
BENCH=${BENCH:-"b1 w64 c64"}

log() { echo "[$(date -u +%T)] $*" | tee -a "$RES/summary.txt"; }

unpack() {
  local dir=${1:?usage: perf unpack DIR}
  mkdir -p "$(dirname "$SITE")" "$MODELS" "$TIKTOKEN_ENCODINGS_BASE"
  local t0=$SECONDS
  cat "$dir"/bundle.tar.xz.part* | xz -dc | tar xf - -C "$(dirname "$SITE")"
  [ "$(basename "$SITE")" = site ] || { echo "SITE must end in /site" >&2; return 2; }
  xz -dc "$dir/extras.tar.xz" | tar xf - -C "$(dirname "$SITE")"
  local m; m=$(mktemp -d)
  xz -dc "$dir/models.tar.xz" | tar xf - -C "$m"
  cp -r "$m"/models/. "$MODELS"/ && cp "$m"/o200k_base.tiktoken "$TIKTOKEN_ENCODINGS_BASE"/ && rm -rf "$m"
  echo "unpacked in $((SECONDS - t0)) s; compiling bytecode (an installed vLLM has it)"
  "$PY" -m compileall -q -j 0 "$SITE" >/dev/null 2>&1 || true
  echo "ready in $((SECONDS - t0)) s"
  "$PY" -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__, torch.cuda.get_device_name())'
}

health() { "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/health', timeout=2)" 2>/dev/null; }

SPID=""
serve() {  # serve PHASE: sets READY, DIR, SERVED
  local spec=${PHASES[$1]:?unknown phase $1}
  local n=1; while [ -e "$RES/$1${n#1}.server.log" ]; do n=$((n + 1)); done  # a repeat gets 20b-lab2
  local folder=${spec%%|*} flags=${spec#*|}
  DIR=$MODELS/$folder; SERVED=openai/$folder; READY=0; NAME=$1${n#1}
  [ -f "$DIR/config.json" ] ||
    "$PY" -c "from pathlib import Path; from gptoss_lab import dummy; dummy.model_folder('$SERVED', root=Path('$MODELS'))"
  # shellcheck disable=SC2086
  local cmd=(serve "$DIR" --served-model-name "$SERVED" --load-format dummy --host 127.0.0.1 --port "$PORT" $flags "${PARSERS[@]}")
  log "$NAME START: vllm ${cmd[*]}"
  local t0; t0=$(date +%s.%N)
  setsid "${VLLM[@]}" "${cmd[@]}" > "$RES/$NAME.server.log" 2>&1 < /dev/null &
  SPID=$!
  while :; do
    if health; then READY=1; break; fi
    kill -0 "$SPID" 2>/dev/null || break
    (( $(date +%s) - ${t0%.*} > 900 )) && { log "$NAME: not ready after 900 s"; break; }
    sleep 0.5
  done
  local dt; dt=$("$PY" -c "import time; print(f'{time.time() - $t0:.1f}')")
  if [ "$READY" = 1 ]; then log "$NAME READY after $dt s (launch to /health 200)"
  else log "$NAME FAILED after $dt s"; grep -E "Error|OOM|out of memory|Traceback" "$RES/$NAME.server.log" | tail -12 | tee -a "$RES/summary.txt"; fi
  grep -E "non-default args|backend|Backend|MXFP4|Mxfp4|Loading weights took|Model loading took|torch.compile|Graph capturing|KV cache|Maximum concurrency|init engine|Application startup" \
    "$RES/$NAME.server.log" | cut -c1-300 | head -40 | sed 's/^/    /' >> "$RES/summary.txt"
  log "$NAME GPU memory after start: $(nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader)"
}

stop_server() {
  [ -n "$SPID" ] || return 0
  kill -TERM -- -"$SPID" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$SPID" 2>/dev/null || break; sleep 1; done
  kill -KILL -- -"$SPID" 2>/dev/null
  local used=""
  for _ in $(seq 60); do
    used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    [ "${used:-0}" -lt 2000 ] && break; sleep 1
  done
  log "$NAME stopped; GPU memory used now ${used:-?} MiB"; SPID=""
}

bench() {  # bench LEVEL
  [ "$READY" = 1 ] || return 0
  local c n in out w; read -r c n in out w <<< "${LEVELS[$1]}"
  local args=(--backend openai --base-url "http://127.0.0.1:$PORT" --endpoint /v1/completions --model "$SERVED"
    --tokenizer "$DIR" --dataset-name random --random-input-len "$in" --random-output-len "$out" --ignore-eos
    --max-concurrency "$c" --num-prompts "$n" --num-warmups "$w" --request-rate inf --seed 0
    --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,99 --disable-tqdm)
  log "$NAME/$1 BENCH: vllm bench serve ${args[*]}"
  local t0=$SECONDS
  timeout 400 "${VLLM[@]}" bench serve "${args[@]}" --save-result --result-dir "$RES" \
    --result-filename "$NAME-$1.json" > "$RES/$NAME-$1.bench.log" 2>&1
  log "$NAME/$1 exit $? after $((SECONDS - t0)) s"
  grep -E "Successful requests|Failed requests|Benchmark duration|Output token throughput|Total token throughput|Median TTFT|P99 TTFT|Median TPOT|P99 TPOT" \
    "$RES/$NAME-$1.bench.log" | sed "s|^|    $NAME/$1 |" >> "$RES/summary.txt"
}

run() {
  mkdir -p "$RES"; rm -f "$RES/DONE"
  # Leave the checkout: a device call that carries the checkout again replaces this folder, and every
  # vLLM started from the old (deleted) working directory died at once ("oneMKL FATAL ERROR: Cannot
  # load libtorch_cpu.so"). PYTHONPATH keeps the checkout's path, which the new copy fills.
  cd /
  log "device: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
  log "versions: $("$PY" -c 'import sys, torch, vllm, triton; print("python", sys.version.split()[0], "torch", torch.__version__, "vllm", vllm.__version__, "triton", triton.__version__)' 2>&1 | tail -1)"
  trap 'stop_server; exit 1' TERM INT
  local phase levels
  for phase in "$@"; do  # PHASE or PHASE:LEVEL,LEVEL (e.g. 20b-lab:b1 for a second start)
    levels=$BENCH; [[ $phase == *:* ]] && levels=${phase#*:} && levels=${levels//,/ }
    serve "${phase%%:*}"
    for level in $levels; do bench "$level"; done
    stop_server
  done
  log "ALL DONE"; touch "$RES/DONE"
}

case "${1:-}" in
  unpack) shift; unpack "$@" ;;
  run) shift; run "$@" ;;
  start) shift; mkdir -p "$RES"
    setsid nohup "$SELF" run "$@" > "$RES/driver.log" 2>&1 < /dev/null &
    echo $! > "$RES/driver.pid"; echo "started $(cat "$RES/driver.pid")" ;;
  wait)
    end=$((SECONDS + ${2:-540}))
    while [ ! -f "$RES/DONE" ] && [ $SECONDS -lt $end ]; do sleep 2; done
    cat "$RES/summary.txt" ;;
  collect) tar cf - -C "$(dirname "$RES")" "$(basename "$RES")" | xz -T0 > "${2:?usage: perf collect DIR}/perf.tar.xz"
    cp "$RES/summary.txt" "$2/" ;;
  stop) kill -TERM "$(cat "$RES/driver.pid")" ;;  # its trap stops the server it started
  *) echo "usage: scripts/gpu-lane.sh perf unpack DIR | start PHASE... | wait [SECONDS] | stop | run PHASE..." >&2; exit 2 ;;
esac
