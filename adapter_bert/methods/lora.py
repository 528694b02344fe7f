# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""LoRA (Hu et al., ICLR 2022): a trained low-rank update beside frozen
projections.

A LoRA-adapted projection computes

    x W + b + (alpha / r) * dropout(x) A B

with A [in, r] and B [r, out]. A starts as PEFT's (Kaiming-uniform, bound
1/sqrt(in)), B at zero, so the model starts as the pre-trained one. The
paper adapts the query and value projections (the default); `--lora_targets`
chooses among the query, key, value, attention-output and both feed-forward
projections. Variables sit in the projection's scope:
`bert/encoder/layer_0/attention/self/query/lora/A` and `.../lora/B`.

Trained: the LoRA matrices and the head (PEFT's `modules_to_save`
classifier); every pre-trained weight, LayerNorms included, stays frozen.

LoRA merges: W' = W + (alpha / r) A B gives plain BERT with the same outputs
(`merge`), so a merged model serves with no added latency; kept apart, many
tasks' A and B share one backbone.
"""

import math
import re

import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import hf_checkpoint
from adapter_bert.methods import base
import modeling

SCOPE = "lora"

# run_classifier.py's name of each projection, in the order of the layer.
TARGETS = modeling.PROJECTIONS

OPTIONS = (
    base.Option("lora_rank", int, 8, "LoRA: rank r of each update A B."),
    base.Option("lora_alpha", float, 8.0,
                "LoRA: the update is scaled by alpha / r (PEFT's default "
                "alpha = r = 8: scale 1)."),
    base.Option("lora_dropout", float, 0.0,
                "LoRA: dropout rate on the update's input, in training."),
    base.Option("lora_targets", str, "query,value",
                "LoRA: the projections it adapts, comma-separated among %s "
                "(default: query,value, as the paper)." % ", ".join(TARGETS)),
)


def projection_widths(config, name):
  """(in, out) of a projection of BERT."""
  h, i = config.hidden_size, config.intermediate_size
  return {"intermediate": (h, i), "output": (i, h)}.get(name, (h, h))


def parse_targets(spec):
  """["query", "value"] from "query,value", in the layer's order.

  Raises:
    ValueError: an unknown projection, a repeated one, or none; names the
      flag.
  """
  names = [n.strip() for n in (spec or "").split(",") if n.strip()]
  unknown = [n for n in names if n not in TARGETS]
  if unknown or not names or len(set(names)) != len(names):
    raise ValueError("--lora_targets=%s: give distinct projections among %s"
                     % (spec, ", ".join(TARGETS)))
  return [t for t in TARGETS if t in names]


class LoraMethod(base.TuningMethod):
  """Low-rank updates of the chosen projections, and the head, train."""

  name = "lora"
  description = ("low-rank updates (alpha/r) A B of the query and value "
                 "projections (--lora_targets) + classifier head train")
  options = OPTIONS + (base.TRAIN_POOLER,)
  scope = SCOPE
  group = "LoRA"
  spec_option = "lora_rank"
  variants = {"all": {"lora_targets": ",".join(TARGETS)}}
  marker = "v"
  mergeable = True
  training = False

  def validate(self):
    if self["lora_rank"] <= 0:
      raise ValueError("--lora_rank must be a positive integer, got %r" %
                       self["lora_rank"])
    if not 0.0 <= self["lora_dropout"] < 1.0:
      raise ValueError("--lora_dropout must be in [0, 1), got %r" %
                       self["lora_dropout"])
    if not math.isfinite(self["lora_alpha"]) or self["lora_alpha"] <= 0:
      raise ValueError("--lora_alpha must be a positive number, got %r" %
                       self["lora_alpha"])
    self.targets = parse_targets(self["lora_targets"])

  @property
  def scale(self):
    return self["lora_alpha"] / self["lora_rank"]

  def for_model(self, is_training):
    method = super(LoraMethod, self).for_model(is_training)
    method.training = is_training
    return method

  def projection(self, layer, name, inputs, project):
    output = project(inputs)
    if name not in self.targets:
      return output
    width_in = int(inputs.shape[-1])
    width_out = int(output.shape[-1])
    with tf.variable_scope(SCOPE):
      bound = 1.0 / math.sqrt(width_in)
      down = tf.get_variable(
          "A", [width_in, self["lora_rank"]],
          initializer=tf.random_uniform_initializer(-bound, bound))
      up = tf.get_variable("B", [self["lora_rank"], width_out],
                           initializer=tf.zeros_initializer())
      if not self.is_on(layer):
        return output
      dropped = (modeling.dropout(inputs, self["lora_dropout"])
                 if self.training else inputs)
      update = tf.matmul(tf.matmul(dropped, tf.cast(down, inputs.dtype)),
                         tf.cast(up, inputs.dtype))  # [tokens, out]
    return self.switched(layer, output + update * tf.cast(self.scale,
                                                          inputs.dtype),
                         output)

  def trains(self, name):
    return self.adds(name) or base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    per_layer = sum(self["lora_rank"] * sum(projection_widths(config, t))
                    for t in self.targets)
    count = (config.num_hidden_layers * per_layer +
             base.head_parameters(config, num_labels))
    if self["train_pooler"]:
      count += base.pooler_parameters(config)
    return count

  def merge(self, values, backbone):
    """The task's own weights when LoRA is folded into the backbone.

    Args:
      values: {variable name: numpy array}: a bundle's (the LoRA matrices and
        the head).
      backbone: function(name) -> numpy array of a frozen variable.

    Returns:
      {name: array}: the bundle's other variables (the head) and each
      adapted kernel W + (alpha / r) A B; plain BERT on these computes what
      the method computes. A switched-off layer keeps its kernel.
    """
    def fold(projection, name):
      update = np.matmul(values[name].astype(np.float64),
                         values[projection + "/%s/B" % SCOPE].astype(
                             np.float64))
      kernel = backbone(projection + "/kernel")
      return {projection + "/kernel": (kernel.astype(np.float64) +
                                       self.scale * update).astype(
                                           kernel.dtype)}

    return self.merged_projections(values, "/%s/A" % SCOPE, fold)


  # -------------------------------------------------- PEFT

  peft_type = "LORA"

  def to_library(self, values, config):
    """PEFT's LoraConfig entries and its `lora_A`/`lora_B` weights ([r, in]
    and [out, r], torch's Linear layout), on the same projections."""
    del config
    if self.layers_off:
      raise ValueError("LoRA switched off in layers %s has no PEFT form" %
                       base.format_layer_list(self.layers_off))
    # A regex PEFT matches against the whole module path: exactly ours
    # ("output.dense" alone would also match the attention's).
    modules = "|".join(re.escape(modeling.PROJECTION_SCOPES[t]).replace(
        "/", r"\.") for t in self.targets)
    settings = {"r": self["lora_rank"], "lora_alpha": self["lora_alpha"],
                "lora_dropout": self["lora_dropout"],
                "target_modules": r".*\.layer\.\d+\.(%s)$" % modules,
                "bias": "none", "fan_in_fan_out": False,
                "use_rslora": False, "use_dora": False}
    tensors = {}
    for (name, value) in values.items():
      match = re.match(r"^(.*)/%s/(A|B)$" % SCOPE, name)
      if match:
        path = hf_checkpoint.hf_module_path(match.group(1))
        tensors["%s.lora_%s.weight" % (path, match.group(2))] = value.T
    return (settings, tensors)

  @classmethod
  def from_library(cls, settings, tensors, config):
    """A PEFT LoRA adapter of encoder projections: the same rank, alpha and
    targets in every layer, scale alpha / r, no bias."""
    for (key, plain) in (("use_rslora", False), ("use_dora", False),
                         ("bias", "none"), ("fan_in_fan_out", False),
                         ("layers_to_transform", None), ("rank_pattern", {}),
                         ("alpha_pattern", {})):
      if settings.get(key) not in (None, plain):
        raise ValueError("PEFT LoRA with %s=%r: this project's LoRA has "
                         "%r only" % (key, settings[key], plain))
    scopes = {scope: name for (name, scope) in
              modeling.PROJECTION_SCOPES.items()}
    values, targets = {}, {}
    for (path, value) in tensors.items():
      (layer, module) = base.layer_module(path)
      match = re.match(r"^(.*)\.lora_(A|B)\.weight$", module)
      projection = scopes.get(match.group(1).replace(".", "/")) if (
          match) else None
      if layer is None or projection is None:
        raise ValueError("PEFT LoRA on %s: this project's LoRA adapts the "
                         "encoder layers' projections only" % path)
      targets.setdefault(layer, set()).add(projection)
      scope = "bert/encoder/layer_%d/%s" % (layer,
                                            modeling.PROJECTION_SCOPES[
                                                projection])
      values["%s/%s/%s" % (scope, SCOPE, match.group(2))] = value.T
    chosen = targets.get(0, set())
    if (sorted(targets) != list(range(config.num_hidden_layers)) or
        any(t != chosen for t in targets.values())):
      raise ValueError("PEFT LoRA on different projections in different "
                       "layers: this project's LoRA adapts the same ones in "
                       "every layer")
    options = {"lora_rank": int(settings["r"]),
               "lora_alpha": float(settings["lora_alpha"]),
               "lora_dropout": float(settings.get("lora_dropout") or 0.0),
               "lora_targets": ",".join(t for t in TARGETS if t in chosen)}
    return (options, values)


METHOD = LoraMethod
