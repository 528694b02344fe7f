# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests for scripts/convert_hf_checkpoint.py (adapter_bert.hf_checkpoint) on
a tiny random Hugging Face folder."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file
import tensorflow.compat.v1 as tf

from adapter_bert import hf_checkpoint

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "scripts", "convert_hf_checkpoint.py")

TINY_CONFIG = {
    "architectures": ["BertForPreTraining"],
    "model_type": "bert",
    "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 32,
    "initializer_range": 0.02,
    "intermediate_size": 37,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 16,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "type_vocab_size": 2,
    "vocab_size": 20,
}

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie",
         "film", "good", "bad", "great", "was", "is", "not", "##s", "##ly",
         ".", ",", "!"]

# (HF module, Google scope, kind, shape as stored by HF). Written out by hand
# rather than taken from the module under test, so a wrong table there fails.
H, I, V, P, T = 32, 37, 20, 16, 2
_MODULES = [
    ("embeddings.word_embeddings", "bert/embeddings/word_embeddings", "emb",
     (V, H)),
    ("embeddings.position_embeddings", "bert/embeddings/position_embeddings",
     "emb", (P, H)),
    ("embeddings.token_type_embeddings",
     "bert/embeddings/token_type_embeddings", "emb", (T, H)),
    ("embeddings.LayerNorm", "bert/embeddings/LayerNorm", "ln", (H,)),
]
for _n in range(2):
  _MODULES += [
      ("encoder.layer.%d.attention.self.query" % _n,
       "bert/encoder/layer_%d/attention/self/query" % _n, "linear", (H, H)),
      ("encoder.layer.%d.attention.self.key" % _n,
       "bert/encoder/layer_%d/attention/self/key" % _n, "linear", (H, H)),
      ("encoder.layer.%d.attention.self.value" % _n,
       "bert/encoder/layer_%d/attention/self/value" % _n, "linear", (H, H)),
      ("encoder.layer.%d.attention.output.dense" % _n,
       "bert/encoder/layer_%d/attention/output/dense" % _n, "linear", (H, H)),
      ("encoder.layer.%d.attention.output.LayerNorm" % _n,
       "bert/encoder/layer_%d/attention/output/LayerNorm" % _n, "ln", (H,)),
      ("encoder.layer.%d.intermediate.dense" % _n,
       "bert/encoder/layer_%d/intermediate/dense" % _n, "linear", (I, H)),
      ("encoder.layer.%d.output.dense" % _n,
       "bert/encoder/layer_%d/output/dense" % _n, "linear", (H, I)),
      ("encoder.layer.%d.output.LayerNorm" % _n,
       "bert/encoder/layer_%d/output/LayerNorm" % _n, "ln", (H,)),
  ]
_MODULES.append(("pooler.dense", "bert/pooler/dense", "linear", (H, H)))


def _expected_pairs(old_layer_norm_names=False):
  """Returns [(HF name without prefix, Google name, transpose)] pairs."""
  pairs = []
  for hf, google, kind, _ in _MODULES:
    if kind == "emb":
      pairs.append((hf + ".weight", google, False))
    elif kind == "linear":
      pairs.append((hf + ".weight", google + "/kernel", True))
      pairs.append((hf + ".bias", google + "/bias", False))
    else:
      gamma, beta = (("gamma", "beta") if old_layer_norm_names
                     else ("weight", "bias"))
      pairs.append((hf + "." + gamma, google + "/gamma", False))
      pairs.append((hf + "." + beta, google + "/beta", False))
  return pairs


def _random_weights(seed=0, old_layer_norm_names=False):
  """Random HF-layout tensors (no prefix), keyed by HF name."""
  rng = np.random.RandomState(seed)
  shapes = {}
  for hf, _, kind, shape in _MODULES:
    if kind == "linear":
      shapes[hf + ".weight"], shapes[hf + ".bias"] = shape, shape[:1]
    elif kind == "emb":
      shapes[hf + ".weight"] = shape
    else:
      names = ("gamma", "beta") if old_layer_norm_names else ("weight", "bias")
      for name in names:
        shapes[hf + "." + name] = shape
  return {name: rng.randn(*shape).astype(np.float32)
          for name, shape in shapes.items()}


