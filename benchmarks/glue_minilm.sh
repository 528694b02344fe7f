#!/usr/bin/env bash
# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
#
# Fine-tunes the real all-MiniLM-L6-v2 (6 layers, hidden 384, uncased; converted
# by `make assets`) on one real GLUE task with run_classifier.py, on whatever
# CPU this is, and prints the figures of the run:
#
#   task, tuning mode   what was trained
#   parameters          trained / total, from the log's `Parameters:` line
#                       (the breakdown in [...] says which kinds train)
#   train steps         int(train examples / batch size * epochs)
#   steps/s             from the `step N: ... steps/s, ... examples/s` lines
#                       that run_classifier logs every --log_every_n_steps
#                       steps: the mean over those windows and the last one.
#                       They time training steps only (no graph building, no
#                       checkpoint restore); "n/a" if the run has fewer steps
#                       than --log_every_n_steps.
#   training time       the log's `Training took` (estimator.train: graph
#                       building, checkpoint restore, all steps, final save)
#   total wall time     the whole run_classifier.py process (also feature
#                       conversion and the dev-set evaluation)
#   dev metrics         eval_results.txt (and eval_results_<split>.txt for a
#                       task with a second dev split, e.g. MNLI mismatched):
#                       the task's official GLUE metrics as eval_<name>
#                       (MRPC: eval_accuracy, eval_f1), plus eval_loss and
#                       global_step.
#
# Usage:
#   benchmarks/glue_minilm.sh TASK [extra run_classifier.py flags...]
#   e.g. benchmarks/glue_minilm.sh MRPC
#        benchmarks/glue_minilm.sh MRPC --tuning_mode=full \
#            --adapter_placement=none --learning_rate=5e-5
#
# TASK is both --task_name and the folder under $GLUE_DIR (glue_data layout:
# CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI).
#
# Environment:
#   GLUE_DIR  GLUE data (default: <repo>/../shared/glue)
#   OUT       output dir (default: /tmp/adapter_bert_bench/<TASK>). It is
#             DELETED before the run, so no cached features or checkpoints
#             leak from an earlier run; the full log is $OUT/run_classifier.log.
#   PYTHON    interpreter (default: <repo>/.venv/bin/python)
#   CLASSIFIER  the script run with these flags (default: <repo>/run_classifier.py;
#             benchmarks/precision_training.py trains with a part of a
#             bfloat16 graph kept in float32)
#
# The default flags below suit the MiniLM on CPU. Extra flags come after them
# on the command line and absl keeps the last value of a repeated flag, so
# any of them can be overridden. --task_name, --data_dir and --output_dir are
# set from TASK, GLUE_DIR and OUT and refused as extra flags.
#
# The numbers depend on the machine and on what else runs on it; steps/s on a
# shared machine is a lower bound of what the code can do.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  sed -n '/^# Usage:/,/^# Environment:/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
case "$1" in -h|--help|-*) usage ;; esac
TASK="$1"
shift

for flag in "$@"; do
  case "$flag" in
    --task_name|--task_name=*|--data_dir|--data_dir=*|--output_dir|--output_dir=*)
      echo "glue_minilm.sh: ${flag%%=*} is set from TASK, GLUE_DIR or OUT; set those instead" >&2
      exit 2 ;;
  esac
done

GLUE_DIR="${GLUE_DIR:-$REPO/../shared/glue}"
OUT="${OUT:-/tmp/adapter_bert_bench/$TASK}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"

