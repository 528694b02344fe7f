# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Prefix tuning (Li and Liang, ACL 2021): trained keys and values that
every query of every layer may attend to.

In each layer, p trained key vectors and p value vectors are prepended to
the attention's keys and values (after their projections, so they carry no
position), and the attention mask is extended with ones for them: every
token attends to the prefix, no padded key is attended to, whatever the
padding policy. Variables: `bert/encoder/layer_0/attention/self/prefix/keys`
and `.../prefix/values`, each [p, hidden], drawn from N(0, 1) as PEFT draws
its prefix embedding. As in HF PEFT (where BERT counts the prefix as past
tokens), the tokens' position embeddings start at p
(`--prefix_shifts_positions`), so --max_seq_length + p must fit in
max_position_embeddings.

With `--prefix_projection=m` the prefixes are trained as Li and Liang
train them (their section 4.3: optimising the prefixes directly is
unstable): one small MLP shared by all layers maps a [p, hidden] embedding
to every layer's keys and values, P = tanh(E W1 + b1) W2 + b2, [p, L * 2 *
hidden], layer l's keys in column block 2l and its values in 2l + 1, as HF
PEFT's `PrefixEncoder` with `prefix_projection`. Its variables are
`bert/encoder/prefix/embedding`, `.../prefix/dense/kernel|bias` and
`.../prefix/dense_1/kernel|bias`. The bundle stores the plain prefixes the
MLP computes (as PEFT saves them), so it serves as a plain prefix bundle.

