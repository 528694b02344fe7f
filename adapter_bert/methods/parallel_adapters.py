# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Parallel adapters (He et al., ICLR 2022, "Towards a Unified View of
Parameter-Efficient Transfer Learning"): a bottleneck beside a sub-layer.

Where a serial adapter maps the sub-layer's output, a parallel adapter reads
the sub-layer's input x and adds its scaled result to the output:

    h = sublayer(x) + s * (act(x W_down + b_down) W_up + b_up),

after the sub-layer's dropout, before its residual add and LayerNorm. The
paper's best setting puts it beside the feed-forward block (the default
`--adapter_placement=ffn`) with s = 4 (its "scaled parallel adapter") and
ReLU. Its weights start as the adapters' (truncated normal of stddev
`--adapter_init_scale`, biases zero), so the model starts close to the
pre-trained one. Variables: `bert/encoder/layer_0/output/parallel_adapter/
weights1` ([hidden, m]), `biases1` ([1, m]), `weights2`, `biases2`.

Trained: the parallel adapters and the head.
"""

import math

import tensorflow.compat.v1 as tf

import adapters
from adapter_bert.methods import base
import modeling

SCOPE = "parallel_adapter"

OPTIONS = tuple(
    base.Option(o.name, o.type, {"adapter_placement": "ffn",
                                 "adapter_activation": "relu"}.get(
                                     o.name, o.default), o.help, o.choices)
    for o in adapters.ADAPTER_OPTIONS) + (
        base.Option("adapter_scale", float, 4.0,
                    "parallel_adapters: the scale s of the adapter's output "
                    "(He et al.'s scaled parallel adapter: 4)."),)


def parallel_adapter(inputs, outputs, size, activation_fn, init_scale, scale):
  """outputs + scale * bottleneck(inputs), in float32 (see
  adapters.feedforward_adapter: a small change would round away in
  bfloat16).

  Args:
    inputs: the sub-layer's input [tokens, hidden].
    outputs: its output [tokens, hidden].
  """
  with tf.variable_scope(SCOPE):
    delta = adapters.bottleneck_delta(inputs, size, activation_fn, init_scale)
    return tf.cast(outputs, tf.float32) + scale * tf.cast(delta, tf.float32)


class ParallelAdaptersMethod(adapters.AdapterLayers, base.TuningMethod):
  """Scaled parallel adapters beside the feed-forward block, and the head,
  train."""

  name = "parallel_adapters"
  description = ("scaled parallel adapters beside the feed-forward block "
                 "(--adapter_placement) + classifier head train")
  options = OPTIONS + (base.TRAIN_POOLER,)
  scope = SCOPE
  group = "parallel adapters"
  grid_options = {"adapter_sizes": "adapter_size",
                  "init_scales": "adapter_init_scale"}
  marker = "^"

  def validate(self):
    super(ParallelAdaptersMethod, self).validate()
    if not math.isfinite(self["adapter_scale"]):
      raise ValueError("--adapter_scale must be a finite number, got %r" %
                       self["adapter_scale"])

  parallel = True

  def adapterhub_changes(self):
    # AdapterHub's ParBnConfig: the same bottleneck beside the sub-layer.
    return {"is_parallel": True, "init_weights": "mam_adapter",
            "scaling": self["adapter_scale"]}

  def sublayer_output(self, layer, name, inputs, outputs):
    if not self.adapts(name):
      return outputs
    added = parallel_adapter(
        inputs, outputs, self["adapter_size"],
        modeling.get_activation(self["adapter_activation"]),
        self["adapter_init_scale"], self["adapter_scale"])
    return self.switched(layer, added, outputs)

  def trains(self, name):
    return self.adds(name) or base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    count = self.added_parameters(config) + base.head_parameters(config,
                                                                 num_labels)
    if self["train_pooler"]:
      count += base.pooler_parameters(config)
    return count


METHOD = ParallelAdaptersMethod
