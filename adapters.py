# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bottleneck adapters (Houlsby et al., ICML 2019): the `adapters` method.

An adapter maps a sub-layer output h [tokens, hidden] to

    h + W_up(act(W_down h + b_down)) + b_up

with W_down [hidden, size] and W_up [size, hidden]. It sits after the
sub-layer's dropout, before its residual add and LayerNorm (the
`sublayer_output` hook of `modeling.GraphHooks`). Its weights start from a
truncated normal of tiny stddev (1e-3) and its biases at zero, so at
initialisation it is close to the identity and a pre-trained BERT with adapters
behaves as the pre-trained BERT. Variable names follow the 2019 adapter-bert
release (`.../adapters/weights1`, `biases1`, `weights2`, `biases2`), so its
checkpoints load here.

Trained: the adapters, every LayerNorm (`--train_layernorm`) and the head.
"""

import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert.methods import base
import modeling

PLACEMENTS = ("both", "attention", "ffn", "none")

# The sub-layers each placement puts an adapter after.
_SUBLAYERS_BY_PLACEMENT = {
    "both": ("attention", "ffn"),
    "attention": ("attention",),
    "ffn": ("ffn",),
    "none": (),
}

SCOPE = "adapters"

ADAPTER_OPTIONS = (
    base.Option("adapter_size", int, 64, "Bottleneck width m of each adapter."),
    base.Option("adapter_activation", str, "gelu",
                "Adapter nonlinearity: gelu, gelu_exact, relu, tanh, swish or "
                "linear."),
    base.Option("adapter_init_scale", float, 1e-3,
                "Stddev of the adapters' truncated-normal weight init; small, "
                "so the model starts as the pre-trained one."),
    base.Option("adapter_placement", str, "both",
                "Where adapters go: after attention and after the "
                "feed-forward block (both), only one of them, or none.",
                choices=PLACEMENTS),
)

ADAPTER_LN_BEFORE = base.Option(
    "adapter_ln_before", bool, False,
    "Each adapter reads LayerNorm(sub-layer output + residual), through the "
    "sub-layer's own LayerNorm, and adds its result to the sub-layer's "
    "output before the residual add and that LayerNorm again (AdapterHub's "
    "original_ln_before: its Pfeiffer/seq_bn order); default false: it "
    "reads the sub-layer's output (Houlsby's).")

TRAIN_LAYERNORM = base.Option(
    "train_layernorm", bool, True,
    "tuning_mode=adapters: whether the LayerNorms train too (default true; "
    "false gives adapters + head, AdapterHub's default).")


def feedforward_adapter(input_tensor, size, activation_fn, init_scale=1e-3):
  """A bottleneck adapter with an identity skip connection.

  The variables are float32; the projections compute in the input's dtype
  (see `modeling.dense_layer`). The output is float32 whatever the input's
  dtype: the sub-layer's add & LayerNorm takes it as is.

  Args:
    input_tensor: float Tensor [tokens, hidden].
    size: bottleneck width m.
    activation_fn: the nonlinearity, or None for the identity.
    init_scale: stddev of the weights' truncated-normal initializer.

  Returns:
    float32 Tensor [tokens, hidden].
  """
  with tf.variable_scope(SCOPE):
    delta = bottleneck_delta(input_tensor, size, activation_fn, init_scale)
    # The skip connection in float32: near identity at the start, the delta
    # is ~1e-3 of the input, below bfloat16's resolution (1/256); summed in
    # the compute dtype it would be rounded away (see modeling.add_and_norm).
    return tf.cast(input_tensor, tf.float32) + tf.cast(delta, tf.float32)


def bottleneck_delta(input_tensor, size, activation_fn, init_scale):
  """act(x W_down + b_down) W_up + b_up, its variables made in the current
  scope (`weights1`, `biases1`, `weights2`, `biases2`): the bottleneck of a
  serial adapter and of a parallel one.

  Args:
    input_tensor: float Tensor [tokens, hidden].
    size: bottleneck width m.
    activation_fn: the nonlinearity, or None for the identity.
    init_scale: stddev of the weights' truncated-normal initializer.

  Returns:
    float32 Tensor [tokens, hidden]: the matmuls compute in the input's
    dtype, the biases are added in float32.
  """
  hidden_size = input_tensor.shape[-1]
  initializer = tf.truncated_normal_initializer(stddev=init_scale)
  # Biases are [1, width], as in the 2019 release, so its checkpoints load.
  down_kernel = tf.get_variable("weights1", [hidden_size, size],
                                initializer=initializer)
  down_bias = tf.get_variable("biases1", [1, size],
                              initializer=tf.zeros_initializer())
  up_kernel = tf.get_variable("weights2", [size, hidden_size],
                              initializer=initializer)
  up_bias = tf.get_variable("biases2", [1, hidden_size],
                            initializer=tf.zeros_initializer())
  dtype = input_tensor.dtype

  def project(inputs, kernel, bias):
    # In float32 the casts vanish and grappler fuses matmul, bias_add (of a
    # [width] view of the [1, width] variable; a broadcast `+` would block
    # it) and the GELU after the first into one oneDNN kernel. In bfloat16
    # the bias is added in float32: TensorFlow sums a bfloat16 bias_add's
    # gradient over the tokens in bfloat16 (5-8% off on MRPC batches,
    # benchmarks/precision_gradients.py), in float32 exactly.
    result = tf.matmul(tf.cast(inputs, dtype), tf.cast(kernel, dtype))
    return tf.nn.bias_add(tf.cast(result, tf.float32), tf.reshape(bias, [-1]))

  bottleneck = project(input_tensor, down_kernel, down_bias)  # [tokens, m]
  if activation_fn is not None:
    bottleneck = activation_fn(bottleneck)
  return project(bottleneck, up_kernel, up_bias)  # [tokens, hidden]


def adapter_parameters(config, size, placement):
  """Closed form: each adapter holds 2 * hidden * m + m + hidden scalars."""
  per_adapter = 2 * config.hidden_size * size + size + config.hidden_size
  return (config.num_hidden_layers * len(_SUBLAYERS_BY_PLACEMENT[placement]) *
          per_adapter)


# ---------------------------------------------------------------- AdapterHub

# AdapterHub's (`adapters` 1.x) bottleneck configuration of a Houlsby adapter
# (its DoubleSeqBnConfig), every entry as its save_adapter writes it: the
# adapter after the sub-layer's dropout, its own residual, then the
# pre-trained residual add and LayerNorm, as here.
ADAPTERHUB_BOTTLENECK = {
    "adapter_residual_before_ln": False, "cross_adapter": False,
    "dropout": 0.0, "factorized_phm_W": True, "factorized_phm_rule": False,
    "hypercomplex_nonlinearity": "glorot-uniform", "init_weights": "bert",
    "init_weights_seed": None, "inv_adapter": None,
    "inv_adapter_reduction_factor": None, "is_parallel": False,
    "learn_phm": True, "leave_out": [], "ln_after": False, "ln_before": False,
    "mh_adapter": True, "non_linearity": "gelu_new",
    "original_ln_after": True, "original_ln_before": False,
    "output_adapter": True, "phm_bias": True, "phm_c_init": "normal",
    "phm_dim": 4, "phm_init_range": 0.0001, "phm_layer": False,
    "phm_rank": 1, "reduction_factor": 16, "residual_before_ln": True,
    "scaling": 1.0, "shared_W_phm": False, "shared_phm_rule": True,
    "stochastic_depth": 0.0, "use_gating": False,
}
# The entries that change the computation, and the only value this project
# computes (the others: placement, width, activation, scale, are read).
_ADAPTERHUB_FIXED = ("original_ln_after",
                     "residual_before_ln", "ln_before", "ln_after",
                     "adapter_residual_before_ln", "use_gating", "phm_layer",
                     "inv_adapter", "leave_out", "stochastic_depth")
# Our activation -> AdapterHub's (transformers' names: "gelu" is exact there).
_ADAPTERHUB_ACTIVATIONS = {"gelu": "gelu_new", "gelu_exact": "gelu",
                           "relu": "relu", "tanh": "tanh", "swish": "swish",
                           "linear": "linear"}
# The Hugging Face module whose `adapters` follow each sub-layer.
_ADAPTERHUB_MODULES = {"attention": "attention.output", "ffn": "output"}
# Where the folder's adapter name goes in a tensor's path.
ADAPTER_NAME = "<adapter>"
# Our variable -> AdapterHub's parameter, and whether torch transposes it.
_ADAPTERHUB_PARAMETERS = (("weights1", "adapter_down.0.weight", True),
                          ("biases1", "adapter_down.0.bias", False),
                          ("weights2", "adapter_up.weight", True),
                          ("biases2", "adapter_up.bias", False))


def adapterhub_names(config, scope, sublayers):
  """[(our variable, AdapterHub's parameter path, transposed)] of every
  adapter after `sublayers`; the path holds ADAPTER_NAME."""
  names = []
  for layer in range(config.num_hidden_layers):
    for sublayer in sublayers:
      module = _ADAPTERHUB_MODULES[sublayer]
      ours = "bert/encoder/layer_%d/%s/%s/" % (layer, module.replace(".", "/"),
                                               scope)
      theirs = "encoder.layer.%d.%s.adapters.%s." % (layer, module,
                                                     ADAPTER_NAME)
      for (variable, parameter, transposed) in _ADAPTERHUB_PARAMETERS:
        names.append((ours + variable, theirs + parameter, transposed))
  return names


def to_adapterhub(method, values, config, changes):
  """A bottleneck method's settings and tensors as AdapterHub holds them.

  Args:
    method: the method (an `AdapterLayers`).
    values: {name: array}: its variables.
    config: the backbone's `modeling.BertConfig`.
    changes: configuration entries of its own (a parallel adapter's).

  Returns:
    (config entries, {module path with ADAPTER_NAME: array}).
  """
  if method.layers_off:
    raise ValueError("adapters switched off in layers %s: export the model "
                     "without the ablation" %
                     base.format_layer_list(method.layers_off))
  (hidden, size) = (config.hidden_size, method["adapter_size"])
  factor = hidden // size if hidden % size == 0 else hidden / size
  if int(hidden // factor) != size:
    raise ValueError("--adapter_size=%d: AdapterHub's reduction_factor "
                     "cannot give it on hidden size %d" % (size, hidden))
  settings = dict(ADAPTERHUB_BOTTLENECK, **changes)
  settings.update({
      "original_ln_before": bool(
          method.settings.get(ADAPTER_LN_BEFORE.name)),
      "mh_adapter": method.adapts("attention"),
      "output_adapter": method.adapts("ffn"),
      "reduction_factor": factor,
      "non_linearity": _ADAPTERHUB_ACTIVATIONS[method["adapter_activation"]]})
  sublayers = [s for s in _ADAPTERHUB_MODULES if method.adapts(s)]
  tensors = {theirs: values[ours].T if transposed else
             values[ours].reshape(-1)
             for (ours, theirs, transposed) in adapterhub_names(
                 config, method.scope, sublayers)}
  return (settings, tensors)


def from_adapterhub(settings, tensors, config, scope, scaled):
  """The inverse of `to_adapterhub`.

  Args:
    settings: the adapter's AdapterHub configuration.
    tensors: {module path with ADAPTER_NAME: array}.
    config: the backbone's `modeling.BertConfig`.
    scope: the method's variable scope.
    scaled: whether the method has a scale (`adapter_scale`); a serial
      adapter's must be 1.

  Returns:
    (options, {name: array}).
  """
  for key in _ADAPTERHUB_FIXED:
    if settings.get(key, ADAPTERHUB_BOTTLENECK[key]) != (
        ADAPTERHUB_BOTTLENECK[key]):
      raise ValueError("AdapterHub adapter with %s=%r: not representable "
                       "here" % (key, settings[key]))
  ln_before = bool(settings.get("original_ln_before"))
  if ln_before and scaled:
    raise ValueError("AdapterHub parallel adapter with original_ln_before="
                     "True: not representable here")
  activations = {v: k for (k, v) in _ADAPTERHUB_ACTIVATIONS.items()}
  activation = settings.get("non_linearity")
  if activation not in activations:
    raise ValueError("AdapterHub adapter with non_linearity=%r: known are %s"
                     % (activation, ", ".join(sorted(activations))))
  factor = settings.get("reduction_factor")
  if not isinstance(factor, (int, float)) or isinstance(factor, bool):
    raise ValueError("AdapterHub adapter with reduction_factor=%r: one "
                     "width for every layer only" % (factor,))
  scale = settings.get("scaling", 1.0)
  if not isinstance(scale, (int, float)) or (not scaled and scale != 1.0):
    raise ValueError("AdapterHub adapter with scaling=%r: not representable "
                     "here" % (scale,))
  sublayers = [s for (s, key) in (("attention", "mh_adapter"),
                                  ("ffn", "output_adapter"))
               if settings.get(key)]
  options = {"adapter_size": int(config.hidden_size // factor),
             "adapter_activation": activations[activation],
             "adapter_placement": ("both" if len(sublayers) == 2 else
                                   sublayers[0] if sublayers else "none")}
  if scaled:
    options["adapter_scale"] = float(scale)
  if ln_before:
    options[ADAPTER_LN_BEFORE.name] = True
  names = adapterhub_names(config, scope, sublayers)
  unknown = sorted(set(tensors) - {theirs for (_, theirs, _) in names})
  if unknown:
    raise ValueError("AdapterHub adapter holds %s, which its configuration "
                     "does not describe" % unknown[0])
  values = {}
  for (ours, theirs, transposed) in names:
    if theirs not in tensors:
      raise ValueError("AdapterHub adapter lacks %s" % theirs)
    value = tensors[theirs]
    values[ours] = (value.T if transposed else value.reshape(1, -1)).astype(
        np.float32)
  return (options, values)


class AdapterLayers(object):
  """The adapters' graph part, for any method that carries adapters.

  Mixed into a `base.TuningMethod` whose settings hold ADAPTER_OPTIONS.
  """

  scope = SCOPE
  group = "adapters"

  def validate(self):
    size, scale = self["adapter_size"], self["adapter_init_scale"]
    if size <= 0:
      raise ValueError("--adapter_size must be a positive integer, got %r" %
                       size)
    if scale < 0:
      raise ValueError("--adapter_init_scale must be >= 0, got %r" % scale)
    try:
      modeling.get_activation(self["adapter_activation"])
    except ValueError as e:
      raise ValueError("--adapter_activation: %s" % e)

  @property
  def adds_anything(self):
    return self["adapter_placement"] != "none"

  def adapts(self, sublayer):
    """Whether an adapter follows `sublayer` ("attention" or "ffn")."""
    return sublayer in _SUBLAYERS_BY_PLACEMENT[self["adapter_placement"]]

  def sublayer_output(self, layer, name, inputs, outputs):
    """An adapter after the sub-layer (built even in a switched-off layer,
    so checkpoints load; there the pre-trained path passes unchanged)."""
    if not self.adapts(name):
      return outputs
    activation = modeling.get_activation(self["adapter_activation"])
    if self.settings.get(ADAPTER_LN_BEFORE.name):
      # h + A(LayerNorm(h + x)): the sub-layer's own LayerNorm (its
      # variables, reused), as AdapterHub's original_ln_before.
      normalized = modeling.layer_norm(
          tf.cast(outputs, tf.float32) + tf.cast(inputs, tf.float32),
          self.layer_norm_epsilon)
      with tf.variable_scope(SCOPE):
        delta = bottleneck_delta(tf.cast(normalized, outputs.dtype),
                                 self["adapter_size"], activation,
                                 self["adapter_init_scale"])
      adapted = tf.cast(outputs, tf.float32) + tf.cast(delta, tf.float32)
    else:
      adapted = feedforward_adapter(outputs, self["adapter_size"], activation,
                                    self["adapter_init_scale"])
    return self.switched(layer, adapted, outputs)

  def effective_settings(self):
    """Without adapters (placement none) their size, activation and init
    shape nothing."""
    settings = dict(self.settings)
    if not self.adds_anything:
      for option in ADAPTER_OPTIONS:
        if option.name != "adapter_placement":
          settings[option.name] = None
    if ADAPTER_LN_BEFORE.name in settings and not settings[
        ADAPTER_LN_BEFORE.name]:
      # Houlsby's order, the only one before the option existed: manifests
      # written then (without it) compare equal.
      settings[ADAPTER_LN_BEFORE.name] = None
    return settings

  def added_parameters(self, config):
    if not self.adds_anything:
      return 0
    return adapter_parameters(config, self["adapter_size"],
                              self["adapter_placement"])

  # -------------------------------------------------- AdapterHub

  adapterhub_architecture = "bottleneck"
  parallel = False  # a parallel adapter reads the sub-layer's input

  def adapterhub_changes(self):
    """Its own entries of AdapterHub's bottleneck configuration."""
    return {}

  def to_library(self, values, config):
    return to_adapterhub(self, values, config, self.adapterhub_changes())

  @classmethod
  def handles_library(cls, settings):
    return bool(settings.get("is_parallel")) == cls.parallel

  @classmethod
  def from_library(cls, settings, tensors, config):
    (options, values) = from_adapterhub(settings, tensors, config, cls.scope,
                                        cls.parallel)
    if cls.option(TRAIN_LAYERNORM.name) is not None:
      # AdapterHub's LayerNorms are the backbone's (a patch says otherwise).
      options[TRAIN_LAYERNORM.name] = False
    return (options, values)

  @classmethod
  def options_from_record(cls, record):
    """Also reads bundles and manifests written before methods declared
    their options: their adapter settings sat under "adapter"."""
    options = dict(record.get("options") or {})
    if "adapter" in record:
      adapter = record["adapter"]
      if not adapter:
        options["adapter_placement"] = "none"
      else:
        options.update({"adapter_size": adapter["size"],
                        "adapter_activation": adapter["activation"],
                        "adapter_init_scale": adapter["init_scale"],
                        "adapter_placement": adapter["placement"]})
    return options


class AdaptersMethod(AdapterLayers, base.TuningMethod):
  """Houlsby et al. (2019): adapters, every LayerNorm and the head train.

  With train_layernorm=False the LayerNorms stay frozen (adapters + head,
  AdapterHub's default).
  """

  name = "adapters"
  description = ("adapters + every LayerNorm + classifier head train; the "
                 "pre-trained weights stay frozen")
  options = ADAPTER_OPTIONS + (ADAPTER_LN_BEFORE, TRAIN_LAYERNORM,
                                base.TRAIN_POOLER)
  variants = {"noln": {"train_layernorm": False}}
  grid_options = {"adapter_sizes": "adapter_size",
                  "init_scales": "adapter_init_scale"}
  marker = "o"

  def trains(self, name):
    return (self.adds(name) or base.is_head(name) or self.trains_pooler(name)
            or (self["train_layernorm"] and base.is_layer_norm(name)))

  def trained_parameters(self, config, num_labels):
    count = self.added_parameters(config) + base.head_parameters(config,
                                                                 num_labels)
    if self["train_layernorm"]:
      count += base.layer_norm_parameters(config)
    if self["train_pooler"]:
      count += base.pooler_parameters(config)
    return count


METHOD = AdaptersMethod
