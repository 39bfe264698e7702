#!/usr/bin/env bash
# Build an offline CUDA vLLM 0.26.0 bundle for a GPU machine with no network.
#
#   scripts/gpu-bundle.sh [OUT_DIR]      (default .gpu-bundle/, ignored by git)
#
# The target image has Python 3.12, torch 2.11.0+cu130, transformers 5.17 and
# triton 3.6 but no vLLM (the H100 machine in docs/presets.md). Needs pip, uv, xz
# and any local CPython 3.12 (PY312=...; it only unpacks wheels). Writes
# bundle.tar.xz.partNN (50 MiB each, so one part fits a 64 MiB transfer) and
# extras.tar.xz. On the GPU machine:
#   cat OUT/bundle.tar.xz.part* | xz -dc | tar xf - -C /tmp   # -> /tmp/site
#   xz -dc OUT/extras.tar.xz | tar xf - -C /tmp
#   export PYTHONPATH=/tmp/site; python3 -m vllm.entrypoints.cli.main serve ...
# `scripts/gpu-lane.sh perf` does the unpacking itself. Adapted from the reference
# make-bundle.sh that measured the table in the GPU performance issue (#14).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(realpath -m "${1:-.gpu-bundle}")
VLLM_VERSION=${VLLM_VERSION:-0.26.0}
if [ -z "${PY312:-}" ]; then
  for c in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12; do
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then PY312=$c; break; fi
  done
fi
[ -n "${PY312:-}" ] || { echo "gpu-bundle: no working CPython 3.12 found; set PY312=/path/to/python3.12" >&2; exit 2; }
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT; cd "$W"
PLAT=(--only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
      --platform manylinux_2_35_x86_64 --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64
      --platform manylinux1_x86_64 --platform linux_x86_64 --platform any)
say() { printf '[gpu-bundle] %s\n' "$*" >&2; }

# 1. vLLM itself.
say "downloading vllm==$VLLM_VERSION"
python3 -m pip download -q --no-deps "${PLAT[@]}" -d whl "vllm==$VLLM_VERSION"

# 2. Its requirements, minus what the image has (torch & co) and what gpt-oss on Hopper never loads:
#    video decoders, TileLang, fastsafetensors, quack/humming/tokenspeed kernels, CUTLASS DSL.
#    numba is left out because the image's numba pairs with its numpy 2.5.
unzip -p whl/vllm-*.whl '*/METADATA' | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' |
  grep -v -i -E '^(torch|torchaudio|torchvision|torchcodec|PyNvVideoCodec|tilelang|fastsafetensors|quack-kernels|humming-kernels|tokenspeed-mla|nvidia-cutlass-dsl|numba)\b' > req.in
# The lab itself needs these on the GPU machine too (its perf stage imports gptoss_lab).
printf '%s\n' platformdirs openai-harmony >> req.in
printf '%s\n' torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0 triton==3.6.0 transformers==5.17.0 \
  tokenizers==0.23.2 huggingface-hub==1.33.0 safetensors==0.8.0 tiktoken==0.14.0 sentencepiece==0.2.2 > image.txt
UV_PYTHON_DOWNLOADS=never python3 -m uv pip compile -q --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
  req.in -c image.txt -o resolved.txt

# 3. Download what the image lacks. IMAGE lists the image's packages; a handful of them are
#    carried anyway at the resolved version (EXTRAS), so vLLM's web stack does not depend on
#    the image's versions.
IMAGE="aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs certifi charset-normalizer click
cloudpickle cuda-bindings cuda-pathfinder cuda-toolkit einops filelock frozenlist fsspec grpcio h11 hf-xet
httpcore httpx huggingface-hub idna jinja2 markdown-it-py markupsafe mdurl mpmath multidict networkx ninja
numpy nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx opencv-python-headless packaging pillow
prometheus-client propcache protobuf psutil py-cpuinfo pygments pyyaml regex requests rich safetensors
sentencepiece setuptools shellingham six sympy tabulate tiktoken tokenizers torch tqdm transformers triton
typer typing-extensions urllib3 uvloop yarl nvidia-cutlass-dsl-libs-base nvidia-cutlass-dsl-libs-core
nvidia-cutlass-dsl-libs-cu12"
EXTRAS="typing-extensions annotated-doc anyio h11 httpcore httpx click typer rich shellingham markdown-it-py
mdurl pygments prometheus-client aiohttp aiosignal frozenlist multidict yarl propcache aiohappyeyeballs attrs
protobuf"
norm() { tr 'A-Z_.' 'a-z--'; }
: > deps.txt; : > extras.txt
grep -E '^[A-Za-z0-9]' resolved.txt | while IFS= read -r line; do
  name=$(echo "${line%%==*}" | norm)
  if echo " $EXTRAS " | tr '\n' ' ' | grep -q " $name "; then echo "$line" >> extras.txt
  elif ! echo " $IMAGE " | tr '\n' ' ' | grep -q " $name "; then echo "$line" >> deps.txt; fi
