# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The Pfeiffer adapter (Pfeiffer et al., EACL 2021, "AdapterFusion"), as a
preset of the `adapters` method: one bottleneck adapter per layer, after the
feed-forward block only (`--adapter_placement=ffn`), with ReLU, and the
pre-trained LayerNorms frozen (adapters + head train, AdapterHub's default).

It is the Houlsby adapter's placement variant, under its usual name; its
variables are the adapters' (`bert/encoder/layer_0/output/adapters/...`).
The adapter sits where this project's adapters sit (after the sub-layer's
dropout, before its residual add and LayerNorm); AdapterHub's Pfeiffer
configuration orders its residual and LayerNorms otherwise.
"""

import adapters
from adapter_bert.methods import base

PRESET = {"adapter_placement": "ffn", "adapter_activation": "relu",
          "train_layernorm": False}


class PfeifferMethod(adapters.AdaptersMethod):
  """One adapter after each feed-forward block, and the head, train."""

  name = "pfeiffer"
  description = ("one adapter after each feed-forward block (ReLU) + "
                 "classifier head train (AdapterHub's Pfeiffer placement)")
  options = tuple(
      base.Option(o.name, o.type, PRESET.get(o.name, o.default), o.help,
                  o.choices)
      for o in adapters.AdaptersMethod.options)
  variants = {"ln": {"train_layernorm": True}}
  marker = "s"


METHOD = PfeifferMethod
