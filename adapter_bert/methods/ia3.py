# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""IA3 (Liu et al., NeurIPS 2022): trained vectors that rescale activations.

In every layer, l_k rescales the attention keys, l_v the values and l_ff the
feed-forward block's intermediate activations (the input of its output
projection):

    k = (x W_k + b_k) * l_k,   v = (x W_v + b_v) * l_v,
    ffn = (gelu(x W_1 + b_1) * l_ff) W_2 + b_2.

Each vector starts at ones, so the model starts as the pre-trained one.
Variables sit in the projection's scope:
`bert/encoder/layer_0/attention/self/key/ia3/scale` ([hidden]),
`.../self/value/ia3/scale` and `bert/encoder/layer_0/output/dense/ia3/scale`
([intermediate]).

Trained: the vectors and the head; every pre-trained weight stays frozen.
IA3 merges into the frozen kernels and biases (`merge`): plain BERT with the
same outputs.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert.methods import base

SCOPE = "ia3"

# The projections whose output IA3 rescales, and the one whose input.
SCALED_OUTPUTS = ("key", "value")
SCALED_INPUTS = ("output",)


class Ia3Method(base.TuningMethod):
  """Rescaling vectors of keys, values and FFN activations, and the head,
  train."""

  name = "ia3"
  description = ("vectors rescaling keys, values and feed-forward "
                 "activations + classifier head train")
  scope = SCOPE
  group = "IA3"
  marker = "<"
  mergeable = True

  def projection(self, layer, name, inputs, project):
    if name not in SCALED_OUTPUTS + SCALED_INPUTS:
      return project(inputs)
    scaled = inputs if name in SCALED_INPUTS else None
    width = int(inputs.shape[-1]) if scaled is not None else None
    with tf.variable_scope(SCOPE):
      if scaled is not None:
        scale = tf.get_variable("scale", [width],
                                initializer=tf.ones_initializer())
        if not self.is_on(layer):
          return project(inputs)
        return project(inputs * tf.cast(scale, inputs.dtype))
      output = project(inputs)
      scale = tf.get_variable("scale", [int(output.shape[-1])],
                              initializer=tf.ones_initializer())
      if not self.is_on(layer):
        return output
      return output * tf.cast(scale, output.dtype)

  def trains(self, name):
    return self.adds(name) or base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    per_layer = 2 * config.hidden_size + config.intermediate_size
    count = (config.num_hidden_layers * per_layer +
             base.head_parameters(config, num_labels))
    if self["train_pooler"]:
      count += base.pooler_parameters(config)
    return count

  def merge(self, values, backbone):
    """The task's own weights when IA3 is folded into the backbone: a key
    or value projection's kernel columns and bias scaled by l, the FFN
    output projection's kernel rows scaled by l_ff.

    Args:
      values: {variable name: numpy array}: a bundle's (vectors and head).
      backbone: function(name) -> numpy array of a frozen variable.

    Returns:
      {name: array}: the head and every rescaled kernel and bias. A
      switched-off layer keeps its own.
    """
    def fold(projection, name):
      scale = values[name].astype(np.float64)
      kernel = backbone(projection + "/kernel")
      if not projection.endswith(tuple("/self/%s" % p
                                       for p in SCALED_OUTPUTS)):
        # The FFN output projection: its input is scaled, so its rows.
        return {projection + "/kernel": (kernel * scale[:, None]).astype(
            kernel.dtype)}
      # Keys and values: the output is scaled, so the columns and the bias.
      bias = backbone(projection + "/bias")
      return {projection + "/kernel": (kernel * scale[None, :]).astype(
                  kernel.dtype),
              projection + "/bias": (bias * scale).astype(bias.dtype)}

    return self.merged_projections(values, "/%s/scale" % SCOPE, fold)


METHOD = Ia3Method
