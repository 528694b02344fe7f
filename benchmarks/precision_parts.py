# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Parts of a bfloat16 graph kept in float32, for the experiments that look
for where bfloat16 departs from float32 (`precision_gradients.py` on one
batch's gradients, `precision_training.py` on a whole training run).

Each entry of EXPERIMENTS patches the model code before a graph is built.
"""

import collections
import re

import tensorflow.compat.v1 as tf

import adapters
import modeling


def _float32_attention_probs():
  """The attention's probabilities and their product with the values in
  float32 (the scores are bfloat16 matmuls as before)."""
  original = modeling.attention_layer

  def attention_layer(from_tensor, to_tensor, *args, **kwargs):
    return tf.cast(original(tf.cast(from_tensor, tf.float32),
                            tf.cast(to_tensor, tf.float32), *args, **kwargs),
                   from_tensor.dtype)
  modeling.attention_layer = attention_layer


def _float32_dense(pattern):
  """Dense layers whose scope matches `pattern` compute in float32."""
  original = modeling.dense_layer

  def dense_layer(inputs, *args, **kwargs):
    scope = tf.get_variable_scope().name + "/" + kwargs.get("name", "dense")
    if re.search(pattern, scope):
      return tf.cast(original(tf.cast(inputs, tf.float32), *args, **kwargs),
                     inputs.dtype)
    return original(inputs, *args, **kwargs)
  modeling.dense_layer = dense_layer


def _float32_adapters():
  """The adapters' bottlenecks (both matmuls, their backward) in float32."""
  original = adapters.bottleneck_delta

  def bottleneck_delta(input_tensor, *args):
    return tf.cast(original(tf.cast(input_tensor, tf.float32), *args),
                   input_tensor.dtype)
  adapters.bottleneck_delta = bottleneck_delta


# What stays float32 in the bfloat16 graph, by name.
EXPERIMENTS = collections.OrderedDict([
    ("none", lambda: None),
    ("attention", _float32_attention_probs),
    ("feed_forward",
     lambda: _float32_dense(r"layer_\d+/(intermediate|output)/dense$")),
    ("bottlenecks", _float32_adapters),
])
