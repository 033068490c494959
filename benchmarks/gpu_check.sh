#!/usr/bin/env bash
# r1 GPU check on a lent GPU machine, <= 8 minutes: the real RL stage (DeepScaleR-shaped: GRPO, vLLM sampling,
# DeepSpeed ZeRO-3, bf16) on a random-init ~0.44B Qwen3 built from a config, one rank per visible GPU, then the
# same stage with the hf sampler for comparison. Prints rollout tokens/s (vLLM vs hf), update tokens/s and MFU,
# weight-sync seconds, the sampler/trainer log-prob gap and peak memory (see benchmarks/gpu_check.py).
# Installs nothing except the '.[vllm]' extra, and only when vLLM is missing.
# Usage: bash benchmarks/gpu_check.sh [gpu_check.py options, e.g. --zero 2 --steps 3]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
START=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader || true
if ! "$PY" -c "import vllm" >/dev/null 2>&1; then
  echo "gpu_check: vLLM not importable, installing the r1cli[vllm] extra" >&2
  "$PY" -m pip install -q -e '.[vllm]'
elif ! "$PY" -c "import r1cli" >/dev/null 2>&1; then
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PY" -c "import vllm, torch, deepspeed, transformers; print('vllm', vllm.__version__, '| torch', torch.__version__, \
'| deepspeed', deepspeed.__version__, '| transformers', transformers.__version__)"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false VLLM_ENABLE_V1_MULTIPROCESSING=0
LEFT=$(( 480 - ($(date +%s) - START) ))
if (( LEFT < 120 )); then echo "gpu_check: only ${LEFT}s left of the 8-minute budget after setup" >&2; exit 1; fi
exec timeout --signal=TERM --kill-after=15 "${LEFT}" "$PY" benchmarks/gpu_check.py --out "${OUT:-/tmp}/gpu_check.json" "$@"
