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


# A vocabulary big enough for the tiny tasks the tests write.
TINY_WORDS = ("the a movie film was is it this i and , . ! not very good great "
              "fun lovely moving bad awful boring dull hated liked loved "
              "plot acting story").split()
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(TINY_WORDS)


def tiny_bert_config_dict(**overrides):
  """The tiny test model: 2 layers, hidden 32."""
  config = {
      "vocab_size": len(TINY_VOCAB),
      "hidden_size": 32,
      "num_hidden_layers": 2,
      "num_attention_heads": 4,
      "intermediate_size": 37,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "attention_probs_dropout_prob": 0.1,
      "max_position_embeddings": 128,
      "type_vocab_size": 2,
      "initializer_range": 0.02,
  }
  config.update(overrides)
  return config


def write_tiny_bert(output_dir, seed=0, **config_overrides):
  """Writes a random tiny BERT in Google's layout; returns the paths.

  Returns:
    dict with bert_config_file, vocab_file, init_checkpoint.
  """
  import json

  import tensorflow.compat.v1 as tf

  import modeling

  os.makedirs(output_dir, exist_ok=True)
  config_dict = tiny_bert_config_dict(**config_overrides)
  paths = {
      "bert_config_file": os.path.join(output_dir, "bert_config.json"),
      "vocab_file": os.path.join(output_dir, "vocab.txt"),
      "init_checkpoint": os.path.join(output_dir, "bert_model.ckpt"),
  }
  with open(paths["bert_config_file"], "w") as f:
    json.dump(config_dict, f)
  with open(paths["vocab_file"], "w") as f:
    f.write("\n".join(TINY_VOCAB) + "\n")
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    input_ids = tf.zeros([1, 4], dtype=tf.int32)
    modeling.BertModel(modeling.BertConfig.from_dict(config_dict), False,
                       input_ids)
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      saver.save(session, paths["init_checkpoint"], write_meta_graph=False,
                 write_state=False)
  return paths


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
  """A random tiny BERT checkpoint, written once per test session."""
  return write_tiny_bert(str(tmp_path_factory.mktemp("tiny_bert")))
