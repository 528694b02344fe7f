# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The tuning-method interface: what a way of fine-tuning adds, trains, stores.

A tuning method is one object (a `TuningMethod`). It declares:

- its flags (`options`: name, type, default, help), which run_classifier.py
  registers from the registry, and `to_dict`/`from_dict`, the one record of
  its settings that bundles, `run.json`, sweep rows and SavedModels share;
- what it adds to the graph, through the `modeling.GraphHooks` it overrides
  (around each sub-layer's output, on each dense projection, on the attention
  keys and values); its new variables live under its own `scope`;
- what trains (`trains`, decided by variable name) and so what a bundle
  stores (exactly the trained variables, never a frozen weight);
- its closed-form count of trained parameters (`trained_parameters`), which
  the test matrix checks against the graph;
- how it is switched off in some layers (`with_layers_off`, the paper's
  ablation): its variables are built, so checkpoints load, but bypassed.

Everything a method neither adds nor trains is the *backbone*: it comes from
`--init_checkpoint` and stays bit-identical.
"""

import collections
import copy
import dataclasses
import numbers
import re

import tensorflow.compat.v1 as tf

import modeling

# The classifier head's variables: top-level names, as in Google BERT's
# run_classifier.py, so fine-tuned BERT checkpoints load.
HEAD_VARIABLES = ("output_weights", "output_bias")


# ---------------------------------------------------------------- names


def variable_name(variable_or_name):
  """`bert/x/kernel:0` -> `bert/x/kernel`; plain names pass through."""
  name = getattr(variable_or_name, "name", variable_or_name)
  return re.sub(r":\d+$", "", name)


def in_scope(name, scope):
  """Whether variable `name` lies under a `scope/` component anywhere."""
  return "/%s/" % scope in "/" + variable_name(name)


def is_head(name):
  return variable_name(name) in HEAD_VARIABLES


def is_layer_norm(name):
  return "/LayerNorm/" in variable_name(name)


def is_pooler(name):
  return variable_name(name).startswith("bert/pooler/")


def is_bias(name):
  """A bias of BERT: dense-layer biases and LayerNorm betas."""
  name = variable_name(name)
  return name.endswith("/bias") or name.endswith("/LayerNorm/beta")


def encoder_layer(name):
  """The encoder layer index of a variable, or None outside the layers."""
  match = re.match(r"^bert/encoder/layer_(\d+)/", variable_name(name))
  return int(match.group(1)) if match else None


def layer_module(path):
  """(layer index, module path inside the layer) of a Hugging Face module
  path "encoder.layer.3.attention.self.query.lora_A.weight", or (None, path)
  outside the encoder's layers."""
  match = re.match(r"^encoder\.layer\.(\d+)\.(.*)$", path)
  return (int(match.group(1)), match.group(2)) if match else (None, path)


def count_parameters(variables):
  """Total number of scalars in a list of variables."""
  return sum(v.shape.num_elements() for v in variables)


# ---------------------------------------------------------------- counts


def head_parameters(config, num_labels):
  return config.hidden_size * num_labels + num_labels


def pooler_parameters(config):
  return config.hidden_size * config.hidden_size + config.hidden_size


def layer_norm_parameters(config):
  """Every LayerNorm's gamma and beta: the embeddings' and two per layer."""
  return 2 * config.hidden_size * (1 + 2 * config.num_hidden_layers)


def encoder_layer_parameters(config):
  """One Transformer layer: Q, K, V, attention output, two LayerNorms, FFN."""
  h, i = config.hidden_size, config.intermediate_size
  return 4 * (h * h + h) + 2 * (2 * h) + (h * i + i) + (i * h + h)


def bert_parameters(config):
  """All of BERT: embeddings, encoder, pooler (no head)."""
  h = config.hidden_size
  embeddings = ((config.vocab_size + config.max_position_embeddings +
                 config.type_vocab_size) * h + 2 * h)
  return (embeddings + config.num_hidden_layers *
          encoder_layer_parameters(config) + pooler_parameters(config))


# ---------------------------------------------------------------- layers


