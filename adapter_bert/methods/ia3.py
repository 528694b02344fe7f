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

from adapter_bert import hf_checkpoint
from adapter_bert.methods import base
import modeling

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
        return project(self.switched(
            layer, inputs * tf.cast(scale, inputs.dtype), inputs))
      output = project(inputs)
      scale = tf.get_variable("scale", [int(output.shape[-1])],
                              initializer=tf.ones_initializer())
      return self.switched(layer, output * tf.cast(scale, output.dtype),
                           output)

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


  # -------------------------------------------------- PEFT

  peft_type = "IA3"

  def to_library(self, values, config):
    """PEFT's IA3Config entries and its `ia3_l` vectors: [out, 1] on the
    key and value projections, [1, in] on each FFN output projection (a
    feed-forward module: its input is scaled)."""
    del config
    if self.layers_off:
      raise ValueError("IA3 switched off in layers %s has no PEFT form" %
                       base.format_layer_list(self.layers_off))
    settings = {"target_modules": _PEFT_TARGETS,
                "feedforward_modules": _PEFT_FEEDFORWARD,
                "fan_in_fan_out": False}
    tensors = {}
    for (name, value) in values.items():
      if name.endswith("/%s/scale" % SCOPE):
        scope = name[:-len("/%s/scale" % SCOPE)]
        shape = ((1, -1) if scope.endswith(
            "/" + modeling.PROJECTION_SCOPES["output"]) else (-1, 1))
        tensors[hf_checkpoint.hf_module_path(scope) + ".ia3_l"] = (
            value.reshape(shape))
    return (settings, tensors)

  @classmethod
  def from_library(cls, settings, tensors, config):
    """A PEFT IA3 adapter on the paper's places: keys and values rescaled,
    the FFN output projection's input rescaled, in every layer."""
    del settings  # What the vectors are on decides; the tensors say it.
    expected = {}
    for layer in range(config.num_hidden_layers):
      for projection in SCALED_OUTPUTS + SCALED_INPUTS:
        scope = "bert/encoder/layer_%d/%s" % (
            layer, modeling.PROJECTION_SCOPES[projection])
        expected[hf_checkpoint.hf_module_path(scope) + ".ia3_l"] = scope
    unknown = sorted(set(tensors) - set(expected))
    if unknown:
      raise ValueError(
          "PEFT IA3 on %s: this project's IA3 is the paper's (keys, values "
          "and the FFN output projection's input)" % unknown[0])
    missing = sorted(set(expected) - set(tensors))
    if missing:
      raise ValueError("PEFT IA3 lacks %s: this project's IA3 rescales "
                       "keys, values and FFN activations in every layer" %
                       missing[0])
    values = {"%s/%s/scale" % (scope, SCOPE): tensors[path].reshape(-1)
              for (path, scope) in expected.items()}
    return ({}, values)


# PEFT's regexes for the paper's places (its default for BERT would rescale
# the attention output projection's input too).
_PEFT_TARGETS = r".*\.layer\.\d+\.(attention\.self\.(key|value)|output\.dense)$"
_PEFT_FEEDFORWARD = r".*\.layer\.\d+\.output\.dense$"

METHOD = Ia3Method
