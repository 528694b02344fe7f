#!/usr/bin/env bash
# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
#
# One frozen all-MiniLM-L6-v2 serving three GLUE tasks, each through its own
# adapter bundle, on whatever CPU this is. Prints what it costs to add a task:
#
#   1. Makes sure three adapter bundles exist under $WORK, training each one
#      with run_classifier.py if it is absent (1 epoch, adapters of size 64):
#        MRPC   on the real GLUE MRPC train set, max_seq_length 128
#        CoLA   on the real GLUE CoLA train set, max_seq_length 64
#        SST-2  on the first 8,000 rows of the real GLUE SST-2 train set
#               (copied to $WORK/data/SST-2 with the real dev set), max_seq_length 64.
#      For each: eval_results.txt (dev set of the data it was trained on) and
#      run_classifier's `Adapter bundle ...: X MB on disk` line.
#      A bundle is reused when $WORK/<name>/command.txt records exactly the
#      command this script would run now (same flags, same paths); otherwise
#      that folder is deleted and the bundle trained again. (Files changed in
#      place under the same paths are not noticed; scripts/predict_multitask.py
#      itself refuses a bundle whose backbone weights changed.)
#   2. scripts/predict_multitask.py --split=dev, twice, each in its own process:
#        a. the MRPC bundle alone,
#        b. the MRPC, SST-2 and CoLA bundles on one backbone,
#      against the REAL GLUE dev sets. It prints the backbone's size, each
#      bundle's size on disk, the process memory (VmRSS) after each task is
#      loaded, and each task's dev metrics.
#   3. `du -sb` of each bundle folder and of the backbone checkpoint files.
#   Then the wall time of every step.
#
# Usage:
#   benchmarks/multitask_serving.sh
#
# Environment:
#   WORK        bundles, logs and predictions (default: /tmp/adapter_bert_serving).
#               Kept between runs, so a second run only repeats steps 2 and 3.
#               To retrain, delete it (or one of its task folders).
#   GLUE_DIR    GLUE data in the glue_data layout (default: <repo>/../shared/glue)
#   PYTHON      interpreter (default: <repo>/.venv/bin/python)
#   PREDICT_BATCH_SIZE  --predict_batch_size of step 2 (default: 64)
#
# Every command is printed before it runs; run_classifier.py's log goes to
# $WORK/<name>/run_classifier.log, scripts/predict_multitask.py's TF log to
# $WORK/predict_<n>task*/predict_multitask.log (its printed figures are shown).
# Times depend on the machine and on what else runs on it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "${1:-}" in
  "") ;;
  *) sed -n '/^# Usage:/,/^# Every command/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
     exit 2 ;;
esac

WORK="${WORK:-/tmp/adapter_bert_serving}"
GLUE_DIR="${GLUE_DIR:-$REPO/../shared/glue}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
PREDICT_BATCH_SIZE="${PREDICT_BATCH_SIZE:-64}"

