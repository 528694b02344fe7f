# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The paper's LayerNorm baseline (`layernorm`): every LayerNorm + the head."""

from adapter_bert.methods import base


class LayerNormMethod(base.TuningMethod):
  """Every LayerNorm's gamma and beta, and the head, train."""

  name = "layernorm"
  description = "every LayerNorm + classifier head train"
  marker = "^"

  def trains(self, name):
    return (base.is_layer_norm(name) or base.is_head(name) or
            self.trains_pooler(name))

  def trained_parameters(self, config, num_labels):
    return (base.layer_norm_parameters(config) +
            base.head_parameters(config, num_labels) +
            (base.pooler_parameters(config) if self["train_pooler"] else 0))


METHOD = LayerNormMethod