def make_hf_dir(root, prefix="bert.", config=None, drop=(), add=None,
                vocab=None, old_layer_norm_names=False, skip_files=()):
  """Writes a tiny HF BERT folder; returns (folder, tensors by short name).

  Args:
    root: parent folder (a pytest tmp_path).
    prefix: "bert." (BertForPreTraining style) or "" (bare BertModel).
    config: overrides merged into TINY_CONFIG; a None value deletes the key.
    drop: unprefixed tensor names to leave out.
    add: extra tensors {full name: array}, written as given.
    vocab: vocabulary lines to write instead of VOCAB.
    old_layer_norm_names: name LayerNorm parameters gamma/beta.
    skip_files: file names not to write.
  """
  hf_dir = os.path.join(str(root), "hf")
  os.makedirs(hf_dir)
  cfg = dict(TINY_CONFIG)
  for key, value in (config or {}).items():
    if value is None:
      cfg.pop(key, None)
    else:
      cfg[key] = value
  weights = _random_weights(old_layer_norm_names=old_layer_norm_names)
  for name in drop:
    del weights[name]
  stored = {prefix + name: value for name, value in weights.items()}
  # Things a real checkpoint carries that the converter must skip.
  stored[prefix + "embeddings.position_ids"] = np.arange(
      P, dtype=np.int64)[None, :]
  stored["cls.predictions.bias"] = np.zeros([V], np.float32)
  stored.update(add or {})
  if "config.json" not in skip_files:
    with open(os.path.join(hf_dir, "config.json"), "w") as f:
      json.dump(cfg, f)
  if "model.safetensors" not in skip_files:
    save_file(stored, os.path.join(hf_dir, "model.safetensors"))
  if "vocab.txt" not in skip_files:
    with open(os.path.join(hf_dir, "vocab.txt"), "w") as f:
      f.write("".join(token + "\n" for token in (vocab or VOCAB)))
  return hf_dir, weights


def _convert_error(tmp_path, **kwargs):
  """Converts a broken folder; returns the error text, checks for no output."""
  hf_dir, _ = make_hf_dir(tmp_path, **kwargs)
  out_dir = os.path.join(str(tmp_path), "out")
  with pytest.raises(ValueError) as info:
    hf_checkpoint.convert(hf_dir, out_dir)
  assert not os.path.exists(out_dir) or not os.listdir(out_dir)
  return str(info.value)


@pytest.mark.parametrize("prefix", ["bert.", ""])
def test_round_trip(tmp_path, prefix):
  hf_dir, weights = make_hf_dir(tmp_path, prefix=prefix)
  out_dir = os.path.join(str(tmp_path), "out")
  summary = hf_checkpoint.convert(hf_dir, out_dir)

  pairs = _expected_pairs()
  reader = tf.train.load_checkpoint(os.path.join(out_dir, "bert_model.ckpt"))
  assert set(reader.get_variable_to_shape_map()) == {g for _, g, _ in pairs}
  for hf_name, google_name, transpose in pairs:
    want = weights[hf_name].T if transpose else weights[hf_name]
    got = reader.get_tensor(google_name)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want, err_msg=google_name)

  assert sorted(os.listdir(out_dir)) == [
      "bert_config.json", "bert_model.ckpt.data-00000-of-00001",
      "bert_model.ckpt.index", "vocab.txt"]
  with open(os.path.join(out_dir, "bert_config.json")) as f:
    config = json.load(f)
  assert config == {
      "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu_exact",
      "hidden_dropout_prob": 0.1, "hidden_size": 32,
      "initializer_range": 0.02, "intermediate_size": 37,
      "max_position_embeddings": 16, "num_attention_heads": 4,
      "num_hidden_layers": 2, "type_vocab_size": 2, "vocab_size": 20,
      "layer_norm_eps": 1e-12}
  with open(os.path.join(out_dir, "vocab.txt")) as f:
    assert f.read().split("\n")[:-1] == VOCAB

  assert summary["num_tensors"] == len(pairs)
  assert summary["num_parameters"] == sum(w.size for w in weights.values())
  assert summary["skipped"] == sorted(
      [prefix + "embeddings.position_ids", "cls.predictions.bias"])


def test_old_layer_norm_names_are_accepted(tmp_path):
  hf_dir, weights = make_hf_dir(tmp_path, old_layer_norm_names=True)
  out_dir = os.path.join(str(tmp_path), "out")
  hf_checkpoint.convert(hf_dir, out_dir)
  reader = tf.train.load_checkpoint(os.path.join(out_dir, "bert_model.ckpt"))
  np.testing.assert_array_equal(
      reader.get_tensor("bert/encoder/layer_1/output/LayerNorm/gamma"),
      weights["encoder.layer.1.output.LayerNorm.gamma"])
  np.testing.assert_array_equal(
      reader.get_tensor("bert/embeddings/LayerNorm/beta"),
      weights["embeddings.LayerNorm.beta"])


def test_converting_twice_replaces_the_output(tmp_path):
  hf_dir, _ = make_hf_dir(tmp_path)
  out_dir = os.path.join(str(tmp_path), "out")
  hf_checkpoint.convert(hf_dir, out_dir)
  hf_checkpoint.convert(hf_dir, out_dir)
  assert len(os.listdir(out_dir)) == 4  # no leftover temporary folder


@pytest.mark.parametrize("hf_act,google_act", [
    ("gelu", "gelu_exact"), ("gelu_new", "gelu"), ("gelu_pytorch_tanh", "gelu"),
    ("gelu_fast", "gelu"), ("relu", "relu")])
def test_hidden_act_mapping(hf_act, google_act):
  config = dict(TINY_CONFIG, hidden_act=hf_act)
  assert hf_checkpoint.hf_to_google_config(config)["hidden_act"] == (
      google_act)


def test_layer_norm_eps_defaults_to_1e_12():
  config = dict(TINY_CONFIG)
  del config["layer_norm_eps"]
  google = hf_checkpoint.hf_to_google_config(config)
  assert google["layer_norm_eps"] == 1e-12


