#!/usr/bin/env bash
# Train the LLM reranker on one GPU and evaluate it (issue #14): `accelerate launch` over every train position
# (bf16), then the `marquee eval` rows teacher / student alone / fused on the test split, results to $OUT.
#
# The GPU machine (see README, "Fine-tuning on a GPU") has Python 3.12, torch, transformers, peft and accelerate,
# but no network and not the rest of Marquee's dependencies, and it receives at most 64 MiB per transfer.
# So everything it needs travels as git-ignored folders under .gpu/:
#   .gpu/part-1 … .gpu/part-N   the embedded model's GGUF (98 MB) in N parts, one part per transfer
#   .gpu/base                   SHA256 sums, the pure-Python / manylinux wheels missing there, MovieLens-100k
#                               (as a stand-in `recbole` package folder), optional fitted teachers (SASRec caches)
#
# Steps (here = this checkout; device = the GPU machine, through the device tool's `run`):
#   here:    scripts/train_gpu.sh prepare            # parts + sums + wheels + data (+ `teachers` below, optional)
#   here:    scripts/train_gpu.sh teachers           # optional: fit the teachers here (saves ~5 min of GPU time)
#   device:  run(command="scripts/train_gpu.sh receive", carry=[".gpu/part-1", ".gpu/base"], timeout_s=120)
#   device:  run(command="scripts/train_gpu.sh receive", carry=[".gpu/part-2"], timeout_s=120)
#   device:  run(command="scripts/train_gpu.sh run", carry=[".gpu/part-3"], timeout_s=600)
# The runs must follow each other while the machine is warm: ignored folders (.gpu/part-*, .gpu/store,
# .gpu/home) stay on it between calls, so the parts add up there; `run` receives the last part itself, joins the
# parts, checks every sum, installs the wheels into .gpu/site, trains, evaluates and copies report.md,
# report.json, marquee.json, the model card, the training curve and the log into $OUT.
#
#   scripts/train_gpu.sh run --cpu [--tiny]          # the same flow on this CPU (tests: tiny slice)
#
# Environment: GPU_DIR (default .gpu), PARTS (default 3), CONFIG (default configs/gpu-distill.toml),
# EVAL_USERS (default 0 = all 943), WHEELS=0 (prepare without downloading wheels), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=${GPU_DIR:-.gpu}
PARTS=${PARTS:-3}
CONFIG=${CONFIG:-configs/gpu-distill.toml}
EVAL_USERS=${EVAL_USERS:-0}
PY=${PYTHON:-python3}
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
# What training and evaluation import that the GPU image lacks (its package list: the device tool's KINDS.md):
# the config stack, platform dirs and the GGUF reader, at the versions `make setup` installs here; all pure
# Python except pydantic-core (a manylinux wheel).
WHEEL_SPECS=(pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 python-dotenv==1.2.4
             typing-inspection==0.4.5 annotated-types==0.8.0 platformdirs==4.14.8 gguf==0.19.0)

mkdir -p "$GPU_DIR"
GPU=$(cd "$GPU_DIR" && pwd)  # absolute (GPU_DIR as given is what the device calls name)

say() { echo "[train_gpu] $*" >&2; }
die() { say "error: $*"; exit 1; }

