# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The paper's "variable fine-tuning" (`top_layers`): the top K layers train.

Every variable of the top `--tune_top_layers` encoder layers, the pooler and
the head train; below them BERT is frozen. The pooler trains by default, as
the paper tunes the whole top of the network.
"""

from adapter_bert.methods import base

TUNE_TOP_LAYERS = base.Option(
    "tune_top_layers", int, None,
    "tuning_mode=top_layers: how many of the top encoder layers train.")


class TopLayersMethod(base.TuningMethod):
  """The top K encoder layers, the pooler and the head train."""

  name = "top_layers"
  description = ("the top --tune_top_layers encoder layers + pooler + "
                 "classifier head train")
  options = (TUNE_TOP_LAYERS,
             base.Option("train_pooler", bool, True, base.TRAIN_POOLER.help))
  spec_option = "tune_top_layers"
  marker = "s"

  def validate(self):
    k = self["tune_top_layers"]
    if k is None:
      raise ValueError("--tuning_mode=top_layers needs --tune_top_layers=K")
    if self.num_layers is None:
      raise ValueError("--tuning_mode=top_layers needs the model's number "
                       "of layers")
    if not 1 <= k <= self.num_layers:
      raise ValueError("--tune_top_layers=%d: must be 1 to %d, the model "
                       "has %d layers" % (k, self.num_layers, self.num_layers))

  def trains(self, name):
    layer = base.encoder_layer(name)
    in_top = (layer is not None and
              layer >= self.num_layers - self["tune_top_layers"])
    return in_top or base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    return (self["tune_top_layers"] * base.encoder_layer_parameters(config) +
            base.head_parameters(config, num_labels) +
            (base.pooler_parameters(config) if self["train_pooler"] else 0))


METHOD = TopLayersMethod