# Where the Makefile puts the converted model: $ADAPTER_BERT_ASSETS or .cache/assets.
ASSETS="${ADAPTER_BERT_ASSETS:-.cache/assets}"
[[ "$ASSETS" = /* ]] || ASSETS="$REPO/$ASSETS"
BERT_DIR="$ASSETS/all-MiniLM-L6-v2"

if ! make -C "$REPO" assets; then
  echo "glue_minilm.sh: 'make -C $REPO assets' failed; the converted all-MiniLM-L6-v2 is needed in $BERT_DIR" >&2
  exit 1
fi
for f in bert_config.json vocab.txt bert_model.ckpt.index; do
  if [[ ! -f "$BERT_DIR/$f" ]]; then
    echo "glue_minilm.sh: $BERT_DIR/$f is missing after 'make assets'" >&2
    exit 1
  fi
done
if [[ ! -x "$PYTHON" ]]; then
  echo "glue_minilm.sh: no Python at $PYTHON (run 'make -C $REPO venv' or set PYTHON)" >&2
  exit 1
fi
DATA_DIR="$GLUE_DIR/$TASK"
if [[ ! -d "$DATA_DIR" ]]; then
  echo "glue_minilm.sh: no GLUE folder $DATA_DIR (set GLUE_DIR; TASK is the folder name)" >&2
  exit 1
fi
DATA_DIR="$(cd "$DATA_DIR" && pwd)"

case "$OUT" in
  ""|/|"$HOME"|"$REPO"|"$REPO"/) echo "glue_minilm.sh: refusing OUT='$OUT'" >&2; exit 1 ;;
esac
rm -rf -- "$OUT"
mkdir -p -- "$OUT"
LOG="$OUT/run_classifier.log"

CMD=("$PYTHON" "${CLASSIFIER:-$REPO/run_classifier.py}"
  --task_name="$TASK"
  --do_train=true
  --do_eval=true
  --data_dir="$DATA_DIR"
  --vocab_file="$BERT_DIR/vocab.txt"
  --bert_config_file="$BERT_DIR/bert_config.json"
  --init_checkpoint="$BERT_DIR/bert_model.ckpt"
  --do_lower_case=true
  --max_seq_length=128
  --train_batch_size=32
  --eval_batch_size=64
  --learning_rate=3e-4
  --num_train_epochs=3
  --output_dir="$OUT"
  "$@")

echo "== command"
printf '%q ' "${CMD[@]}"
echo
echo "== log: $LOG"

start=$(date +%s.%N)
status=0
"${CMD[@]}" >"$LOG" 2>&1 || status=$?
end=$(date +%s.%N)
if [[ $status -ne 0 ]]; then
  echo "glue_minilm.sh: run_classifier.py exited with $status; last lines of $LOG:" >&2
  tail -n 30 "$LOG" >&2
  exit "$status"
fi

# A flag's value as run_classifier saw it (the last --name=value wins), or
# run_classifier.py's default ($2) if the command does not set it.
flag_value() {
  local name="$1" value="$2 (default)" arg
  for arg in "${CMD[@]}"; do
    case "$arg" in --"$name"=*) value="${arg#*=}" ;; esac
  done
  printf '%s' "$value"
}

params=$(sed -n 's/.*Parameters: //p' "$LOG" | tail -n 1)
steps=$(sed -n 's/.*Num steps = \([0-9]*\).*/\1/p' "$LOG" | tail -n 1)
train_time=$(sed -n 's/.*Training took \([0-9.]*\) s.*/\1/p' "$LOG" | tail -n 1)
# `step 120/343 (35%): loss = ...` (older logs: `step 120: loss = ...`).
STEP='step \([0-9]*\)\(\/[0-9]* ([0-9]*%)\)\{0,1\}'
rates=$(sed -n "s/.*${STEP}: loss = [-0-9.naif]*, \([0-9.]*\) steps\/s, \([0-9.]*\) examples\/s.*/\3 \4/p" "$LOG")
if [[ -n "$rates" ]]; then
  rate_summary=$(awk '{s += $1; e += $2; n++; ls = $1; le = $2}
    END {printf "%.2f steps/s, %.1f examples/s (mean of %d windows); last window %.2f steps/s, %.1f examples/s", s/n, e/n, n, ls, le}' <<<"$rates")
else
  rate_summary="n/a (no 'step N: ... steps/s' line in the log)"
fi
last_loss=$(sed -n "s/.*${STEP}: loss = \([-0-9.naif]*\),.*/step \1: \3/p" "$LOG" | tail -n 1)

echo "== results"
echo "task:              $TASK"
# The method's own options are its defaults unless given: they are in the
# flags after TASK (and the parameter line below says what trained).
echo "tuning mode:       $(flag_value tuning_mode adapters), learning_rate=$(flag_value learning_rate 3e-4); flags given: ${*:-none}"
echo "parameters:        ${params:-n/a (no 'Parameters:' line in the log)}"
echo "train steps:       ${steps:-n/a}"
echo "throughput:        $rate_summary"
echo "last logged loss:  ${last_loss:-n/a}"
echo "training time:     ${train_time:-n/a} s (estimator.train)"
echo "total wall time:   $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}') s (run_classifier.py process)"
found=0
for f in "$OUT"/eval_results.txt "$OUT"/eval_results_*.txt; do
  [[ -f "$f" ]] || continue
  found=1
  echo "dev metrics ($(basename "$f")):"
  sed 's/^/  /' "$f"
done
if [[ $found -eq 0 ]]; then
  echo "glue_minilm.sh: no eval_results*.txt in $OUT" >&2
  exit 1
fi