# Where the Makefile puts the converted model: $ADAPTER_BERT_ASSETS or .cache/assets.
ASSETS="${ADAPTER_BERT_ASSETS:-.cache/assets}"
[[ "$ASSETS" = /* ]] || ASSETS="$REPO/$ASSETS"
BERT_DIR="$ASSETS/all-MiniLM-L6-v2"

die() { echo "multitask_serving.sh: $*" >&2; exit 1; }

# Prints a command (shell-quoted, so it can be pasted) and runs it.
show() {
  printf '+'; printf ' %q' "$@"; echo
  "$@"
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", b - a}'; }

case "$WORK" in
  ""|/|"$HOME"|"$REPO"|"$REPO"/) die "refusing WORK='$WORK'" ;;
esac
[[ -x "$PYTHON" ]] || die "no Python at $PYTHON (run 'make -C $REPO venv' or set PYTHON)"

# Only call make when something is missing: `make assets` also reinstalls the
# venv when requirements.txt is newer than it, which a benchmark should not do
# behind anyone's back.
for f in "$BERT_DIR"/{bert_config.json,vocab.txt,bert_model.ckpt.index}; do
  if [[ ! -f "$f" ]]; then
    show make -C "$REPO" assets || die "'make -C $REPO assets' failed"
    break
  fi
done
for f in "$BERT_DIR"/{bert_config.json,vocab.txt,bert_model.ckpt.index}; do
  [[ -f "$f" ]] || die "$f is missing (after 'make assets')"
done
for t in MRPC CoLA SST-2; do
  [[ -d "$GLUE_DIR/$t" ]] || die "no GLUE folder $GLUE_DIR/$t (set GLUE_DIR)"
done
mkdir -p -- "$WORK"

declare -A STEP_TIME=()
STEP_ORDER=()
record_time() { STEP_ORDER+=("$1"); STEP_TIME["$1"]="$2"; }

# ------------------------------------------------------------- 1. bundles

# train_bundle NAME TASK DATA_DIR MAX_SEQ_LENGTH: $WORK/NAME/adapter_bundle.
train_bundle() {
  local name="$1" task="$2" data_dir="$3" max_seq_length="$4"
  local out="$WORK/$name"
  local log="$out/run_classifier.log"
  local cmd=("$PYTHON" "$REPO/run_classifier.py"
    --task_name="$task"
    --do_train=true
    --do_eval=true
    --data_dir="$data_dir"
    --vocab_file="$BERT_DIR/vocab.txt"
    --bert_config_file="$BERT_DIR/bert_config.json"
    --init_checkpoint="$BERT_DIR/bert_model.ckpt"
    --do_lower_case=true
    --max_seq_length="$max_seq_length"
    --train_batch_size=32
    --eval_batch_size=64
    --learning_rate=3e-4
    --num_train_epochs=1
    --adapter_size=64
    --output_dir="$out")
  local cmd_text
  cmd_text="$(printf '%q ' "${cmd[@]}")"

  echo
  echo "== 1. bundle $name ($task from $data_dir, max_seq_length $max_seq_length)"
  if [[ -f "$out/adapter_bundle/adapter_bundle.json" && -f "$out/eval_results.txt" &&
        -f "$out/command.txt" && "$(cat "$out/command.txt")" == "$cmd_text" ]]; then
    echo "reusing $out/adapter_bundle, trained earlier by:"
    echo "+ $cmd_text"
    record_time "train $name" "reused"
  else
    if [[ -e "$out" ]]; then
      echo "deleting $out (incomplete, or trained by another command)"
      rm -rf -- "$out"
    fi
    mkdir -p -- "$out"
    echo "+ $cmd_text"
    echo "  (log: $log)"
    local start end status=0
    start=$(now)
    "${cmd[@]}" >"$log" 2>&1 || status=$?
    end=$(now)
    if [[ $status -ne 0 ]]; then
      echo "multitask_serving.sh: run_classifier.py exited with $status; last lines of $log:" >&2
      tail -n 30 "$log" >&2
      exit "$status"
    fi
    [[ -f "$out/adapter_bundle/adapter_bundle.json" ]] || die "no bundle in $out/adapter_bundle after training"
    # Written last: a run interrupted before this point is never reused.
    printf '%s' "$cmd_text" >"$out/command.txt"
    record_time "train $name" "$(elapsed "$start" "$end") s"
    echo "run_classifier.py took $(elapsed "$start" "$end") s"
  fi
  local steps took
  steps=$(sed -n 's/.*Num steps = \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  took=$(sed -n 's/.*Training took \([0-9.]*\) s.*/\1/p' "$log" | tail -n 1)
  echo "train steps: ${steps:-n/a}; estimator.train took ${took:-n/a} s"
  echo "eval_results.txt (dev set of $data_dir):"
  sed 's/^/  /' "$out/eval_results.txt"
  grep -o 'Adapter bundle .* on disk .*' "$log" | tail -n 1 | sed 's/^/  /' ||
    echo "  (no 'Adapter bundle ... on disk' line in $log)"
}

train_bundle MRPC MRPC "$GLUE_DIR/MRPC" 128
train_bundle CoLA CoLA "$GLUE_DIR/CoLA" 64
# A subset keeps the benchmark short: 8,000 of SST-2's 67,349 training rows.
SST2_SUBSET="$WORK/data/SST-2"
mkdir -p -- "$SST2_SUBSET"
head -n 8001 "$GLUE_DIR/SST-2/train.tsv" >"$SST2_SUBSET/train.tsv"
cp "$GLUE_DIR/SST-2/dev.tsv" "$SST2_SUBSET/dev.tsv"
train_bundle SST-2 SST-2 "$SST2_SUBSET" 64

MRPC_BUNDLE="$WORK/MRPC/adapter_bundle"
COLA_BUNDLE="$WORK/CoLA/adapter_bundle"
SST2_BUNDLE="$WORK/SST-2/adapter_bundle"

# --------------------------------------------------- 2. multi-task serving

# serve LABEL BUNDLES DATA_DIRS: one scripts/predict_multitask.py process.
serve() {
  local label="$1" bundle_list="$2" data_list="$3"
  local out="$WORK/predict_$label"
  local log="$out/predict_multitask.log"
  rm -rf -- "$out"
  mkdir -p -- "$out"
  local cmd=("$PYTHON" "$REPO/scripts/predict_multitask.py"
    --bert_config_file="$BERT_DIR/bert_config.json"
    --vocab_file="$BERT_DIR/vocab.txt"
    --init_checkpoint="$BERT_DIR/bert_model.ckpt"
    --adapter_bundles="$bundle_list"
    --data_dirs="$data_list"
    --output_dir="$out"
    --split=dev
    --predict_batch_size="$PREDICT_BATCH_SIZE")
  echo
  echo "== 2. scripts/predict_multitask.py, $label (log: $log)"
  printf '+'; printf ' %q' "${cmd[@]}"; echo
  local start end status=0
  start=$(now)
  # Its figures (stdout) are shown and kept; TF's log (stderr) goes to $log.
  "${cmd[@]}" 2>"$log" | tee "$out/figures.txt" || status=$?
  end=$(now)
  if [[ $status -ne 0 ]]; then
    echo "multitask_serving.sh: scripts/predict_multitask.py failed ($status); last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit "$status"
  fi
  record_time "serve $label" "$(elapsed "$start" "$end") s"
  echo "scripts/predict_multitask.py took $(elapsed "$start" "$end") s (whole process)"
}

serve 1task "$MRPC_BUNDLE" "$GLUE_DIR/MRPC"
serve 3tasks "$MRPC_BUNDLE,$SST2_BUNDLE,$COLA_BUNDLE" \
  "$GLUE_DIR/MRPC,$GLUE_DIR/SST-2,$GLUE_DIR/CoLA"

# Resident memory with 1 and with 3 tasks, from the 3-task run's own lines.
mem_line() { sed -n "s/.*process memory with $1 task(s): \(.*\)$/\1/p" "$WORK/predict_3tasks/figures.txt"; }
echo
echo "3-task process: memory with 1 task $(mem_line 1), with 3 tasks $(mem_line 3)"
echo "1-task process: memory with 1 task $(sed -n 's/.*process memory with 1 task(s): \(.*\)$/\1/p' "$WORK/predict_1task/figures.txt")"

# -------------------------------------------------------- 3. sizes on disk

echo
echo "== 3. sizes on disk (bytes)"
show du -sb "$MRPC_BUNDLE" "$SST2_BUNDLE" "$COLA_BUNDLE"
show du -sbc "$BERT_DIR"/bert_model.ckpt.index "$BERT_DIR"/bert_model.ckpt.data-*

echo
echo "== times (wall clock; the machine may be shared with other jobs)"
for step in "${STEP_ORDER[@]}"; do
  printf '  %-28s %s\n' "$step" "${STEP_TIME[$step]}"
done