Trained: the prefixes (or their MLP) and the head; every pre-trained weight
stays frozen.
"""

import re

import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert.methods import base

SCOPE = "prefix"

PREFIX_LENGTH = base.Option(
    "prefix_length", int, 20,
    "prefix: trained keys and values prepended in every layer (p).")
PREFIX_SHIFTS_POSITIONS = base.Option(
    "prefix_shifts_positions", bool, True,
    "prefix: the tokens take positions p, p + 1, ... after the prefix, as "
    "HF PEFT's prefix tuning of BERT does (default); false: 0, 1, ...")
PREFIX_PROJECTION = base.Option(
    "prefix_projection", int, 0,
    "prefix: train the prefixes through Li and Liang's reparameterisation, "
    "a tanh MLP of this hidden width shared by all layers (the bundle stores "
    "the plain prefixes it computes); 0: train them directly (default).")

# The MLP's variables under `<encoder scope>/prefix/` (PEFT's PrefixEncoder:
# embedding, transform.0, transform.2).
EMBEDDING, HIDDEN, OUTPUT = "embedding", "dense", "dense_1"


def _uniform(fan_in):
  # PyTorch's nn.Linear initialisation, which PEFT's prefix MLP uses.
  bound = 1.0 / np.sqrt(fan_in)
  return tf.random_uniform_initializer(-bound, bound)


def projected_prefixes(layer, num_layers, length, width, hidden_size):
  """Layer `layer`'s (keys, values), each [p, width], from the shared MLP.

  Runs inside the layer's attention scope; the MLP's variables live once
  under the encoder's scope (`bert/encoder/prefix/`), reused by every layer.
  """
  encoder = re.sub(r"/layer_\d+/.*$", "", tf.get_variable_scope().name)
  scope = tf.VariableScope(tf.AUTO_REUSE, name=encoder + "/" + SCOPE)
  with tf.variable_scope(scope):
    embedding = tf.get_variable(
        EMBEDDING, [length, width],
        initializer=tf.random_normal_initializer(stddev=1.0))
    with tf.variable_scope(HIDDEN):
      kernel1 = tf.get_variable("kernel", [width, hidden_size],
                                initializer=_uniform(width))
      bias1 = tf.get_variable("bias", [hidden_size],
                              initializer=_uniform(width))
    with tf.variable_scope(OUTPUT):
      kernel2 = tf.get_variable("kernel", [hidden_size,
                                           num_layers * 2 * width],
                                initializer=_uniform(hidden_size))
      bias2 = tf.get_variable("bias", [num_layers * 2 * width],
                              initializer=_uniform(hidden_size))
  hidden = tf.tanh(tf.matmul(embedding, kernel1) + bias1)
  columns = lambda block: slice(block * width, (block + 1) * width)
  (keys, values) = (columns(2 * layer), columns(2 * layer + 1))
  return (tf.matmul(hidden, kernel2[:, keys]) + bias2[keys],
          tf.matmul(hidden, kernel2[:, values]) + bias2[values])


def plain_prefixes(mlp, num_layers):
  """The MLP's output as every layer's plain prefixes (NumPy).

  Args:
    mlp: {name under the MLP's scope ("embedding", "dense/kernel", ...):
      array}.
    num_layers: L.

  Returns:
    [(keys, values)] per layer, each [p, width] float32.
  """
  hidden = np.tanh(mlp[EMBEDDING] @ mlp[HIDDEN + "/kernel"] +
                   mlp[HIDDEN + "/bias"])
  output = hidden @ mlp[OUTPUT + "/kernel"] + mlp[OUTPUT + "/bias"]
  width = mlp[EMBEDDING].shape[1]
  blocks = np.split(output.astype(np.float32), 2 * num_layers, axis=1)
  assert blocks[0].shape[1] == width, (blocks[0].shape, width)
  return [(blocks[2 * l], blocks[2 * l + 1]) for l in range(num_layers)]


def prepend(prefix, tensor):
  """[p, N * H] prefix rows before a [B, N, T, H] tensor's keys: [B, N,
  p + T, H]."""
  (num_heads, size) = (int(tensor.shape[1]), int(tensor.shape[3]))
  length = int(prefix.shape[0])
  rows = tf.transpose(tf.reshape(tf.cast(prefix, tensor.dtype),
                                 [1, length, num_heads, size]), [0, 2, 1, 3])
  batch = tf.shape(tensor)[0]
  return tf.concat([tf.tile(rows, [batch, 1, 1, 1]), tensor], axis=2)


class PrefixMethod(base.TuningMethod):
  """Trained key and value prefixes in every layer, and the head, train."""

  name = "prefix"
  description = ("trained key and value prefixes in every layer's attention "
                 "+ classifier head train")
  options = (PREFIX_LENGTH, PREFIX_SHIFTS_POSITIONS, PREFIX_PROJECTION,
             base.TRAIN_POOLER)
  scope = SCOPE
  group = "prefixes"
  spec_option = "prefix_length"
  # The paper's recipe: the MLP of Li and Liang's table-to-text runs (512).
  variants = {"mlp": {"prefix_projection": 512}}
  marker = ">"

  def validate(self):
    if self["prefix_length"] <= 0:
      raise ValueError("--prefix_length must be a positive integer, got %r" %
                       self["prefix_length"])
    if self["prefix_projection"] < 0:
      raise ValueError("--prefix_projection must be 0 (off) or the MLP's "
                       "hidden width, got %r" % self["prefix_projection"])

  def position_offset(self):
    # With every layer's prefix switched off (the ablation), the model is the
    # pre-trained one: positions from 0.
    all_off = self.num_layers and all(not self.is_on(layer)
                                      for layer in range(self.num_layers))
    if all_off or not self["prefix_shifts_positions"]:
      return 0
    if self.layer_switches is not None:
      # Switched at run time: shifted while any layer's prefix is on.
      return self["prefix_length"] * tf.cast(
          tf.reduce_any(self.layer_switches), tf.int32)
    return self["prefix_length"]

  def keys_values(self, layer, keys, values, attention_mask):
    width = int(keys.shape[1]) * int(keys.shape[3])
    length = self["prefix_length"]
    if self["prefix_projection"]:
      if not self.num_layers:
        raise ValueError("--prefix_projection needs the number of layers; "
                         "build the method with num_layers")
      (prefix_keys, prefix_values) = projected_prefixes(
          layer, self.num_layers, length, width, self["prefix_projection"])
    else:
      with tf.variable_scope(SCOPE):
        initializer = tf.random_normal_initializer(stddev=1.0)
        prefix_keys = tf.get_variable("keys", [length, width],
                                      initializer=initializer)
        prefix_values = tf.get_variable("values", [length, width],
                                        initializer=initializer)
    if not self.is_on(layer):
      return (keys, values, attention_mask)
    if attention_mask is None:
      attention_mask = tf.ones(tf.stack([tf.shape(keys)[0], 1,
                                         tf.shape(keys)[2]]), tf.float32)
    # [B, F or 1, p]: every query attends to every prefix position.
    shape = tf.shape(attention_mask)
    ones = tf.ones(tf.stack([shape[0], shape[1], length]), tf.float32)
    if self.layer_switches is not None:
      # Switched off at run time: the prefix is masked out, which is exact
      # (exp(-10000) is 0 in float32), so the keys it adds weigh nothing.
      ones *= tf.cast(self.layer_switches[layer], tf.float32)
    return (prepend(prefix_keys, keys), prepend(prefix_values, values),
            tf.concat([ones, attention_mask], axis=2))

  def trains(self, name):
    return self.adds(name) or base.is_head(name) or self.trains_pooler(name)

  def stored(self, values):
    """Trained through the MLP: the plain prefixes it computes, recorded as
    a plain prefix bundle (as PEFT saves `prompt_embeddings`)."""
    if not self["prefix_projection"]:
      return (self, values)
    # The MLP lies under the encoder's prefix scope, outside every layer.
    mlp_names = [n for n in values
                 if base.in_scope(n, SCOPE) and base.encoder_layer(n) is None]
    if not mlp_names:
      raise ValueError("--prefix_projection=%d: no prefix MLP among the "
                       "trained variables" % self["prefix_projection"])
    encoder = mlp_names[0].split("/%s/" % SCOPE)[0]
    mlp = {n.split("/%s/" % SCOPE, 1)[1]: values[n] for n in mlp_names}
    stored = {n: a for (n, a) in values.items() if n not in mlp_names}
    for (layer, (keys, values_)) in enumerate(plain_prefixes(
        mlp, self.num_layers)):
      scope = "%s/layer_%d/attention/self/%s/" % (encoder, layer, SCOPE)
      stored[scope + "keys"] = keys
      stored[scope + "values"] = values_
    return (self.replace(prefix_projection=0), stored)

  def trained_parameters(self, config, num_labels):
    (p, h, m) = (self["prefix_length"], config.hidden_size,
                 self["prefix_projection"])
    if m:
      outputs = config.num_hidden_layers * 2 * h
      count = p * h + (h * m + m) + (m * outputs + outputs)
    else:
      count = config.num_hidden_layers * 2 * p * h
    count += base.head_parameters(config, num_labels)
    if self["train_pooler"]:
      count += base.pooler_parameters(config)
    return count

  # -------------------------------------------------- PEFT

  peft_type = "PREFIX_TUNING"

  def to_library(self, values, config):
    """PEFT's PrefixTuningConfig entries and its `prompt_embeddings`
    [p, layers * 2 * hidden]: layer l's keys in column block 2l, its
    values in 2l + 1 (PEFT's `get_prompt`)."""
    if self["prefix_projection"]:
      raise ValueError("prefix tuning through its MLP is exported from its "
                       "bundle, which stores the plain prefixes")
    if not self["prefix_shifts_positions"]:
      raise ValueError("--prefix_shifts_positions=false has no PEFT form: "
                       "PEFT's BERT places the tokens after the prefix")
    if self.layers_off:
      raise ValueError("prefixes switched off in layers %s have no PEFT "
                       "form" % base.format_layer_list(self.layers_off))
    blocks = []
    for layer in range(config.num_hidden_layers):
      scope = "bert/encoder/layer_%d/attention/self/%s/" % (layer, SCOPE)
      blocks += [values[scope + "keys"], values[scope + "values"]]
    settings = {"num_virtual_tokens": self["prefix_length"],
                "token_dim": config.hidden_size,
                "num_layers": config.num_hidden_layers,
                "num_attention_heads": config.num_attention_heads,
                "num_transformer_submodules": 1,
                "encoder_hidden_size": config.hidden_size,
                "prefix_projection": False}
    return (settings, {_PEFT_EMBEDDING: np.concatenate(blocks, axis=1)})

  @classmethod
  def from_library(cls, settings, tensors, config):
    """A PEFT prefix of BERT: its saved `prompt_embeddings` are the plain
    prefixes (with `prefix_projection`, PEFT saves what its MLP computes)."""
    if sorted(tensors) != [_PEFT_EMBEDDING]:
      raise ValueError("PEFT prefix tuning with tensors %s: expected %s "
                       "only" % (sorted(tensors), _PEFT_EMBEDDING))
    embedding = tensors[_PEFT_EMBEDDING]
    (layers, hidden) = (config.num_hidden_layers, config.hidden_size)
    if (settings.get("num_transformer_submodules", 1) != 1 or
        embedding.ndim != 2 or embedding.shape[1] != layers * 2 * hidden):
      raise ValueError("PEFT prefix tuning of shape %s: this backbone needs "
                       "[p, %d] (%d layers x keys and values x %d)" % (
                           list(embedding.shape), layers * 2 * hidden,
                           layers, hidden))
    blocks = np.split(embedding.astype(np.float32), 2 * layers, axis=1)
    values = {}
    for layer in range(layers):
      scope = "bert/encoder/layer_%d/attention/self/%s/" % (layer, SCOPE)
      values[scope + "keys"] = blocks[2 * layer]
      values[scope + "values"] = blocks[2 * layer + 1]
    return ({"prefix_length": int(embedding.shape[0]),
             "prefix_shifts_positions": True}, values)


_PEFT_EMBEDDING = "prompt_embeddings"

METHOD = PrefixMethod
