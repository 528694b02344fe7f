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

Trained: the prefixes and the head; every pre-trained weight stays frozen.
"""

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
  options = (PREFIX_LENGTH, PREFIX_SHIFTS_POSITIONS, base.TRAIN_POOLER)
  scope = SCOPE
  group = "prefixes"
  spec_option = "prefix_length"
  marker = ">"

  def validate(self):
    if self["prefix_length"] <= 0:
      raise ValueError("--prefix_length must be a positive integer, got %r" %
                       self["prefix_length"])

  def position_offset(self):
    # With every layer's prefix switched off (the ablation), the model is the
    # pre-trained one: positions from 0.
    all_off = self.num_layers and all(not self.is_on(layer)
                                      for layer in range(self.num_layers))
    if all_off or not self["prefix_shifts_positions"]:
      return 0
    return self["prefix_length"]

  def keys_values(self, layer, keys, values, attention_mask):
    width = int(keys.shape[1]) * int(keys.shape[3])
    length = self["prefix_length"]
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
    return (prepend(prefix_keys, keys), prepend(prefix_values, values),
            tf.concat([ones, attention_mask], axis=2))

  def trains(self, name):
    return self.adds(name) or base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    count = (config.num_hidden_layers * 2 * self["prefix_length"] *
             config.hidden_size + base.head_parameters(config, num_labels))
    if self["train_pooler"]:
      count += base.pooler_parameters(config)
    return count


METHOD = PrefixMethod
