#!/usr/bin/env bash
# The notebook suite on CUDA vLLM against gpt-oss-nano, on a GPU machine with no
# internet and no vLLM installed (how docs/gpu-lane.md was measured).
#
#   scripts/gpu-lane.sh unpack BUNDLE...   unpack site-packages bundles (tar.zst) into $SITE
#   scripts/gpu-lane.sh nano               build nano with this vLLM, then start the server (detached)
#   scripts/gpu-lane.sh test NOTEBOOK...   run notebooks with nbmake against that server
#   scripts/gpu-lane.sh perf ...           20b/120b with random weights: start time and
#                                          `vllm bench serve` per flag set (scripts/gpu-perf.sh)
#   scripts/gpu-lane.sh all                one GPU, one session server: build nano with this vLLM, then
#                                          every notebook and tests/test_presets.py under the server the
#                                          suite starts itself (#12 item 5; docs/gpu-lane.md, 2026-12-07)
#
# Bundles are made on a machine with internet: every wheel vLLM and the lab need
# that the GPU image lacks, installed with `pip install --target` for its Python
# and packed with `tar | zstd`. Results (junit XML, logs) go to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

SITE=${SITE:-/tmp/site}
OUT=${OUT:-/tmp/gpu-lane}
PORT=${PORT:-8000}
mkdir -p "$OUT"
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export GPTOSS_LAB_CACHE_DIR=${GPTOSS_LAB_CACHE_DIR:-/tmp/lab-cache}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 LITELLM_LOCAL_MODEL_COST_MAP=True
PY=${PY:-python3}

say() { printf '[gpu-lane] %s\n' "$*" >&2; }

unpack() {
  mkdir -p "$SITE"
  for bundle in "$@"; do
    say "unpacking $bundle into $SITE"
    "$PY" - "$bundle" "$SITE" <<'EOF'
import sys, tarfile
try:
    import zstandard
except ImportError:
    sys.exit("zstandard is missing: pip install --target $SITE its wheel first")
with open(sys.argv[1], "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        tar.extractall(sys.argv[2], filter="tar")
EOF
  done
}

nano() {
  "$PY" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())"
  start=$(date +%s)
  "$PY" -m gptoss_lab.cli nano build 2>&1 | tee "$OUT/nano-build.log"
  say "nano built in $(( $(date +%s) - start )) s"
  start=$(date +%s)
  setsid nohup "$PY" -c "
import time, gptoss_lab as lab
server = lab.serve('nano', port=$PORT, extra_args=['--enable-log-requests', '--enable-log-outputs'])
print('READY', server.url, flush=True)
time.sleep(10**7)
" >"$OUT/server-start.log" 2>&1 &
  until grep -q READY "$OUT/server-start.log"; do
    if ! pgrep -f "import time, gptoss_lab" >/dev/null; then cat "$OUT/server-start.log"; exit 1; fi
    sleep 2
  done
  say "server ready in $(( $(date +%s) - start )) s"
  cat "$OUT/server-start.log"
  cp "$GPTOSS_LAB_CACHE_DIR/servers/vllm-$PORT.log" "$OUT/server.log"
  grep -E "Using .*backend|attention backend|MoE|moe|Graph capturing finished|torch.compile takes|init engine" \
    "$OUT/server.log" | cut -c1-300 | head -20 || true
}

test_notebooks() {
  local name
  name=$(basename "$1" .ipynb)${2:+-more}
  GPTOSS_LAB_TEST_SERVER="http://127.0.0.1:$PORT/v1" \
    GPTOSS_LAB_TEST_SERVER_LOG="$GPTOSS_LAB_CACHE_DIR/servers/vllm-$PORT.log" "$PY" -m pytest -p no:cacheprovider -v --durations=0 \
    --nbmake --nbmake-timeout=900 --junitxml="$OUT/junit-$name.xml" "$@" 2>&1 | tee "$OUT/pytest-$name.log" || true
  cp "$GPTOSS_LAB_CACHE_DIR/servers/vllm-$PORT.log" "$OUT/server.log"
}

sandbox() {
  # 08's python tool (and nano's build, which runs 08's scripted calls) needs a working bwrap.
  # BWRAP_KIT: a folder with a carried bwrap (scripts/gpu-bundle.sh's bwrap/), used when the image has none.
  if ! command -v bwrap >/dev/null && [ -n "${BWRAP_KIT:-}" ]; then
    export PATH="$BWRAP_KIT:$PATH"; say "no bwrap in the image: using the carried one in $BWRAP_KIT"
  fi
  "$PY" -c "from gptoss_lab.builtin import sandbox; sandbox.require(); print('bwrap sandbox: works')"
}

all() {
  local start
  "$PY" -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__, torch.cuda.get_device_name())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  sandbox > "$OUT/sandbox.log" 2>&1 || { cat "$OUT/sandbox.log"; exit 1; }  # no pipe: its PATH must reach the build
  tail -3 "$OUT/sandbox.log"
  start=$(date +%s)
  if ! "$PY" -m gptoss_lab.cli nano build 2>&1 | tee "$OUT/nano-build.log"; then
    say "nano build failed after $(( $(date +%s) - start )) s; the errors in its servers' logs:"
    for log in "$GPTOSS_LAB_CACHE_DIR"/nano/*.log; do
      [ -e "$log" ] || continue
      cp "$log" "$OUT/"
      echo "== $log"; grep -nE "Error|Traceback|raise |Exception|CUDA|memory|Failed" "$log" | cut -c1-400 | tail -40 || true
    done
    exit 1
  fi
  say "nano built in $(( $(date +%s) - start )) s"
  start=$(date +%s)
  GPTOSS_LAB_TEST_MODEL=nano "$PY" -m pytest -p no:cacheprovider -v --durations=0 --nbmake --nbmake-timeout=900 \
    --junitxml="$OUT/junit-all.xml" notebooks/*.ipynb tests/test_presets.py 2>&1 | tee "$OUT/pytest-all.log" || true
  say "notebooks ran in $(( $(date +%s) - start )) s"
  cp "$GPTOSS_LAB_CACHE_DIR"/servers/*.log "$OUT/" 2>/dev/null || true
}

case "${1:-}" in
  unpack) shift; unpack "$@" ;;
  nano) nano ;;
  test) shift; test_notebooks "$@" ;;
  perf) shift; exec scripts/gpu-perf.sh "$@" ;;
  all) all ;;
  *) say "usage: $0 unpack BUNDLE... | nano | test NOTEBOOK... | perf ... | all"; exit 2 ;;
esac
