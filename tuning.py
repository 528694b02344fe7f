# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tuning methods: what each way of fine-tuning adds to BERT and what trains.

A tuning method is one small object. It says:

- which variables it adds to the graph (`adds`): variables no pre-trained
  checkpoint holds, such as adapters. The classifier head is new in every
  method and always trains;
- which variables train (`trains`), decided by variable name;
- which variables a bundle of it stores (`bundle_variables`): exactly the
  trained ones, never a frozen weight or an optimizer slot;
- whether a bundle of it is a whole model (`whole_model`) rather than a few
  weights to put on a shared frozen backbone.

Everything that is neither added nor trained is the *backbone*: it comes from
`--init_checkpoint`, stays bit-identical, and its fingerprint ties a bundle to
it. `check` refuses a method whose added variables would not train: they would
stay at their random initialisation and be recorded as backbone weights.

Methods live in one registry, `METHODS`; a new method is one more class.

| method | trains | pooler by default |
|---|---|---|
| `adapters` | adapters + every LayerNorm (`--train_layernorm`) + head | frozen |
| `full` | everything | trains |
| `head` | the classifier head (feature extraction) | frozen |
| `layernorm` | every LayerNorm + head | frozen |
| `top_layers` | the top `--tune_top_layers` encoder layers + pooler + head | trains |
| `bitfit` | every bias (LayerNorm betas too) + head (Ben Zaken et al. 2021) | bias only |

`--train_pooler` overrides the pooler's default for every method but `full`.
The pooler stays frozen by default where the 2019 adapter-bert code froze it
(adapters, and the baselines measured against them); the top-layers baseline
tunes the whole top of the network, the pooler included, as the paper's
"variable fine-tuning" does.
"""

import collections
import re

import adapters

# The classifier head's variables: top-level names, as in Google BERT's
# run_classifier.py, so fine-tuned BERT checkpoints load.
HEAD_VARIABLES = ("output_weights", "output_bias")

# Where each parameter group of BERT lives, for the parameter log.
PARAMETER_GROUPS = ("adapters", "LayerNorm", "head", "embeddings", "attention",
                    "feed-forward", "pooler", "other")


def is_head(name):
  return adapters.variable_name(name) in HEAD_VARIABLES


def is_layer_norm(name):
  return "/LayerNorm/" in adapters.variable_name(name)


def is_pooler(name):
  return adapters.variable_name(name).startswith("bert/pooler/")


def is_bias(name):
  """A bias of BERT: dense-layer biases and LayerNorm betas."""
  name = adapters.variable_name(name)
  return name.endswith("/bias") or name.endswith("/LayerNorm/beta")


def encoder_layer(name):
  """The encoder layer index of a variable, or None outside the layers."""
  match = re.match(r"^bert/encoder/layer_(\d+)/", adapters.variable_name(name))
  return int(match.group(1)) if match else None


def parameter_group(name):
  """The group a variable belongs to, one of PARAMETER_GROUPS."""
  name = adapters.variable_name(name)
  if adapters.is_adapter_variable(name):
    return "adapters"
  if is_layer_norm(name):
    return "LayerNorm"
  if is_head(name):
    return "head"
  if name.startswith("bert/embeddings/"):
    return "embeddings"
  if name.startswith("bert/encoder/"):
    return "attention" if "/attention/" in name else "feed-forward"
  if name.startswith("bert/pooler/"):
    return "pooler"
  return "other"


class TuningMethod(object):
  """Base class: one way of tuning BERT on a task.

  Attributes (class level):
    name: the `--tuning_mode` value.
    description: one line for `--help` and the README.
    whole_model: a bundle of it is the whole model, not something to put on
      a shared frozen backbone.
    default_adapter_placement: the adapter placement when
      `--adapter_placement` is not given.
  """

  name = None
  description = None
  whole_model = False
  default_adapter_placement = "none"
  # The options (flags) the method takes, with their defaults; any other
  # option given explicitly is refused by `build`.
  option_defaults = {"train_pooler": False}

  def __init__(self, adapter_config=None, num_layers=None, **options):
    """Constructs the method.

    Args:
      adapter_config: (optional) `adapters.AdapterConfig` of the adapters the
        graph holds; None builds no adapter variable.
      num_layers: the model's encoder layers (a fact of the model, not an
        option; `top_layers` needs it).
      **options: values for `option_defaults` (None: the default).
    """
    unknown = sorted(set(options) - set(self.option_defaults))
    if unknown:
      raise ValueError("--%s does not apply to --tuning_mode=%s" %
                       (unknown[0], self.name))
    self.adapter_config = adapter_config
    self.num_layers = num_layers
    self.options = dict(self.option_defaults)
    self.options.update({k: v for (k, v) in options.items() if v is not None})

  def trains_pooler(self, name):
    return self.options.get("train_pooler") and is_pooler(name)

  def adds(self, name):
    """Whether variable `name` is one this method adds to pre-trained BERT."""
    return (self.adapter_config is not None and
            adapters.is_adapter_variable(name))

  def is_new(self, name):
    """Whether `name` is absent from a pre-trained checkpoint: added or head."""
    return self.adds(name) or is_head(name)

  def trains(self, name):
    """Whether variable `name` trains. Subclasses decide."""
    raise NotImplementedError

  def trained_variables(self, variables):
    """The subset of `variables` (or names) that trains, in their order."""
    return [v for v in variables if self.trains(adapters.variable_name(v))]

  def bundle_variables(self, names):
    """Which of a checkpoint's model variables a bundle stores: the trained."""
    return [n for n in names if self.trains(n)]

  def check(self, names):
    """Refuses a model in which an added variable would stay frozen.

    Args:
      names: every variable name of the model.

    Raises:
      ValueError: one line, naming the method and an example variable.
    """
    untrained_new = [n for n in names if self.is_new(n) and not self.trains(n)]
    if untrained_new:
      raise ValueError(
          "--tuning_mode=%s does not train %d variables it adds (e.g. %s): "
          "they would stay at their random initialisation and be recorded as "
          "backbone weights; use --adapter_placement=none or a tuning mode "
          "that trains them" % (self.name, len(untrained_new),
                                untrained_new[0]))
    if not any(self.trains(n) for n in names):
      raise ValueError("--tuning_mode=%s trains no variable of this model" %
                       self.name)

  def flag_settings(self):
    """The method's settings by run_classifier flag name, every one present
    (None where the method has no such setting): what a run manifest records.
    """
    adapter = self.adapter_config
    settings = {
        "tuning_mode": self.name,
        "adapter_size": adapter.size if adapter else None,
        "adapter_activation": adapter.activation if adapter else None,
        "adapter_init_scale": adapter.init_scale if adapter else None,
        "adapter_placement": adapter.placement if adapter else "none",
    }
    for name in ("train_layernorm", "train_pooler", "tune_top_layers"):
      settings[name] = self.options.get(name)
    return settings

  def to_dict(self):
    """What a bundle records about the method."""
    return {"tuning_mode": self.name,
            "adapter": (self.adapter_config.to_dict() if self.adapter_config
                        else None),
            "options": dict(self.options)}


