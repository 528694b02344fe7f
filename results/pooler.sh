#!/usr/bin/env bash
# Does all-MiniLM-L6-v2's untrained pooler hold back the methods that freeze it? The checkpoint's pooler was
# never trained (its bias is exactly zero: sentence-transformers trained the model through mean pooling), so a
# method that keeps it frozen, as the paper's adapter-bert code does with BERT's NSP-trained pooler, classifies
# [CLS] through a fixed random projection. These runs train the pooler (--train_pooler) in the cells of the
# GLUE table's pilot (results/glue.csv) at the learning rate the pilot selected for the frozen-pooler cell,
# seed 1, 3 epochs, the same fixed settings. From the repository root, after `make venv assets`:
#
#   bash results/pooler.sh
#
# OUT: where pooler.csv and pooler.md go (default results/); WORK_DIR: the runs' folders (default
# /tmp/adapter_bert_pooler); PARALLEL: runs at once (default 2, or 1 on a 1-core machine). Resumable.
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results}
WORK_DIR=${WORK_DIR:-/tmp/adapter_bert_pooler}
PARALLEL=${PARALLEL:-$(( $(nproc) >= 2 ? 2 : 1 ))}
SWEEP="$PY scripts/sweep.py --results=$OUT/pooler.csv --work_dir=$WORK_DIR --made_by=results/pooler.sh \
    --parallel=$PARALLEL --seeds=1 --epochs=3"
$SWEEP --tasks=MRPC,STS-B --methods=head:train_pooler=true --learning_rates=3e-3
$SWEEP --tasks=MRPC,STS-B --methods=adapters:train_pooler=true --adapter_sizes=64 --learning_rates=3e-4
# LoRA ends at a constant answer on STS-B and at the majority class on CoLA (both 3e-4 and 1e-3) with the pooler
# frozen.
$SWEEP --tasks=STS-B,CoLA --methods=lora:train_pooler=true --learning_rates=3e-4