prepare() {
  [ -x "$(command -v split)" ] || die "needs coreutils split"
  local gguf
  gguf=$($PY -c "from agent.llm.loading import embedded_gguf_path; print(embedded_gguf_path())") \
    || die "the embedded model is not installed here (make setup)"
  rm -rf "$GPU_DIR"/part-* "$GPU_DIR/base"
  mkdir -p "$GPU_DIR/base"
  (cd "$GPU_DIR/base" && split -n "$PARTS" -d -a 2 "$gguf" "$GGUF.part-")
  local i=1 part
  for part in "$GPU_DIR"/base/"$GGUF".part-*; do
    mkdir -p "$GPU_DIR/part-$i"
    mv "$part" "$GPU_DIR/part-$i/"
    i=$((i + 1))
  done
  (cd "$GPU_DIR" && sha256sum part-*/"$GGUF".part-* | sed 's| part-[0-9]*/| |' > base/parts.sha256)
  (cd "$(dirname "$gguf")" && sha256sum "$GGUF") > "$GPU_DIR/base/model.sha256"
  # MovieLens-100k as the folder layout retrieval.catalog.movielens looks for (a `recbole` package on the path)
  local ml
  ml=$($PY -c "from retrieval.catalog.movielens import movielens_dir; print(movielens_dir())")
  mkdir -p "$GPU_DIR/base/site/recbole/dataset_example/ml-100k"
  : > "$GPU_DIR/base/site/recbole/__init__.py"
  cp "$ml"/ml-100k.inter "$ml"/ml-100k.item "$ml"/ml-100k.user "$GPU_DIR/base/site/recbole/dataset_example/ml-100k/"
  if [ "${WHEELS:-1}" != 0 ]; then
    $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d "$GPU_DIR/base/wheels" "${WHEEL_SPECS[@]}" || die "pip download failed (set WHEELS=0 to skip)"
  fi
  [ -d "$GPU_DIR/teachers" ] && cp -r "$GPU_DIR/teachers" "$GPU_DIR/base/teachers"
  local n
  n=$(ls -d "$GPU_DIR"/part-* | wc -l)
  say "prepared $n parts ($(du -sh "$GPU_DIR"/part-1 | cut -f1) each) and base ($(du -sh "$GPU_DIR/base" | cut -f1))"
  say "device calls, while the machine stays warm:"
  for i in $(seq 1 "$n"); do
    local carry="[\"$GPU_DIR/part-$i\"]" cmd="scripts/train_gpu.sh receive"
    [ "$i" = 1 ] && carry="[\"$GPU_DIR/part-1\", \"$GPU_DIR/base\"]"
    [ "$i" = "$n" ] && cmd="scripts/train_gpu.sh run"
    say "  run(command=\"$cmd\", carry=$carry)"
  done
}

teachers() {
  # Fit the GPU config's teachers here (SASRec caches under a scratch MARQUEE_HOME), for `prepare` to carry.
  local home="$GPU_DIR/teacher-home"
  mkdir -p "$home"
  MARQUEE_HOME="$home" $PY -m finetune.training.cli --config "$CONFIG" --out "$home/adapters/data" --data-only
  mkdir -p "$GPU_DIR/teachers"
  cp "$home"/models/sasrec-* "$GPU_DIR/teachers/"
  say "teachers: $(ls "$GPU_DIR/teachers" | wc -l) files; run prepare again to carry them"
}

receive() {
  mkdir -p "$GPU_DIR/store"
  local f
  for f in "$GPU_DIR"/part-*/"$GGUF".part-*; do
    [ -f "$f" ] && cp -u "$f" "$GPU_DIR/store/"
  done
  [ -d "$GPU_DIR/base" ] || die "$GPU_DIR/base has not arrived (carry it with the first part)"
  local have
  have=$(ls "$GPU_DIR/store" | grep -c "\.part-" || true)
  (cd "$GPU_DIR/store" && sha256sum -c --ignore-missing --quiet ../base/parts.sha256) \
    || die "a received part is corrupt: send it again"
  say "have $have of $(wc -l < "$GPU_DIR/base/parts.sha256") parts"
}

join_model() {
  local want
  want=$(wc -l < "$GPU_DIR/base/parts.sha256")
  [ "$(ls "$GPU_DIR/store" | grep -c "\.part-")" = "$want" ] || die "not every part has arrived: $(ls "$GPU_DIR/store")"
  (cd "$GPU_DIR/store" && sha256sum -c --quiet ../base/parts.sha256) || die "part checksum mismatch"
  mkdir -p "$GPU_DIR/model"
  cat "$GPU_DIR"/store/"$GGUF".part-* > "$GPU_DIR/model/$GGUF"
  (cd "$GPU_DIR/model" && sha256sum -c --quiet ../base/model.sha256) || die "joined model checksum mismatch"
  say "model joined and verified: $(sha256sum "$GPU_DIR/model/$GGUF" | cut -c1-16)…"
}

