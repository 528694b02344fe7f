"""Shared test fixtures: where the real assets live, and skipping `real` tests without them."""

import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

# `make assets` fills this folder; ADAPTER_BERT_ASSETS points elsewhere if wanted.
ASSETS_DIR = os.environ.get("ADAPTER_BERT_ASSETS",
                            os.path.join(REPO_ROOT, ".cache", "assets"))
MINILM_HF_DIR = os.path.join(ASSETS_DIR, "all-MiniLM-L6-v2-hf")
MINILM_DIR = os.path.join(ASSETS_DIR, "all-MiniLM-L6-v2")
MOVIE_REVIEWS_DIR = os.path.join(ASSETS_DIR, "movie_reviews")
GLUE_DIR = os.environ.get("GLUE_DIR",
                          os.path.join(os.path.dirname(REPO_ROOT), "shared", "glue"))


def _require(path, how):
  if not os.path.exists(path):
    pytest.skip("%s not found; %s" % (path, how))
  return path


@pytest.fixture
def minilm_hf_dir():
  """The Hugging Face all-MiniLM-L6-v2 folder (config.json, model.safetensors, vocab.txt)."""
  return _require(os.path.join(MINILM_HF_DIR, "model.safetensors"),
                  "run `make assets`") and MINILM_HF_DIR


@pytest.fixture
def minilm_dir():
  """all-MiniLM-L6-v2 converted to Google's layout (bert_config.json, bert_model.ckpt)."""
  return _require(os.path.join(MINILM_DIR, "bert_config.json"),
                  "run `make assets`") and MINILM_DIR


@pytest.fixture
def glue_dir():
  """The real GLUE files (glue_data layout)."""
  return _require(os.path.join(GLUE_DIR, "MANIFEST.md"),
                  "set GLUE_DIR to a glue_data folder") and GLUE_DIR