def parse_layer_list(spec, num_layers):
  """Layer indices from "2-5", "0,3,7" or "0-2,5" (0-based, as layer_N).

  Returns:
    sorted list of ints; [] for an empty spec.

  Raises:
    ValueError: a bad item or a layer outside 0..num_layers-1, one line.
  """
  layers = set()
  for item in (spec or "").split(","):
    item = item.strip()
    if not item:
      continue
    match = re.match(r"^(\d+)(?:-(\d+))?$", item)
    if not match:
      raise ValueError("%r is not a layer or a span of layers (like 2-5)" %
                       item)
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if first > last or last >= num_layers:
      raise ValueError("%r is outside layers 0-%d" % (item, num_layers - 1))
    layers.update(range(first, last + 1))
  return sorted(layers)


# --ablate_adapters=each_span: every span of layers in turn (`layer_spans`).
EACH_SPAN = "each_span"


def layer_spans(num_layers):
  """Every span (first, last) of encoder layers, first <= last."""
  return [(first, last) for first in range(num_layers)
          for last in range(first, num_layers)]


def format_layer_list(layers):
  """The inverse of parse_layer_list: [2, 3, 4, 5, 9] -> "2-5,9"."""
  spans = []
  for layer in sorted(layers):
    if spans and layer == spans[-1][1] + 1:
      spans[-1][1] = layer
    else:
      spans.append([layer, layer])
  return ",".join(str(a) if a == b else "%d-%d" % (a, b) for (a, b) in spans)


# ---------------------------------------------------------------- options


@dataclasses.dataclass(frozen=True)
class Option(object):
  """One setting of a method, and the run_classifier.py flag that sets it.

  Attributes:
    name: the flag name (`adapter_size`).
    type: int, float, bool or str.
    default: the value when the flag is not given (None: none).
    help: the flag's help text.
    choices: (optional) the allowed values of a str option.
  """

  name: str
  type: type
  default: object
  help: str
  choices: tuple = None

  def parse(self, text):
    """The value a string spells ("true", "8", "1e-3"), checked; ValueError
    naming the flag when it spells none."""
    spelled = text
    if self.type is bool:
      spelled = {"true": True, "false": False}.get(text.lower(), text)
    elif self.type in (int, float):
      try:
        spelled = self.type(text)
      except ValueError:
        pass
    return self.check(spelled)

  def check(self, value):
    """The value, converted to the option's type; ValueError naming the
    flag when it does not fit."""
    if value is None:
      return None
    if self.type is bool:
      if not isinstance(value, bool):
        raise ValueError("--%s must be true or false, got %r" %
                         (self.name, value))
    elif self.type is int:
      # numpy integers pass; a bool, a float (8.0) or a string ("8") not.
      if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError("--%s must be an integer, got %r" % (self.name, value))
      value = int(value)
    elif self.type is float:
      if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError("--%s must be a number, got %r" % (self.name, value))
      value = float(value)
    elif self.type is str:
      if not isinstance(value, str):
        raise ValueError("--%s must be a string, got %r" % (self.name, value))
    if self.choices is not None and value not in self.choices:
      raise ValueError("--%s=%s: must be one of %s" %
                       (self.name, value, ", ".join(self.choices)))
    return value


TRAIN_POOLER = Option(
    "train_pooler", bool, False,
    "Whether the pooler trains; default: frozen (as the 2019 adapter-bert "
    "code) for every method but the ones that tune the top of the network.")


# ---------------------------------------------------------------- methods


