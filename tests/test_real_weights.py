# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Checks modeling.BertModel on real pre-trained weights (all-MiniLM-L6-v2).

The reference is an independent numpy forward pass that reads the Hugging Face
`model.safetensors` directly (HF names, HF [out, in] weights), so a wrong name
mapping, a missing transpose, a wrong activation or LayerNorm epsilon in either
adapter_bert/hf_checkpoint.py or modeling.py shows up as a numeric mismatch.
"""

import json
import math
import os

import numpy as np
import pytest
from safetensors.numpy import load_file
import tensorflow.compat.v1 as tf

from adapter_bert import hf_checkpoint

pytestmark = pytest.mark.real

# Movie-review style sentences of different lengths, so the batch is padded.
REVIEWS = [
    "A gripping, beautifully acted film that stays with you long after the "
    "credits roll.",
    "Dull and far too long.",
    "The plot makes no sense, but the soundtrack is wonderful and the lead "
    "actress gives the role everything she has.",
    "I loved it!",
]

TOLERANCE = 1e-4


def _tokenize(vocab_file, sentences):
  """Returns (input_ids, input_mask, token_type_ids) int32 arrays, 0-padded."""
  import tokenization  # pylint: disable=g-import-not-at-top
  tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case=True)
  rows = [tokenizer.convert_tokens_to_ids(
      ["[CLS]"] + tokenizer.tokenize(text) + ["[SEP]"]) for text in sentences]
  length = max(len(row) for row in rows)
  input_ids = np.zeros([len(rows), length], np.int32)
  input_mask = np.zeros([len(rows), length], np.int32)
  for i, row in enumerate(rows):
    input_ids[i, :len(row)] = row
    input_mask[i, :len(row)] = 1
  return input_ids, input_mask, np.zeros_like(input_ids)


# ---------------------------------------------------------------------------
# Independent numpy reference (float64, Hugging Face names and layouts).
# ---------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu_exact(x):
  return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _layer_norm(x, weight, bias, eps):
  mean = x.mean(axis=-1, keepdims=True)
  var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * weight + bias


def _softmax(x):
  x = x - x.max(axis=-1, keepdims=True)
  e = np.exp(x)
  return e / e.sum(axis=-1, keepdims=True)


class NumpyBert(object):
  """BERT encoder forward pass from a Hugging Face safetensors file."""

  def __init__(self, hf_dir):
    with open(os.path.join(hf_dir, "config.json")) as f:
      self.config = json.load(f)
    assert self.config["hidden_act"] == "gelu"  # the exact erf GELU
    weights = load_file(os.path.join(hf_dir, "model.safetensors"))
    self.w = {(k[len("bert."):] if k.startswith("bert.") else k):
              v.astype(np.float64) for k, v in weights.items()
              if v.dtype.kind == "f"}
    self.eps = self.config.get("layer_norm_eps", 1e-12)

  def _linear(self, x, name):
    # HF stores nn.Linear weights as [out, in].
    return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

  def _norm(self, x, name):
    return _layer_norm(x, self.w[name + ".weight"], self.w[name + ".bias"],
                       self.eps)

  def _attention(self, x, mask, prefix):
    batch, length, hidden = x.shape
    heads = self.config["num_attention_heads"]
    size = hidden // heads

    def split(t):
      return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

    q = split(self._linear(x, prefix + "self.query"))
    k = split(self._linear(x, prefix + "self.key"))
    v = split(self._linear(x, prefix + "self.value"))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
    scores = scores + (1.0 - mask[:, None, None, :]) * -10000.0
    context = (_softmax(scores) @ v).transpose(0, 2, 1, 3)
    return context.reshape(batch, length, hidden)

  def sequence_output(self, input_ids, input_mask, token_type_ids):
    """Returns the last layer's output, [batch, seq, hidden], float64."""
    length = input_ids.shape[1]
    x = (self.w["embeddings.word_embeddings.weight"][input_ids] +
         self.w["embeddings.position_embeddings.weight"][:length][None] +
         self.w["embeddings.token_type_embeddings.weight"][token_type_ids])
    x = self._norm(x, "embeddings.LayerNorm")
    mask = input_mask.astype(np.float64)
    for i in range(self.config["num_hidden_layers"]):
      prefix = "encoder.layer.%d." % i
      attended = self._attention(x, mask, prefix + "attention.")
      x = self._norm(self._linear(attended, prefix + "attention.output.dense")
                     + x, prefix + "attention.output.LayerNorm")
      inner = _gelu_exact(self._linear(x, prefix + "intermediate.dense"))
      x = self._norm(self._linear(inner, prefix + "output.dense") + x,
                     prefix + "output.LayerNorm")
    return x

  def pooled_output(self, sequence_output):
    return np.tanh(self._linear(sequence_output[:, 0], "pooler.dense"))