class AdaptersMethod(TuningMethod):
  """Houlsby et al. (2019): adapters, every LayerNorm and the head train.

  With train_layernorm=False the LayerNorms stay frozen (adapters + head,
  AdapterHub's default).
  """

  name = "adapters"
  description = ("adapters + every LayerNorm + classifier head train; the "
                 "pre-trained weights stay frozen")
  default_adapter_placement = "both"
  option_defaults = {"train_layernorm": True, "train_pooler": False}

  def trains(self, name):
    return (self.adds(name) or is_head(name) or self.trains_pooler(name) or
            (self.options["train_layernorm"] and is_layer_norm(name)))


class FullMethod(TuningMethod):
  """Plain fine-tuning: every variable trains. Builds no adapter unless asked
  (`--adapter_placement`), in which case the adapters train too."""

  name = "full"
  description = ("every weight trains (plain fine-tuning; no adapters unless "
                 "--adapter_placement asks for them)")
  whole_model = True
  option_defaults = {}

  def trains(self, name):
    return True


class HeadMethod(TuningMethod):
  """Feature extraction: frozen BERT, only the classifier head trains."""

  name = "head"
  description = "only the classifier head trains (feature extraction)"

  def trains(self, name):
    return is_head(name) or self.trains_pooler(name)


class LayerNormMethod(TuningMethod):
  """Every LayerNorm and the head train (the paper's LayerNorm baseline)."""

  name = "layernorm"
  description = "every LayerNorm + classifier head train"

  def trains(self, name):
    return is_layer_norm(name) or is_head(name) or self.trains_pooler(name)


