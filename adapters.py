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
    Tensor [tokens, hidden] in the input's dtype.
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
  (down_kernel, down_bias, up_kernel, up_bias) = [
      tf.cast(weight, input_tensor.dtype)
      for weight in (down_kernel, down_bias, up_kernel, up_bias)]
  bottleneck = tf.matmul(input_tensor, down_kernel) + down_bias  # [tokens, m]
  if activation_fn is not None:
    bottleneck = activation_fn(bottleneck)
  return tf.matmul(bottleneck, up_kernel) + up_bias  # [tokens, hidden]


def adapter_parameters(config, size, placement):
  """Closed form: each adapter holds 2 * hidden * m + m + hidden scalars."""
  per_adapter = 2 * config.hidden_size * size + size + config.hidden_size
  return (config.num_hidden_layers * len(_SUBLAYERS_BY_PLACEMENT[placement]) *
          per_adapter)


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
    del inputs  # A serial adapter reads the sub-layer's output only.
    if not self.adapts(name):
      return outputs
    adapted = feedforward_adapter(
        outputs, self["adapter_size"],
        modeling.get_activation(self["adapter_activation"]),
        self["adapter_init_scale"])
    return adapted if self.is_on(layer) else outputs

  def effective_settings(self):
    """Without adapters (placement none) their size, activation and init
    shape nothing."""
    settings = dict(self.settings)
    if not self.adds_anything:
      for option in ADAPTER_OPTIONS:
        if option.name != "adapter_placement":
          settings[option.name] = None
    return settings

  def added_parameters(self, config):
    if not self.adds_anything:
      return 0
    return adapter_parameters(config, self["adapter_size"],
                              self["adapter_placement"])

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
  options = ADAPTER_OPTIONS + (TRAIN_LAYERNORM, base.TRAIN_POOLER)
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