class TuningMethod(modeling.GraphHooks):
  """Base class: one way of tuning BERT on a task.

  Subclasses set the class attributes and override `trains` (and the graph
  hooks of `modeling.GraphHooks` if they add anything). Build one with
  `create(options, num_layers)`; the object is then read-only.

  Attributes (class level):
    name: the `--tuning_mode` value.
    description: one line for `--help` and the docs.
    options: the `Option`s it takes (its flags).
    scope: the variable scope its added variables live under, or None if it
      adds none.
    group: the parameter log's name for what it adds ("adapters").
    whole_model: a bundle of it is a whole model, not a few weights for a
      shared frozen backbone.
    reference: the baseline every other method is compared with (the
      sweep's paired differences: plain fine-tuning).
    variants: sweep spellings, {suffix: options}: "name:suffix".
    spec_option: the option a numeric suffix sets ("top_layers:2").
    grid_options: {sweep axis: option}: the sweep's axes that apply to it.
    marker: its matplotlib marker in the result pictures.
    mergeable: its additions fold into the frozen weights (`merge`): served
      merged, the model is plain BERT with some weights of its own.
  """

  name = None
  description = None
  options = (TRAIN_POOLER,)
  scope = None
  group = None
  whole_model = False
  reference = False
  variants = {}
  spec_option = None
  grid_options = {}
  marker = "x"
  mergeable = False
  # A bool Tensor [num_layers] that switches the additions of each layer on
  # or off at run time (`with_layer_switches`), or None: all built on.
  layer_switches = None

  def __init__(self, options, num_layers):
    """Use `create`, which checks the options first."""
    self.settings = dict(options)
    self.num_layers = num_layers
    self.layers_off = frozenset()

  @classmethod
  def option(cls, name):
    for option in cls.options:
      if option.name == name:
        return option
    return None

  @classmethod
  def create(cls, options=None, num_layers=None):
    """The method with `options` ({flag name: value}; None: the default).

    Raises:
      ValueError: an option it does not take, or a bad value, naming the
        flag (one line).
    """
    given = {k: v for (k, v) in (options or {}).items() if v is not None}
    unknown = sorted(name for name in given if cls.option(name) is None)
    if unknown:
      raise ValueError("--%s does not apply to --tuning_mode=%s" %
                       (unknown[0], cls.name))
    settings = {}
    for option in cls.options:
      settings[option.name] = option.check(given.get(option.name,
                                                     option.default))
    method = cls(settings, num_layers)
    method.validate()
    return method

  def validate(self):
    """Raises ValueError (naming the flag) for settings that do not fit."""

  def __getitem__(self, name):
    return self.settings[name]

  # -------------------------------------------------- what it adds, trains

  def adds(self, name):
    """Whether variable `name` is one this method adds to pre-trained BERT."""
    return self.scope is not None and in_scope(name, self.scope)

  def is_new(self, name):
    """Whether `name` is absent from a pre-trained checkpoint: added or head."""
    return self.adds(name) or is_head(name)

  def trains(self, name):
    """Whether variable `name` trains. Subclasses decide."""
    raise NotImplementedError

  def trains_pooler(self, name):
    return bool(self.settings.get("train_pooler")) and is_pooler(name)

  def trained_variables(self, variables):
    """The subset of `variables` (or names) that trains, in their order."""
    return [v for v in variables if self.trains(variable_name(v))]

  def bundle_variables(self, names):
    """Which of a checkpoint's model variables a bundle stores: the trained."""
    return [n for n in names if self.trains(n)]

  def trained_parameters(self, config, num_labels):
    """The closed-form number of trained parameters on `config`."""
    raise NotImplementedError

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
          "backbone weights" % (self.name, len(untrained_new),
                                untrained_new[0]))
    if not any(self.trains(n) for n in names):
      raise ValueError("--tuning_mode=%s trains no variable of this model" %
                       self.name)

  def merge(self, values, backbone):
    """The task's own weights with the method folded into the backbone
    (mergeable methods override this).

    Args:
      values: {variable name: numpy array}: a bundle's trained variables.
      backbone: function(name) -> numpy array of a frozen variable.

    Returns:
      {name: array}: what plain BERT needs beside the shared backbone to
      compute what the method computes.

    Raises:
      ValueError: the method cannot be merged.
    """
    del values, backbone
    raise ValueError("--tuning_mode=%s cannot be merged into the backbone; "
                     "serve it unmerged" % self.name)

  def merged_projections(self, values, suffix, fold):
    """The part of `merge` that LoRA and IA3 share.

    Args:
      values: {name: array}: a bundle's trained variables.
      suffix: what ends the name of the method's variable on a projection
        ("/lora/A"): what comes before it is the projection's scope.
      fold: function(projection scope, name) -> {name: array}: the
        projection's merged kernel (and bias).

    Returns:
      {name: array}: the variables the method does not add (the head) and
      each projection's folded weights; a switched-off layer keeps its own.
    """
    merged = {n: v for (n, v) in values.items() if not self.adds(n)}
    for name in values:
      if not name.endswith(suffix):
        continue
      layer = encoder_layer(name)
      if layer is not None and not self.is_on(layer):
        continue
      merged.update(fold(name[:-len(suffix)], name))
    return merged

  def stored(self, values):
    """What a bundle stores of the trained `values` ({name: array}).

    Returns:
      (the method the bundle records, {name: array}): by default this
      method and the values themselves; prefix tuning trained through its
      MLP stores the plain prefixes the MLP computes, as a plain prefix
      method.
    """
    return (self, values)

  # -------------------------------------------------- other libraries

  # PEFT's `peft_type` of this method ("LORA"), if PEFT has it; AdapterHub's
  # config `architecture` ("bottleneck"), if AdapterHub has it. The folders'
  # formats are adapter_bert/peft_folders.py's and adapterhub.py's; a method
  # only says how its own variables are named and configured there.
  peft_type = None
  adapterhub_architecture = None

  def to_library(self, values, config):
    """The method's added variables as another library holds them.

    Args:
      values: {name: array}: a bundle's variables this method adds.
      config: the backbone's `modeling.BertConfig`.

    Returns:
      (settings, tensors): the library's configuration entries of the method
      (a dict), and {Hugging Face module path of BertModel (no "bert.")
      plus the library's parameter name, or a name of the library's own
      (PEFT's "prompt_embeddings"): array in PyTorch's layout}.

    Raises:
      ValueError: the library cannot hold these settings (one line, why).
    """
    del values, config
    raise ValueError("--tuning_mode=%s has no counterpart in another "
                     "library" % self.name)

  @classmethod
  def handles_library(cls, settings):
    """Whether the library's configuration `settings` of this method's
    `peft_type` or `adapterhub_architecture` is this method's (a parallel
    bottleneck is not a serial one's)."""
    del settings
    return True

  @classmethod
  def from_library(cls, settings, tensors, config):
    """The inverse of `to_library`: (options, {variable name: array}).

    Raises:
      ValueError: what the library saved is not representable here (one
        line naming the setting or tensor).
    """
    del settings, tensors, config
    raise ValueError("--tuning_mode=%s imports from no other library" %
                     cls.name)

  def replace(self, **changes):
    """A copy with some settings changed (checked as `create` checks)."""
    method = type(self).create(dict(self.settings, **changes), self.num_layers)
    return method.with_layers_off(self.layers_off) if self.layers_off else method

  # -------------------------------------------------- ablation

  @property
  def adds_anything(self):
    """Whether this configuration builds variables of its own."""
    return self.scope is not None

  def with_layers_off(self, layers):
    """A copy whose additions in `layers` are built but bypassed.

    Raises:
      ValueError: the method adds nothing that could be switched off.
    """
    if layers and not self.adds_anything:
      raise ValueError("--tuning_mode=%s adds nothing to switch off in "
                       "layers %s" % (self.name, format_layer_list(layers)))
    method = copy.copy(self)
    method.layers_off = frozenset(layers)
    return method

  def is_on(self, layer):
    return layer not in self.layers_off

  def with_layer_switches(self, switches):
    """A copy whose additions are on or off per layer at run time.

    Args:
      switches: bool Tensor [num_layers]; False bypasses that layer's
        additions as `with_layers_off` does, without building the graph again
        (an ablation evaluates every span of layers in one session).
    """
    method = copy.copy(self)
    method.layer_switches = switches
    return method

  def switched(self, layer, added, original):
    """What a point of `layer` gives: `added` (the method's change) where the
    layer is on, `original` where it is off, at build or at run time."""
    if not self.is_on(layer):
      return original
    if self.layer_switches is None:
      return added
    original = tf.cast(original, added.dtype)
    return tf.cond(self.layer_switches[layer], lambda: added,
                   lambda: original)

  # -------------------------------------------------- records

  def effective_settings(self):
    """The settings that shape the model: those of parts it does not build
    are None (what run.json compares, so an unused default never refuses
    a resume)."""
    return dict(self.settings)

  def to_dict(self):
    """What a bundle, run.json or SavedModel records about the method."""
    return {"tuning_mode": self.name, "options": dict(self.settings)}

  @classmethod
  def options_from_record(cls, record):
    """The options of a `to_dict` record (subclasses read older formats)."""
    return dict(record.get("options") or {})

  def label(self):
    """The method as its flags, for messages that tell the user what to
    give: "adapters --adapter_size=16" (options at their default left out),
    so "--tuning_mode=%s" % label() reads as a command line."""
    shown = ["--%s=%s" % (k, ("true" if v else "false") if isinstance(v, bool)
                          else v)
             for (k, v) in sorted(self.settings.items())
             if v is not None and v != self.option(k).default]
    return " ".join([self.name] + shown)