def _sentence_embeddings(model, vocab_file, sentences):
  """sentence-transformers style: masked mean pooling, then L2 normalization."""
  ids, mask, segments = _tokenize(vocab_file, sentences)
  seq = model.sequence_output(ids, mask, segments)
  summed = (seq * mask[:, :, None]).sum(axis=1)
  mean = summed / mask.sum(axis=1, keepdims=True)
  return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def test_numpy_reference_puts_paraphrases_closer(minilm_hf_dir):
  # all-MiniLM-L6-v2 is a sentence-embedding model: if the reference is a
  # faithful forward pass, paraphrases land much closer than unrelated text.
  model = NumpyBert(minilm_hf_dir)
  emb = _sentence_embeddings(model, os.path.join(minilm_hf_dir, "vocab.txt"), [
      "The movie was absolutely wonderful and I enjoyed every minute of it.",
      "I loved this film, it was fantastic from start to finish.",
      "The quarterly tax report is due next Tuesday.",
      "A cat is sleeping on the warm windowsill.",
  ])
  paraphrase = float(emb[0] @ emb[1])
  unrelated = [float(emb[0] @ emb[2]), float(emb[0] @ emb[3]),
               float(emb[1] @ emb[2])]
  assert paraphrase > 0.6, paraphrase
  assert max(unrelated) < 0.3, unrelated
  assert paraphrase > max(unrelated) + 0.3


def _run_modeling(model_dir, input_ids, input_mask, token_type_ids):
  """Runs modeling.BertModel (adapters off) restored from the converted ckpt."""
  import modeling  # pylint: disable=g-import-not-at-top
  config = modeling.BertConfig.from_json_file(
      os.path.join(model_dir, "bert_config.json"))
  with tf.Graph().as_default():
    model = modeling.BertModel(
        config=config, is_training=False,
        input_ids=tf.constant(input_ids), input_mask=tf.constant(input_mask),
        token_type_ids=tf.constant(token_type_ids), hooks=None)
    tf.train.init_from_checkpoint(os.path.join(model_dir, "bert_model.ckpt"),
                                  {"bert/": "bert/"})
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      return sess.run([model.get_sequence_output(), model.get_pooled_output()])


@pytest.mark.slow
def test_converted_minilm_matches_numpy_reference(minilm_hf_dir, tmp_path):
  model_dir = str(tmp_path / "all-MiniLM-L6-v2")
  summary = hf_checkpoint.convert(minilm_hf_dir, model_dir)
  assert summary["num_tensors"] == 5 + 6 * 16 + 2
  assert summary["skipped"] == ["embeddings.position_ids"]

  input_ids, input_mask, token_type_ids = _tokenize(
      os.path.join(model_dir, "vocab.txt"), REVIEWS)
  lengths = input_mask.sum(axis=1)
  assert len(set(lengths)) == len(REVIEWS)  # really padded, to several lengths
  with open(os.path.join(model_dir, "vocab.txt"), encoding="utf-8") as f:
    unk_id = [line.rstrip("\n") for line in f].index("[UNK]")
  assert (input_ids != unk_id).all()  # every word is in the vocabulary

  reference = NumpyBert(minilm_hf_dir)
  want_seq = reference.sequence_output(input_ids, input_mask, token_type_ids)
  want_pooled = reference.pooled_output(want_seq)
  got_seq, got_pooled = _run_modeling(model_dir, input_ids, input_mask,
                                      token_type_ids)

  assert got_seq.shape == want_seq.shape
  valid = input_mask.astype(bool)
  seq_diff = float(np.abs(got_seq[valid] - want_seq[valid]).max())
  pooled_diff = float(np.abs(got_pooled - want_pooled).max())
  print("max abs diff: sequence %.3g, pooled %.3g" % (seq_diff, pooled_diff))
  assert seq_diff < TOLERANCE
  assert pooled_diff < TOLERANCE