class TopLayersMethod(TuningMethod):
  """The paper's "variable fine-tuning": the top K encoder layers (every
  variable of them), the pooler and the head train; below them BERT is
  frozen."""

  name = "top_layers"
  description = ("the top --tune_top_layers encoder layers + pooler + "
                 "classifier head train")
  option_defaults = {"tune_top_layers": None, "train_pooler": True}

  def __init__(self, adapter_config=None, num_layers=None, **options):
    super(TopLayersMethod, self).__init__(adapter_config, num_layers,
                                          **options)
    k = self.options["tune_top_layers"]
    if k is None:
      raise ValueError("--tuning_mode=top_layers needs --tune_top_layers=K")
    if num_layers is None:
      raise ValueError("--tuning_mode=top_layers needs the model's number "
                       "of layers")
    if not 1 <= k <= num_layers:
      raise ValueError("--tune_top_layers=%d: must be 1 to %d, the model "
                       "has %d layers" % (k, num_layers, num_layers))

  def trains(self, name):
    layer = encoder_layer(name)
    in_top = (layer is not None and
              layer >= self.num_layers - self.options["tune_top_layers"])
    return in_top or is_head(name) or self.trains_pooler(name)


class BitFitMethod(TuningMethod):
  """BitFit (Ben Zaken et al., 2021): every bias term trains, LayerNorm
  betas included, and the head."""

  name = "bitfit"
  description = "every bias (LayerNorm betas too) + classifier head train"

  def trains(self, name):
    return ((is_bias(name) and not is_head(name) and
             adapters.variable_name(name).startswith("bert/")) or
            is_head(name) or self.trains_pooler(name))


METHODS = collections.OrderedDict(
    (method.name, method) for method in (AdaptersMethod, FullMethod,
                                         HeadMethod, LayerNormMethod,
                                         TopLayersMethod, BitFitMethod))


def method_class(tuning_mode):
  """The class registered as `tuning_mode`.

  Raises:
    ValueError: unknown name; the message lists the known ones.
  """
  if tuning_mode not in METHODS:
    raise ValueError("--tuning_mode=%s: unknown (known: %s)" %
                     (tuning_mode, ", ".join(METHODS)))
  return METHODS[tuning_mode]


def build(tuning_mode, adapter_size=64, adapter_activation="gelu",
          adapter_init_scale=1e-3, adapter_placement=None, num_layers=None,
          **options):
  """The tuning method `tuning_mode` with its adapters, if any.

  Args:
    tuning_mode: a key of METHODS.
    adapter_placement: "both", "attention", "ffn", "none", or None for the
      method's own default (adapters: "both"; the others: "none").
    num_layers: the model's encoder layers (top_layers needs them).
    **options: train_layernorm, train_pooler, tune_top_layers; None means
      the method's default. A value given for an option the method does not
      take is refused.
    the others: see `adapters.AdapterConfig`.

  Raises:
    ValueError: an unknown mode, an option the method does not take, or a
      bad setting, naming the flag.
  """
  cls = method_class(tuning_mode)
  options = {k: v for (k, v) in options.items() if v is not None}
  placement = adapter_placement or cls.default_adapter_placement
  if placement == "none":
    return cls(None, num_layers, **options)
  try:
    config = adapters.AdapterConfig(size=adapter_size,
                                    activation=adapter_activation,
                                    init_scale=adapter_init_scale,
                                    placement=placement)
  except ValueError as e:
    raise ValueError("--%s" % e)
  return cls(config, num_layers, **options)


def parameter_counts(model_shapes, method):
  """Trained and frozen parameters, by group.

  Args:
    model_shapes: {variable name: shape} of the whole model.
    method: the `TuningMethod`.

  Returns:
    (trained, frozen): two OrderedDicts {group: count} over PARAMETER_GROUPS,
    holding only groups with a non-zero count.
  """
  trained = collections.OrderedDict((g, 0) for g in PARAMETER_GROUPS)
  frozen = collections.OrderedDict((g, 0) for g in PARAMETER_GROUPS)
  for (name, shape) in model_shapes.items():
    count = 1
    for dim in shape:
      count *= int(dim)
    target = trained if method.trains(name) else frozen
    target[parameter_group(name)] += count
  return (collections.OrderedDict((g, c) for (g, c) in trained.items() if c),
          collections.OrderedDict((g, c) for (g, c) in frozen.items() if c))