# ---------------------------------------------------------------- composing


def member_options(members):
  """The options of methods composed into one, each flag once (the first
  member's, where two take it)."""
  options = collections.OrderedDict()
  for member in members:
    for option in member.options:
      options.setdefault(option.name, option)
  return tuple(options.values())


class ComposedMethod(TuningMethod):
  """Several methods as one (He et al. 2022's MAM: prefix tuning + parallel
  adapters): each member adds its parts under its own scope; what trains is
  what any member trains.

  A subclass sets `members` (method classes) and `options =
  member_options(members)`; every member gets the settings of its own
  options.
  """

  members = ()

  def __init__(self, options, num_layers):
    super(ComposedMethod, self).__init__(options, num_layers)
    self.parts = [member.create({o.name: options.get(o.name)
                                 for o in member.options}, num_layers)
                  for member in self.members]

  @property
  def group(self):
    return " + ".join(part.group for part in self.parts if part.group)

  def adds(self, name):
    return any(part.adds(name) for part in self.parts)

  @property
  def adds_anything(self):
    return any(part.adds_anything for part in self.parts)

  def trains(self, name):
    return any(part.trains(name) for part in self.parts)

  def trained_parameters(self, config, num_labels):
    # Each part counts the head (and the pooler, if trained) once.
    shared = head_parameters(config, num_labels)
    if self.settings.get("train_pooler"):
      shared += pooler_parameters(config)
    return sum(part.trained_parameters(config, num_labels)
               for part in self.parts) - (len(self.parts) - 1) * shared

  def effective_settings(self):
    settings = dict(self.settings)
    for part in self.parts:
      settings.update(part.effective_settings())
    return settings

  def stored(self, values):
    settings = dict(self.settings)
    for part in self.parts:
      (stored_part, values) = part.stored(values)
      settings.update(stored_part.settings)
    return (self.replace(**settings), values)

  def with_layers_off(self, layers):
    method = super(ComposedMethod, self).with_layers_off(layers)
    method.parts = [part.with_layers_off(layers) for part in self.parts]
    return method

  def with_layer_switches(self, switches):
    method = super(ComposedMethod, self).with_layer_switches(switches)
    method.parts = [part.with_layer_switches(switches) for part in self.parts]
    return method

  def for_model(self, is_training):
    method = copy.copy(self)
    method.parts = [part.for_model(is_training) for part in self.parts]
    return method

  @property
  def layer_norm_epsilon(self):
    return self.parts[0].layer_norm_epsilon

  @layer_norm_epsilon.setter
  def layer_norm_epsilon(self, value):
    for part in self.parts:
      part.layer_norm_epsilon = value

  def position_offset(self):
    return sum(part.position_offset() for part in self.parts)

  def projection(self, layer, name, inputs, project):
    for part in self.parts:
      project = (lambda x, part=part, inner=project:
                 part.projection(layer, name, x, inner))
    return project(inputs)

  def keys_values(self, layer, keys, values, attention_mask):
    for part in self.parts:
      (keys, values, attention_mask) = part.keys_values(
          layer, keys, values, attention_mask)
    return (keys, values, attention_mask)

  def sublayer_output(self, layer, name, inputs, outputs):
    for part in self.parts:
      outputs = part.sublayer_output(layer, name, inputs, outputs)
    return outputs


