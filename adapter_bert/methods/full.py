# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Plain fine-tuning (`full`): every weight trains.

It builds no adapter unless `--adapter_placement` asks for some, in which
case they train with everything else. A bundle of it is the whole model, and
it is the reference the sweep compares every other method with.
"""

import adapters
from adapter_bert.methods import base

_PLACEMENT = [o for o in adapters.ADAPTER_OPTIONS
              if o.name == "adapter_placement"][0]


class FullMethod(adapters.AdapterLayers, base.TuningMethod):
  """Every variable trains (adapters too, if placed)."""

  name = "full"
  description = ("every weight trains (plain fine-tuning; no adapters unless "
                 "--adapter_placement asks for them)")
  options = tuple(o for o in adapters.ADAPTER_OPTIONS if o is not _PLACEMENT)
  options += (base.Option(_PLACEMENT.name, str, "none", _PLACEMENT.help,
                          choices=_PLACEMENT.choices),)
  whole_model = True
  reference = True
  marker = "*"

  def trains(self, name):
    return True

  def trained_parameters(self, config, num_labels):
    return (base.bert_parameters(config) + self.added_parameters(config) +
            base.head_parameters(config, num_labels))


METHOD = FullMethod
