#!/usr/bin/env bash
# The pilot of the issue-9 sweep: one seed, a learning-rate grid per method.
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
COMMON="--tasks=MRPC,RTE --seeds=1 --results=results/sweep.csv --work_dir=/tmp/adapter_bert_sweep"
$PY sweep.py $COMMON --methods=adapters --adapter_sizes=64 --learning_rates=3e-4,1e-3,1e-4
$PY sweep.py $COMMON --methods=full --learning_rates=5e-5,2e-5
$PY sweep.py $COMMON --methods=head,layernorm,bitfit --learning_rates=1e-3,1e-2
$PY sweep.py $COMMON --methods=adapters --adapter_sizes=8 --learning_rates=3e-4,1e-3
$PY sweep.py $COMMON --methods=adapters:noln --adapter_sizes=64 --learning_rates=3e-4,1e-3
$PY sweep.py $COMMON --methods=top_layers:2 --learning_rates=5e-5,1e-4
