"""An independent NumPy forward pass of BERT in Google's checkpoint layout,
with each tuning method's change written from its paper's formula (not from
the project's code): the reference the method tests compare the graph with.

Float64 throughout; `values` maps checkpoint variable names to arrays.
"""

import math

import numpy as np


def gelu_tanh(x):
  """Google BERT's `gelu` (the tanh approximation)."""
  return 0.5 * x * (1.0 + np.tanh(
      math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, gamma, beta, eps=1e-12):
  mean = x.mean(axis=-1, keepdims=True)
  var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def softmax(x):
  e = np.exp(x - x.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


class Plain(object):
  """No method: BERT as pre-trained."""

  position_offset = 0

  def projection(self, values, layer, name, scope, x, project):
    del values, layer, name, scope
    return project(x)

  def keys_values(self, values, layer, keys, values_, mask):
    del values, layer
    return keys, values_, mask

  def sublayer(self, values, layer, name, scope, inputs, outputs):
    del values, layer, name, scope, inputs
    return outputs


class Lora(Plain):
  """Hu et al. (2022), eq. 3: h = x W + b + (alpha / r) x A B."""

  def __init__(self, targets, scale):
    self.targets, self.scale = targets, scale

  def projection(self, values, layer, name, scope, x, project):
    out = project(x)
    if name in self.targets:
      out = out + self.scale * (x @ values[scope + "/lora/A"] @
                                values[scope + "/lora/B"])
    return out


class Ia3(Plain):
  """Liu et al. (2022), section 3.3: l_k * k, l_v * v, (l_ff * gelu(x W1)) W2."""

  def projection(self, values, layer, name, scope, x, project):
    if name in ("key", "value"):
      return project(x) * values[scope + "/ia3/scale"]
    if name == "output":
      return project(x * values[scope + "/ia3/scale"])
    return project(x)


class Prefix(Plain):
  """Li and Liang (2021): per layer, trained keys P_k and values P_v [p,
  hidden] before the projected ones; every query may attend to them. With
  `length`, the tokens' positions start after the prefix (PEFT's BERT)."""

  def __init__(self, length=0):
    self.position_offset = length

  def keys_values(self, values, layer, keys, values_, mask):
    scope = "bert/encoder/layer_%d/attention/self/prefix/" % layer
    (batch, heads, _, size) = keys.shape

    def rows(prefix):
      heads_first = prefix.reshape(1, -1, heads, size).transpose(0, 2, 1, 3)
      return np.broadcast_to(heads_first, (batch,) + heads_first.shape[1:])

    length = values[scope + "keys"].shape[0]
    return (np.concatenate([rows(values[scope + "keys"]), keys], axis=2),
            np.concatenate([rows(values[scope + "values"]), values_], axis=2),
            np.concatenate([np.ones((batch, mask.shape[1], length)), mask],
                           axis=2))


class PrefixMlp(Prefix):
  """Li and Liang (2021), section 4.3: every layer's prefixes from one MLP,
  P = tanh(E W1 + b1) W2 + b2 [p, L * 2 * hidden]; layer l's keys are
  column block 2l, its values 2l + 1 (PEFT's `PrefixEncoder` layout)."""

  def keys_values(self, values, layer, keys, values_, mask):
    mlp = "bert/encoder/prefix/"
    hidden = np.tanh(values[mlp + "embedding"] @ values[mlp + "dense/kernel"]
                     + values[mlp + "dense/bias"])
    output = hidden @ values[mlp + "dense_1/kernel"] + values[
        mlp + "dense_1/bias"]
    width = keys.shape[1] * keys.shape[3]
    block = lambda b: output[:, b * width:(b + 1) * width]
    scope = "bert/encoder/layer_%d/attention/self/prefix/" % layer
    plain = dict(values, **{scope + "keys": block(2 * layer),
                            scope + "values": block(2 * layer + 1)})
    return super(PrefixMlp, self).keys_values(plain, layer, keys, values_,
                                              mask)


class ParallelAdapter(Plain):
  """He et al. (2022), eq. 6: h = sublayer(x) + s * f(x W_down) W_up, the
  bottleneck read from the sub-layer's input."""

  def __init__(self, sublayers, scale, activation):
    self.sublayers, self.scale, self.activation = sublayers, scale, activation

  def sublayer(self, values, layer, name, scope, inputs, outputs):
    if name not in self.sublayers:
      return outputs
    w = lambda n: values[scope + "/parallel_adapter/" + n]
    hidden = self.activation(inputs @ w("weights1") + w("biases1"))
    return outputs + self.scale * (hidden @ w("weights2") + w("biases2"))


class Composed(Plain):
  """Several of the above, each applied where it applies."""

  def __init__(self, *parts):
    self.parts = parts
    self.position_offset = sum(p.position_offset for p in parts)

  def projection(self, values, layer, name, scope, x, project):
    for part in self.parts:
      project = (lambda t, part=part, inner=project:
                 part.projection(values, layer, name, scope, t, inner))
    return project(x)

  def keys_values(self, values, layer, keys, values_, mask):
    for part in self.parts:
      (keys, values_, mask) = part.keys_values(values, layer, keys, values_,
                                               mask)
    return keys, values_, mask

  def sublayer(self, values, layer, name, scope, inputs, outputs):
    for part in self.parts:
      outputs = part.sublayer(values, layer, name, scope, inputs, outputs)
    return outputs


def forward(values, config, input_ids, input_mask, method=None):
  """The pooled output [batch, hidden] of BERT with `method`'s change.

  Args:
    values: {checkpoint name: array}.
    config: a dict of bert_config.json.
    input_ids, input_mask: int arrays [batch, seq] (segment 0 everywhere).
    method: one of the classes above (None: Plain).
  """
  method = method or Plain()
  v = {k: np.asarray(a, np.float64) for (k, a) in values.items()}
  eps = config.get("layer_norm_eps", 1e-12)
  batch, length = input_ids.shape
  hidden = config["hidden_size"]
  heads = config["num_attention_heads"]
  size = hidden // heads

  def dense(x, scope, layer=None, name=None):
    def project(t):
      return t @ v[scope + "/kernel"] + v[scope + "/bias"]
    if layer is None:
      return project(x)
    return method.projection(v, layer, name, scope, x, project)

  e = "bert/embeddings/"
  x = (v[e + "word_embeddings"][input_ids] +
       v[e + "position_embeddings"][method.position_offset:][:length][None] +
       v[e + "token_type_embeddings"][np.zeros_like(input_ids)])
  x = layer_norm(x, v[e + "LayerNorm/gamma"], v[e + "LayerNorm/beta"], eps)
  mask = input_mask.astype(np.float64)[:, None, :]  # [batch, 1, keys]
  for i in range(config["num_hidden_layers"]):
    p = "bert/encoder/layer_%d/" % i

    def split(t):
      return t.reshape(batch, -1, heads, size).transpose(0, 2, 1, 3)

    q = split(dense(x, p + "attention/self/query", i, "query"))
    k = split(dense(x, p + "attention/self/key", i, "key"))
    val = split(dense(x, p + "attention/self/value", i, "value"))
    (k, val, layer_mask) = method.keys_values(v, i, k, val, mask)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
    scores = scores + (1.0 - layer_mask[:, None]) * -10000.0
    context = (softmax(scores) @ val).transpose(0, 2, 1, 3).reshape(
        batch, length, hidden)
    attended = dense(context, p + "attention/output/dense", i,
                     "attention_output")
    attended = method.sublayer(v, i, "attention", p + "attention/output", x,
                               attended)
    x = layer_norm(attended + x, v[p + "attention/output/LayerNorm/gamma"],
                   v[p + "attention/output/LayerNorm/beta"], eps)
    inner = gelu_tanh(dense(x, p + "intermediate/dense", i, "intermediate"))
    out = dense(inner, p + "output/dense", i, "output")
    out = method.sublayer(v, i, "ffn", p + "output", x, out)
    x = layer_norm(out + x, v[p + "output/LayerNorm/gamma"],
                   v[p + "output/LayerNorm/beta"], eps)
  return np.tanh(dense(x[:, 0], "bert/pooler/dense"))
