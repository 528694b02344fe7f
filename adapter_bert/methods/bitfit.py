# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""BitFit (Ben Zaken et al., 2021): every bias term of BERT trains.

Dense-layer biases and LayerNorm betas (the pooler's bias included) and the
classifier head train; every weight matrix and gamma stays frozen.
"""

from adapter_bert.methods import base


class BitFitMethod(base.TuningMethod):
  """Every bias (LayerNorm betas too) and the head train."""

  name = "bitfit"
  description = "every bias (LayerNorm betas too) + classifier head train"
  marker = "D"

  def trains(self, name):
    return ((base.is_bias(name) and not base.is_head(name) and
             base.variable_name(name).startswith("bert/")) or
            base.is_head(name) or self.trains_pooler(name))

  def trained_parameters(self, config, num_labels):
    h, i = config.hidden_size, config.intermediate_size
    # Per layer: Q, K, V, attention output, FFN output and the two
    # LayerNorm betas (7 x hidden) and the FFN intermediate bias.
    per_layer = 7 * h + i
    count = (h + config.num_hidden_layers * per_layer + h +  # embeddings LN,
             base.head_parameters(config, num_labels))       # layers, pooler
    if self["train_pooler"]:
      count += h * h
    return count


METHOD = BitFitMethod
