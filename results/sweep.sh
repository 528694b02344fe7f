#!/usr/bin/env bash
# The issue-9 sweep on real GLUE data (MRPC, RTE) with the real all-MiniLM-L6-v2
# weights, every phase in order. Resumable: scripts/sweep.py skips every run that its folder
# records as finished (and every ablated span that has a row), so running this again continues where it
# stopped. From the repository root, after `make venv assets`:
#
#   bash results/sweep.sh
#
# OUT: where the tables and pictures go (default results/); WORK_DIR: the runs'
# output folders (checkpoints, logs; default /tmp/adapter_bert_sweep).
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results}
WORK_DIR=${WORK_DIR:-/tmp/adapter_bert_sweep}
SWEEP="$PY scripts/sweep.py --tasks=MRPC,RTE --results=$OUT/sweep.csv --work_dir=$WORK_DIR --made_by=results/sweep.sh"

# 1. Pilot: seed 1, a small learning-rate grid per method.
$SWEEP --seeds=1 --methods=adapters --adapter_sizes=64 --learning_rates=3e-4,1e-3,1e-4
$SWEEP --seeds=1 --methods=full --learning_rates=5e-5,2e-5
$SWEEP --seeds=1 --methods=head,layernorm,bitfit --learning_rates=1e-3,1e-2
$SWEEP --seeds=1 --methods=adapters --adapter_sizes=8 --learning_rates=3e-4,1e-3
$SWEEP --seeds=1 --methods=adapters:noln --adapter_sizes=64 --learning_rates=3e-4,1e-3
$SWEEP --seeds=1 --methods=top_layers:2 --learning_rates=5e-5,1e-4

# 2. Ablation of the seed-1 MRPC adapter model (trained again if its folder is gone): every span of layers switched
#    off at eval time.
$PY scripts/sweep.py --tasks=MRPC --methods=adapters --adapter_sizes=64 --seeds=1 --at_selected \
    --results=$OUT/sweep.csv --work_dir=$WORK_DIR --ablation_results=$OUT/ablation.csv
$PY scripts/plot_results.py --results=$OUT/sweep.csv --ablation_results=$OUT/ablation.csv --ablation_metric=eval_accuracy --output_dir=$OUT

# 3. Seeds 1-3 at each (task, method, size)'s setting selected on seed 1, the
#    paper's comparison (adapters of size 64 against full fine-tuning) first.
$SWEEP --seeds=1,2,3 --at_selected --methods=adapters,full --adapter_sizes=64

# 4. Seeds for every other method.
$SWEEP --seeds=1,2,3 --at_selected --methods=adapters,adapters:noln,head,layernorm,bitfit,top_layers:2 \
    --adapter_sizes=8,64
$PY scripts/plot_results.py --results=$OUT/sweep.csv --ablation_results=$OUT/ablation.csv --ablation_metric=eval_accuracy --output_dir=$OUT

# 5. Robustness to the adapters' init scale (the paper's Figure 7), MRPC,
#    at the learning rate the pilot chose for adapters of size 64 there (3e-4).
$SWEEP --tasks=MRPC --seeds=1 --methods=adapters --adapter_sizes=64 --learning_rates=3e-4 \
    --init_scales=1e-7,1e-5,1e-3,1e-2,1e-1,1
$PY scripts/plot_results.py --results=$OUT/sweep.csv --ablation_results=$OUT/ablation.csv --ablation_metric=eval_accuracy --output_dir=$OUT
