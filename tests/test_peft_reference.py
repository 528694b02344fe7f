"""LoRA, IA3 and prefix tuning against the real HF PEFT 0.21 on the real
all-MiniLM-L6-v2: the same weights (PEFT's, mapped to this project's names)
give the same logits on 8 real MRPC dev pairs within 1e-4. The reference
outputs are committed test data, made by tests/data/peft/make_reference.py
with the PyTorch peer; the project never imports torch."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import new_session
from adapter_bert import methods
from adapter_bert.methods import base
import modeling

pytestmark = pytest.mark.real

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                    "peft")

_HEAD = {"weight": "output_weights", "bias": "output_bias"}


def read_reference(name):
  with np.load(os.path.join(DATA, name + ".npz")) as data:
    reference = {k: data[k] for k in data.files}
  weights = {k[len("weight:"):]: v for (k, v) in reference.items()
             if k.startswith("weight:")}
  return reference, weights


def head_values(weights):
  """PEFT's `modules_to_save` classifier as this project's head."""
  values = {}
  for (name, value) in weights.items():
    match = re.search(r"classifier\.modules_to_save\.default\.(weight|bias)$",
                      name)
    if match:
      values[_HEAD[match.group(1)]] = value
  assert len(values) == 2, sorted(weights)
  return values


def lora_values(weights):
  """lora_A [r, in] / lora_B [out, r] (torch Linear layout) as A [in, r] and
  B [r, out]."""
  values = head_values(weights)
  for (name, value) in weights.items():
    match = re.search(r"layer\.(\d+)\.attention\.self\.(\w+)\.lora_(A|B)\."
                      r"default\.weight$", name)
    if match:
      values["bert/encoder/layer_%s/attention/self/%s/lora/%s" %
             match.groups()] = value.T
  return values


def ia3_values(weights):
  values = head_values(weights)
  for (name, value) in weights.items():
    match = re.search(r"layer\.(\d+)\.(attention\.self\.key|attention\.self\."
                      r"value|output\.dense)\.ia3_l\.default$", name)
    if match:
      scope = match.group(2).replace(".", "/")
      values["bert/encoder/layer_%s/%s/ia3/scale" % (match.group(1), scope)] = (
          value.reshape(-1))
  return values


def prefix_values(weights, num_layers, hidden):
  """PEFT's prompt embedding [p, layers * 2 * hidden] splits, per layer,
  into keys then values (its `get_prompt`)."""
  values = head_values(weights)
  (embedding,) = [v for (n, v) in weights.items()
                  if n.endswith("prompt_encoder.default.embedding.weight")]
  for layer in range(num_layers):
    scope = "bert/encoder/layer_%d/attention/self/prefix/" % layer
    values[scope + "keys"] = embedding[:, 2 * layer * hidden:
                                       (2 * layer + 1) * hidden]
    values[scope + "values"] = embedding[:, (2 * layer + 1) * hidden:
                                         (2 * layer + 2) * hidden]
  return values


def our_logits(minilm_dir, method, values, reference):
  config = modeling.BertConfig.from_json_file(
      os.path.join(minilm_dir, "bert_config.json"))
  checkpoint = os.path.join(minilm_dir, "bert_model.ckpt")
  with tf.Graph().as_default():
    model = modeling.BertModel(
        config, False, tf.constant(reference["input_ids"].astype(np.int32)),
        input_mask=tf.constant(reference["attention_mask"].astype(np.int32)),
        token_type_ids=tf.constant(
            reference["token_type_ids"].astype(np.int32)),
        hooks=method)
    pooled = model.get_pooled_output()
    weights = tf.constant(values.pop("output_weights"), tf.float32)
    bias = tf.constant(values.pop("output_bias"), tf.float32)
    logits = tf.matmul(pooled, weights, transpose_b=True) + bias
    variables = {base.variable_name(v): v for v in tf.global_variables()}
    assert sorted(values) == sorted(n for n in variables if method.adds(n))
    tf.train.init_from_checkpoint(checkpoint, {
        n: n for n in variables if not method.adds(n)})
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      for (name, value) in values.items():
        variables[name].load(value, session)
      return session.run(logits)


def test_lora_logits_equal_peft(minilm_dir):
  (reference, weights) = read_reference("lora")
  method = methods.build("lora", {"lora_rank": 8, "lora_alpha": 16.0})
  logits = our_logits(minilm_dir, method, lora_values(weights), reference)
  np.testing.assert_allclose(logits, reference["logits"], atol=1e-4)


def test_ia3_logits_equal_peft(minilm_dir):
  (reference, weights) = read_reference("ia3")
  method = methods.build("ia3")
  logits = our_logits(minilm_dir, method, ia3_values(weights), reference)
  np.testing.assert_allclose(logits, reference["logits"], atol=1e-4)


def test_prefix_logits_equal_peft(minilm_dir):
  (reference, weights) = read_reference("prefix")
  with open(os.path.join(minilm_dir, "bert_config.json")) as f:
    config = json.load(f)
  values = prefix_values(weights, config["num_hidden_layers"],
                         config["hidden_size"])
  length = values["bert/encoder/layer_0/attention/self/prefix/keys"].shape[0]
  method = methods.build("prefix", {"prefix_length": length})
  logits = our_logits(minilm_dir, method, values, reference)
  np.testing.assert_allclose(logits, reference["logits"], atol=1e-4)