# ---------------------------------------------------------------- groups

# Where each parameter of BERT lives, for the parameter log; a method's own
# variables form a group of their own (its `group`), listed first.
PARAMETER_GROUPS = ("LayerNorm", "head", "embeddings", "attention",
                    "feed-forward", "pooler", "other")


def parameter_group(name, method=None):
  """The group a variable belongs to: `method.group` for what it adds, else
  one of PARAMETER_GROUPS."""
  name = variable_name(name)
  if method is not None and method.adds(name):
    return method.group
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


def parameter_counts(model_shapes, method):
  """Trained and frozen parameters, by group.

  Args:
    model_shapes: {variable name: shape} of the whole model.
    method: the `TuningMethod`.

  Returns:
    (trained, frozen): two OrderedDicts {group: count}, the method's own
    group first, holding only groups with a non-zero count.
  """
  groups = ((method.group,) if method.group else ()) + PARAMETER_GROUPS
  trained = collections.OrderedDict((g, 0) for g in groups)
  frozen = collections.OrderedDict((g, 0) for g in groups)
  for (name, shape) in model_shapes.items():
    count = 1
    for dim in shape:
      count *= int(dim)
    target = trained if method.trains(name) else frozen
    target[parameter_group(name, method)] += count
  return (collections.OrderedDict((g, c) for (g, c) in trained.items() if c),
          collections.OrderedDict((g, c) for (g, c) in frozen.items() if c))
