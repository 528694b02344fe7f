# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Feature extraction (`head`): frozen BERT, only the classifier head trains."""

from adapter_bert.methods import base


class HeadMethod(base.TuningMethod):
  """Only the classifier head (and, if asked, the pooler) trains."""

  name = "head"
  description = "only the classifier head trains (feature extraction)"
  marker = "v"

  def trains(self, name):
    return base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    return (base.head_parameters(config, num_labels) +
            (base.pooler_parameters(config) if self["train_pooler"] else 0))


METHOD = HeadMethod
