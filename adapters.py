# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bottleneck adapters (Houlsby et al., ICML 2019).

An adapter maps a sub-layer output h [tokens, hidden] to

    h + W_up(act(W_down h + b_down)) + b_up

with W_down [hidden, size] and W_up [size, hidden]. Its weights start from a
truncated normal of tiny stddev (1e-3) and its biases at zero, so at
initialisation it is close to the identity and a pre-trained BERT with adapters
behaves as the pre-trained BERT. Variable names follow the 2019 adapter-bert
release (`.../adapters/weights1`, `biases1`, `weights2`, `biases2`), so its
checkpoints load here.

What trains around the adapters is the tuning method's decision (tuning.py).
"""

import re

import tensorflow.compat.v1 as tf

import modeling

PLACEMENTS = ("both", "attention", "ffn", "none")

# The sub-layers each placement puts an adapter after.
_SUBLAYERS_BY_PLACEMENT = {
    "both": ("attention", "ffn"),
    "attention": ("attention",),
    "ffn": ("ffn",),
    "none": (),
}


class AdapterConfig(object):
  """What adapters to build: their width, nonlinearity, init and placement."""

  def __init__(self, size=64, activation="gelu", init_scale=1e-3,
               placement="both"):
    """Constructs AdapterConfig.

    Args:
      size: bottleneck width m.
      activation: nonlinearity between the projections (see
        `modeling.get_activation`).
      init_scale: stddev of the truncated-normal init of both projections.
      placement: "both" (after attention and after the feed-forward block),
        "attention", "ffn", or "none" (no adapter variables at all).

    Raises:
      ValueError: any argument is out of range; the message names it.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
      raise ValueError("adapter_size must be a positive integer, got %r" % size)
    if init_scale < 0:
      raise ValueError("adapter_init_scale must be >= 0, got %r" % init_scale)
    if placement not in PLACEMENTS:
      raise ValueError("adapter_placement must be one of %s, got %r" %
                       (", ".join(PLACEMENTS), placement))
    try:
      modeling.get_activation(activation)
    except ValueError as e:
      raise ValueError("adapter_activation: %s" % e)
    self.size = size
    self.activation = activation
    self.init_scale = float(init_scale)
    self.placement = placement

  def adapts(self, sublayer):
    """Whether an adapter follows `sublayer` ("attention" or "ffn")."""
    return sublayer in _SUBLAYERS_BY_PLACEMENT[self.placement]

  def adapt(self, input_tensor, sublayer, ablated=False):
    """Applies an adapter to `input_tensor` if the placement asks for one.

    Args:
      ablated: build the adapter's variables (so checkpoints load as usual)
        but bypass it: the sub-layer output passes through unchanged, exactly
        the pre-trained path (eval-time ablation, Houlsby et al. Fig. 6).
    """
    if not self.adapts(sublayer):
      return input_tensor
    output = feedforward_adapter(input_tensor, self.size,
                                 modeling.get_activation(self.activation),
                                 self.init_scale)
    return input_tensor if ablated else output

  def to_dict(self):
    return {"size": self.size, "activation": self.activation,
            "init_scale": self.init_scale, "placement": self.placement}


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
  with tf.variable_scope("adapters"):
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
    delta = tf.matmul(bottleneck, up_kernel) + up_bias  # [tokens, hidden]
    # The skip connection in float32: near identity at the start, the delta
    # is ~1e-3 of the input, below bfloat16's resolution (1/256); summed in
    # the compute dtype it would be rounded away (see modeling.add_and_norm).
    return tf.cast(input_tensor, tf.float32) + tf.cast(delta, tf.float32)


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


def format_layer_list(layers):
  """The inverse of parse_layer_list: [2, 3, 4, 5, 9] -> "2-5,9"."""
  spans = []
  for layer in sorted(layers):
    if spans and layer == spans[-1][1] + 1:
      spans[-1][1] = layer
    else:
      spans.append([layer, layer])
  return ",".join(str(a) if a == b else "%d-%d" % (a, b) for (a, b) in spans)


def variable_name(variable_or_name):
  """`bert/x/kernel:0` -> `bert/x/kernel`; plain names pass through."""
  name = getattr(variable_or_name, "name", variable_or_name)
  return re.sub(r":\d+$", "", name)


def is_adapter_variable(variable_or_name):
  """Whether a variable is an adapter's (under an `adapters/` scope)."""
  return "/adapters/" in "/" + variable_name(variable_or_name)


def count_parameters(variables):
  """Total number of scalars in a list of variables."""
  total = 0
  for v in variables:
    total += v.shape.num_elements()
  return total