done
say "downloading $(wc -l < deps.txt) dependencies and $(wc -l < extras.txt) extras"
python3 -m pip download -q --no-deps "${PLAT[@]}" -d deps -r deps.txt
python3 -m pip download -q --no-deps "${PLAT[@]}" -d xdeps -r extras.txt

# 4. Unpack into site/ trees (a wheel install is an unzip; no scripts are needed).
"$PY312" -m pip install -q --no-deps --no-index --no-compile --target stage/site deps/*.whl
"$PY312" -m pip install -q --no-deps --no-index --no-compile --target xstage/site xdeps/*.whl
unzip -q whl/vllm-*.whl -d stage/site

# 5. Trim what Hopper never loads: FlashAttention-2 (Hopper runs FA3), the Rust front end,
#    Blackwell FMHA sources, DeepGEMM builds for other Pythons.
rm -f stage/site/vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so stage/site/vllm/vllm-rs
rm -rf stage/site/vllm/third_party/fmha_sm100
rm -f stage/site/vllm/third_party/deep_gemm/_C.cpython-31[0134]-*.so

# 6. Pack: CUDA fat binaries shrink ~20x under xz. Parts of 50 MiB each.
say "packing (xz -9; minutes on few cores)"
mkdir -p "$OUT"; rm -f "$OUT"/bundle.tar.xz.part* "$OUT"/extras.tar.xz
(cd stage && tar cf - site | xz -9 -T0) | split -b 50m -d - "$OUT/bundle.tar.xz.part"
(cd xstage && tar cf - site | xz -9 -T0) > "$OUT/extras.tar.xz"
cp resolved.txt "$OUT/resolved.txt"

# 7. The notebook lane (scripts/gpu-lane.sh all, scripts/gpu-visit.sh): what the notebooks and their
#    tests need beyond vLLM, resolved against the bundle and the image, into lab.tar.xz. Left out:
#    boto3/botocore/s3transfer (LiteLLM imports them only for AWS providers) and LiteLLM's proxy UI.
#    Plus Debian's bubblewrap with its three libraries (bwrap/), for an image without one: 08's
#    python tool and nano's build need a sandbox.
printf '%s\n' 'openai-agents>=0.2' 'litellm>=1.70' 'bm25s>=0.3' 'quicktok-v1>=0.4' 'ipywidgets>=8' ipykernel \
  'nbmake>=1.5' 'pytest>=8' 'matplotlib>=3.8' > lab.in
grep -E '^[A-Za-z0-9]' resolved.txt | cat - image.txt > lab-cons.txt
UV_PYTHON_DOWNLOADS=never python3 -m uv pip compile -q --python-version 3.12 --python-platform x86_64-manylinux_2_28 \
  lab.in -c lab-cons.txt -o lab-resolved.txt
{ grep -E '^[A-Za-z0-9]' resolved.txt | sed 's/==.*//'; echo "$IMAGE" | tr ' ' '\n'; } | norm | sort -u > have.txt
grep -E '^[A-Za-z0-9]' lab-resolved.txt | while IFS= read -r line; do
  name=$(echo "${line%%==*}" | norm)
  grep -qx "$name" have.txt || echo "$line"
done | grep -v -i -E '^(boto3|botocore|s3transfer)==' > lab-deps.txt
python3 -m pip download -q --no-deps "${PLAT[@]}" -d labdeps -r lab-deps.txt
"$PY312" -m pip install -q --no-deps --no-index --no-compile --target labstage/site labdeps/*.whl
rm -rf labstage/site/litellm/proxy/_experimental
(cd labstage && tar cf - site | xz -6 -T0) > "$OUT/lab.tar.xz"
cp lab-resolved.txt "$OUT/lab-resolved.txt"
rm -rf "$OUT/bwrap" && mkdir -p "$OUT/bwrap/lib" && cp "$(command -v bwrap)" "$OUT/bwrap/bwrap.bin"
for lib in $(ldd "$(command -v bwrap)" | awk '/=> \// && !/libc\.so/ {print $3}'); do cp -L "$lib" "$OUT/bwrap/lib/"; done
printf '%s\n' '#!/bin/sh' '# bubblewrap carried from the bundle machine, its libraries beside it (scripts/gpu-bundle.sh).' \
  'exec env LD_LIBRARY_PATH=/tmp/bw/lib /tmp/bw/bwrap.bin "$@"' > "$OUT/bwrap/bwrap"
chmod +x "$OUT/bwrap/bwrap"
ls -l "$OUT"