python_env() {
  local site="$GPU/site"
  if ! $PY -c "import pydantic_settings, platformdirs, gguf" 2>/dev/null; then
    [ -d "$GPU_DIR/base/wheels" ] || die "missing Python packages and no wheels in $GPU_DIR/base/wheels"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
      "$GPU_DIR"/base/wheels/*.whl
  fi
  export PYTHONPATH="$site:$GPU/base/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
  export MARQUEE_HOME="$GPU/home" MARQUEE_CONFIG="$GPU/absent.toml"
  mkdir -p "$MARQUEE_HOME/models"
  if [ -d "$GPU_DIR/base/teachers" ]; then cp -n "$GPU_DIR"/base/teachers/* "$MARQUEE_HOME/models/"; fi
  $PY -c "
from pathlib import Path
from agent.llm.loading import convert_embedded
print(convert_embedded(Path('$MARQUEE_HOME'), gguf=Path('$GPU/model/$GGUF')))" >/dev/null
}

run() {
  local cpu=0 tiny=0
  for arg in "$@"; do
    case "$arg" in
      --cpu) cpu=1 ;;
      --tiny) tiny=1 ;;
      *) die "unknown option $arg (run [--cpu] [--tiny])" ;;
    esac
  done
  receive
  join_model
  python_env
  local out="${OUT:-$GPU/out}" run_dir="$MARQUEE_HOME/adapters/gpu" started=$SECONDS
  mkdir -p "$out"
  local launch=(-m accelerate.commands.launch --num_processes 1 --num_machines 1 --dynamo_backend no)
  if [ "$cpu" = 1 ]; then launch+=(--cpu --mixed_precision no); else launch+=(--mixed_precision bf16); fi
  local train_args=(--config "$CONFIG" --out "$run_dir")
  compgen -G "$run_dir/checkpoints/step-*" >/dev/null && train_args+=(--resume)  # a second `run` continues
  [ "$tiny" = 1 ] && train_args+=(--quick)
  say "training: accelerate launch ${launch[*]:1} -m finetune.training.cli ${train_args[*]}"
  set -o pipefail
  $PY "${launch[@]}" -m finetune.training.cli "${train_args[@]}" 2>&1 | tee "$out/train.log"
  # The eval rows: the teacher alone, the student alone, fused (its tuned g and gate), fused without the gate.
  local retriever
  retriever=$($PY -c "import json; print(json.load(open('$run_dir/marquee.json'))['retriever'])")
  cat > "$GPU_DIR/eval.toml" <<EOF
[eval]
rankers = ["$retriever", "llm-lora@student", "llm-lora@fused", "llm-lora@no-gate"]
[eval.params."llm-lora@student"]
adapter = "$run_dir"
retriever = "$retriever"
fusion_weight = 1000.0
gate = false
[eval.params."llm-lora@fused"]
adapter = "$run_dir"
retriever = "$retriever"
[eval.params."llm-lora@no-gate"]
adapter = "$run_dir"
retriever = "$retriever"
gate = false
EOF
  local users=$EVAL_USERS
  [ "$tiny" = 1 ] && [ "$users" = 0 ] && users=8
  say "evaluating on the test split ($([ "$users" = 0 ] && echo all || echo "$users") users)"
  $PY -m finetune.cli eval --config "$GPU_DIR/eval.toml" --users "$users" --out "$MARQUEE_HOME/eval/gpu" 2>&1 \
    | tee "$out/eval.log"
  # at most 8 files come back from the device: the report, the adapter's settings and card, the curve, the logs
  cp "$MARQUEE_HOME/eval/gpu/report.md" "$MARQUEE_HOME/eval/gpu/report.json" "$out/"
  for f in marquee.json README.md training_curve.png; do cp "$run_dir/$f" "$out/$f"; done
  say "done in $((SECONDS - started)) s; results in $out"
}

case "${1:-}" in
  prepare) prepare ;;
  teachers) teachers ;;
  receive) receive ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/train_gpu.sh prepare|teachers|receive|run [--cpu] [--tiny]" >&2; exit 2 ;;
esac