def test_unmappable_tensor_is_named(tmp_path):
  message = _convert_error(tmp_path, add={
      "bert.encoder.layer.0.attention.self.rotary.weight":
          np.zeros([2], np.float32),
      "classifier.weight": np.zeros([2, H], np.float32)})
  assert "could not map 2 tensors" in message
  assert "bert.encoder.layer.0.attention.self.rotary.weight" in message
  assert "classifier.weight" in message


def test_layer_beyond_config_is_unmappable(tmp_path):
  message = _convert_error(tmp_path, add={
      "bert.encoder.layer.2.output.dense.bias": np.zeros([H], np.float32)})
  assert "bert.encoder.layer.2.output.dense.bias" in message


def test_wrong_shape_is_named(tmp_path):
  message = _convert_error(tmp_path, config={"intermediate_size": 36})
  assert "bert.encoder.layer.0.intermediate.dense.bias" in message or (
      "bert.encoder.layer.0.intermediate.dense.weight" in message)
  assert "36" in message and "37" in message


def test_wrong_shape_reports_hf_layout(tmp_path):
  bad = np.zeros([H, H + 1], np.float32)
  name = "encoder.layer.1.attention.self.key.weight"
  message = _convert_error(tmp_path, drop=[name], add={"bert." + name: bad})
  assert "bert.encoder.layer.1.attention.self.key.weight" in message
  assert "(32, 33)" in message and "(32, 32)" in message


def test_missing_tensor_is_named(tmp_path):
  message = _convert_error(tmp_path,
                           drop=["encoder.layer.1.attention.self.query.weight"])
  assert "bert/encoder/layer_1/attention/self/query/kernel" in message
  assert "encoder.layer.1.attention.self.query.weight" in message


def test_missing_pooler_is_explained(tmp_path):
  message = _convert_error(tmp_path,
                           drop=["pooler.dense.weight", "pooler.dense.bias"])
  assert "pooler" in message


def test_duplicate_prefixed_and_bare_names(tmp_path):
  message = _convert_error(tmp_path, add={
      "pooler.dense.bias": np.zeros([H], np.float32)})
  assert "bert/pooler/dense/bias" in message


def test_unknown_hidden_act(tmp_path):
  message = _convert_error(tmp_path, config={"hidden_act": "silu"})
  assert "silu" in message


def test_non_bert_model_type(tmp_path):
  message = _convert_error(tmp_path, config={"model_type": "roberta"})
  assert "roberta" in message


def test_relative_position_embeddings_are_refused(tmp_path):
  message = _convert_error(tmp_path,
                           config={"position_embedding_type": "relative_key"})
  assert "relative_key" in message


def test_vocab_size_mismatch_names_both_files(tmp_path):
  message = _convert_error(tmp_path, vocab=VOCAB[:-1])
  assert "vocab.txt" in message and "config.json" in message
  assert "19" in message and "20" in message


def test_failure_while_writing_leaves_no_output(tmp_path, monkeypatch):
  hf_dir, _ = make_hf_dir(tmp_path)
  out_dir = os.path.join(str(tmp_path), "out")

  def broken_write(tensors, prefix):
    with open(prefix + ".index", "w") as f:
      f.write("half-written")
    raise OSError("disk full")

  monkeypatch.setattr(hf_checkpoint, "_write_checkpoint", broken_write)
  with pytest.raises(OSError):
    hf_checkpoint.convert(hf_dir, out_dir)
  assert os.listdir(out_dir) == []


def _run_cli(hf_dir, out_dir):
  return subprocess.run(
      [sys.executable, SCRIPT, "--hf_dir=" + hf_dir, "--output_dir=" + out_dir],
      capture_output=True, text=True, timeout=300,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def test_cli_missing_weights_fails_with_one_line(tmp_path):
  hf_dir, _ = make_hf_dir(tmp_path, skip_files=["model.safetensors"])
  out_dir = os.path.join(str(tmp_path), "out")
  result = _run_cli(hf_dir, out_dir)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1, result.stderr
  assert lines[0].startswith("convert_hf_checkpoint.py: error:")
  assert "model.safetensors" in lines[0]
  leftovers = os.listdir(out_dir) if os.path.exists(out_dir) else []
  assert not [name for name in leftovers if name.startswith("bert_model.ckpt")]


def test_cli_success_prints_summary(tmp_path):
  hf_dir, _ = make_hf_dir(tmp_path, prefix="")
  out_dir = os.path.join(str(tmp_path), "out")
  result = _run_cli(hf_dir, out_dir)
  assert result.returncode == 0, result.stderr
  assert "Converted %d tensors" % len(_expected_pairs()) in result.stdout
  assert "embeddings.position_ids" in result.stdout
  assert "cls.predictions.bias" in result.stdout
  assert os.path.exists(os.path.join(out_dir, "bert_model.ckpt.index"))


def test_a_dropout_rate_of_one_or_more_is_refused_at_conversion(tmp_path):
  message = _convert_error(tmp_path, config={"hidden_dropout_prob": 1.5})
  assert "config.json: 'hidden_dropout_prob' must be a number in [0, 1)" in (
      message)
