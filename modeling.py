# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""BERT as TF1-style graph code, with hooks where a tuning method changes it.

The whole model reads top to bottom: embeddings, a post-LayerNorm Transformer
encoder, and a pooler. Variable names are exactly those of Google's released
BERT checkpoints (`bert/encoder/layer_0/attention/self/query/kernel`, ...), so
they load with no renaming.

A parameter-efficient method (adapters, LoRA, prefix tuning, ...) changes the
computation only through `GraphHooks`, called at three kinds of points of
every layer: each dense projection, the attention keys and values, and each
sub-layer's output before its residual add. This file knows no method: the
hooks change nothing unless a method (adapter_bert/methods/) overrides them.
A method's variables are created inside its hooks, under the scope of the
point they are called at (adapters: `.../attention/output/adapters/`), which a
pre-trained checkpoint does not hold.

Loading a pre-trained checkpoint therefore maps only the names it holds:
`{"bert/": "bert/"}` would ask it for the adapters too and fail.
`classifier.checkpoint_assignment_maps` builds that map:

```python
maps = classifier.checkpoint_assignment_maps(tf.global_variables(), [ckpt])
for (checkpoint, assignment_map) in maps:
  tf.train.init_from_checkpoint(checkpoint, assignment_map)
```
"""

import copy
import dataclasses
import json
import math
import re
import zlib

import six
import tensorflow.compat.v1 as tf

from adapter_bert import errors


@dataclasses.dataclass(eq=False)  # compared by to_dict(), hashable
class BertConfig(object):
  """The hyper-parameters of a BERT model, as in Google's `bert_config.json`.

  Attributes:
    vocab_size: Number of WordPiece tokens.
    hidden_size: Width of the encoder layers and the pooler.
    num_hidden_layers: Number of Transformer layers.
    num_attention_heads: Attention heads per layer; must divide hidden_size.
    intermediate_size: Width of the feed-forward ("intermediate") layer.
    hidden_act: Feed-forward nonlinearity: "gelu" (Google BERT's tanh
      approximation), "gelu_exact" (erf; Hugging Face's "gelu"), "relu", ...
    hidden_dropout_prob: Dropout on embeddings, sub-layer outputs and pooler.
    attention_probs_dropout_prob: Dropout on attention probabilities.
    max_position_embeddings: Longest sequence the model has positions for.
    type_vocab_size: Number of segment ids (`token_type_ids`).
    initializer_range: Stddev of the truncated-normal initializer.
    layer_norm_eps: Epsilon of every LayerNorm (Google BERT: 1e-12).

  A config file's other keys are kept as attributes (as Google BERT does),
  so `to_dict` gives back what was read.
  """

  vocab_size: int
  hidden_size: int = 768
  num_hidden_layers: int = 12
  num_attention_heads: int = 12
  intermediate_size: int = 3072
  hidden_act: str = "gelu"
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  max_position_embeddings: int = 512
  type_vocab_size: int = 16
  initializer_range: float = 0.02
  layer_norm_eps: float = 1e-12

  @classmethod
  def from_dict(cls, json_object):
    """Builds a config from a dict; keys it does not know are kept as attributes."""
    if "vocab_size" not in json_object:
      raise ValueError("BERT config has no 'vocab_size'")
    config = cls(vocab_size=None)
    for (key, value) in six.iteritems(json_object):
      config.__dict__[key] = value
    config.validate()
    return config

  @classmethod
  def from_json_file(cls, json_file):
    """Reads Google's `bert_config.json`; bad files raise a one-line ValueError."""
    try:
      with tf.io.gfile.GFile(json_file, "r") as reader:
        text = reader.read()
    except (tf.errors.OpError, OSError, UnicodeDecodeError) as e:
      raise ValueError("bert_config_file %s: cannot read it (%s)" %
                       (json_file, errors.one_line(e)))
    try:
      json_object = json.loads(text)
    except ValueError as e:
      raise ValueError("bert_config_file %s: not valid JSON (%s)" % (json_file, e))
    if not isinstance(json_object, dict):
      raise ValueError("bert_config_file %s: expected a JSON object" % json_file)
    try:
      return cls.from_dict(json_object)
    except ValueError as e:
      raise ValueError("bert_config_file %s: %s" % (json_file, e))

  def validate(self):
    """Raises ValueError when the hyper-parameters cannot make a model."""
    for key in ("vocab_size", "hidden_size", "num_hidden_layers",
                "num_attention_heads", "intermediate_size",
                "max_position_embeddings", "type_vocab_size"):
      value = getattr(self, key)
      if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError("'%s' must be a positive integer, got %r" % (key, value))
    if self.hidden_size % self.num_attention_heads != 0:
      raise ValueError("hidden_size %d is not a multiple of num_attention_heads %d"
                       % (self.hidden_size, self.num_attention_heads))
    # A dropout rate of 1 or more would drop everything (tf.nn.dropout
    # raises deep inside graph building); the epsilon and init range must be
    # positive numbers.
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
      value = getattr(self, key)
      if (not isinstance(value, (int, float)) or isinstance(value, bool) or
          not 0.0 <= value < 1.0):
        raise ValueError("'%s' must be a number in [0, 1), got %r" %
                         (key, value))
    for key in ("initializer_range", "layer_norm_eps"):
      value = getattr(self, key)
      if (not isinstance(value, (int, float)) or isinstance(value, bool) or
          not value > 0):
        raise ValueError("'%s' must be a positive number, got %r" %
                         (key, value))
    get_activation(self.hidden_act)  # raises on an unknown name

  def to_dict(self):
    return copy.deepcopy(self.__dict__)

  def to_json_string(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


class BertModel(object):
  """BERT ("Bidirectional Encoder Representations from Transformers").

  Example:

  ```python
  input_ids = tf.constant([[31, 51, 99], [15, 5, 0]])
  input_mask = tf.constant([[1, 1, 1], [1, 1, 0]])
  config = modeling.BertConfig(vocab_size=100, hidden_size=32,
      num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
  model = modeling.BertModel(config, is_training=True, input_ids=input_ids,
      input_mask=input_mask, hooks=adapters.AdaptersMethod.create(
          {"adapter_size": 8}))
  pooled = model.get_pooled_output()  # [batch, hidden]
  ```
  """

  def __init__(self,
               config,
               is_training,
               input_ids,
               input_mask=None,
               token_type_ids=None,
               hooks=None,
               pooled_only=False,
               compute_dtype=tf.float32):
    """Builds the model graph.

    Args:
      config: `BertConfig`.
      is_training: False turns every dropout off (eval and predict).
      input_ids: int32 Tensor [batch, seq] of WordPiece ids.
      input_mask: (optional) int32 Tensor [batch, seq]; 1 for real tokens,
        0 for padding, which no token attends to.
      token_type_ids: (optional) int32 Tensor [batch, seq] of segment ids.
      hooks: (optional) `GraphHooks` of a tuning method (its additions:
        adapters, LoRA, ...); None builds plain BERT.
      pooled_only: the caller reads only the pooled output (a classifier):
        the last layer then computes the [CLS] position alone, since no other
        position of it reaches the pooler. Same variables, same pooled output
        (to float round-off), about 1/num_layers less compute; the sequence
        output and the last layer output are then [batch, 1, hidden].
      compute_dtype: dtype of the encoder's matmuls and activations:
        tf.float32, or tf.bfloat16 / tf.float16 for mixed precision. The
        variables stay float32 whatever it is; the embeddings, every
        LayerNorm and the attention softmax compute in float32; the outputs
        are in this dtype.
    """
    config = copy.deepcopy(config)
    if not is_training:
      config.hidden_dropout_prob = 0.0
      config.attention_probs_dropout_prob = 0.0
    if hooks is not None:
      hooks = hooks.for_model(is_training)
      hooks.layer_norm_epsilon = config.layer_norm_eps

    input_shape = get_shape_list(input_ids, expected_rank=2)
    batch_size, seq_length = input_shape[0], input_shape[1]
    if input_mask is None:
      input_mask = tf.ones(shape=[batch_size, seq_length], dtype=tf.int32)
    if token_type_ids is None:
      token_type_ids = tf.zeros(shape=[batch_size, seq_length], dtype=tf.int32)

    with tf.variable_scope("bert"):
      with tf.variable_scope("embeddings"):
        # [batch, seq, hidden]
        (self.embedding_output, self.embedding_table) = embedding_lookup(
            input_ids=input_ids,
            vocab_size=config.vocab_size,
            embedding_size=config.hidden_size,
            initializer_range=config.initializer_range)
        self.embedding_output = embedding_postprocessor(
            input_tensor=self.embedding_output,
            token_type_ids=token_type_ids,
            token_type_vocab_size=config.type_vocab_size,
            max_position_embeddings=config.max_position_embeddings,
            initializer_range=config.initializer_range,
            dropout_prob=config.hidden_dropout_prob,
            layer_norm_eps=config.layer_norm_eps,
            hooks=hooks)
        self.embedding_output = tf.cast(self.embedding_output, compute_dtype)

      with tf.variable_scope("encoder"):
        # [batch, 1, seq]: which keys a query may attend to, the same for
        # every query; broadcast over queries (and heads) where it is used.
        attention_mask = tf.expand_dims(tf.cast(input_mask, tf.float32), 1)
        self.all_encoder_layers = transformer_model(
            input_tensor=self.embedding_output,
            attention_mask=attention_mask,
            config=config,
            hooks=hooks,
            last_layer_first_token_only=pooled_only)

      self.sequence_output = self.all_encoder_layers[-1]  # [batch, seq, hidden]

      with tf.variable_scope("pooler"):
        self.pooled_output = pooler(self.sequence_output, config)

  def get_pooled_output(self):
    """[batch, hidden]: tanh(dense([CLS] output)), the input of the classifier."""
    return self.pooled_output

  def get_sequence_output(self):
    """[batch, seq, hidden]: the last encoder layer."""
    return self.sequence_output

  def get_all_encoder_layers(self):
    return self.all_encoder_layers

  def get_embedding_output(self):
    """[batch, seq, hidden]: embeddings after LayerNorm and dropout."""
    return self.embedding_output

  def get_embedding_table(self):
    return self.embedding_table


def pooler(sequence_output, config):
  """tanh(dense(the [CLS] token's output)): [batch, seq, hidden] -> [batch,
  hidden]."""
  first_token_tensor = tf.squeeze(sequence_output[:, 0:1, :], axis=1)
  return dense_layer(first_token_tensor, config.hidden_size,
                     activation=tf.tanh,
                     initializer=create_initializer(config.initializer_range),
                     name="dense")


# ---------------------------------------------------------------- hooks

# The dense projections of a layer, as `GraphHooks.projection` names them.
PROJECTIONS = ("query", "key", "value", "attention_output", "intermediate",
               "output")
# Each projection's variable scope inside `bert/encoder/layer_<i>/`.
PROJECTION_SCOPES = {
    "query": "attention/self/query",
    "key": "attention/self/key",
    "value": "attention/self/value",
    "attention_output": "attention/output/dense",
    "intermediate": "intermediate/dense",
    "output": "output/dense",
}
# The sub-layers of a layer, as `GraphHooks.sublayer_output` names them.
SUBLAYERS = ("attention", "ffn")


class GraphHooks(object):
  """Where a tuning method changes BERT's computation; here, nowhere.

  `transformer_model` calls these at fixed points of every layer. A method
  overrides the hooks it needs and creates its variables inside them: each
  hook runs in the variable scope of its point, so a method's variables sit
  beside the BERT variables they change. Every tensor is in the compute
  dtype (float32, or bfloat16/float16 under mixed precision) unless noted.
  """

  # The model's LayerNorm epsilon, set by BertModel on the hooks it uses,
  # for a method that applies one of the model's LayerNorms itself.
  layer_norm_epsilon = 1e-12

  def for_model(self, is_training):
    """The hooks for one model build: a copy, which a method whose additions
    differ in training (LoRA's dropout) tells which it is."""
    del is_training  # Unused here.
    return copy.copy(self)

  def position_offset(self):
    """The position of the first token (0): prefix tuning as PEFT builds it
    puts the tokens after its p prefix positions."""
    return 0

  def projection(self, layer, name, inputs, project):
    """A dense projection: returns its output before any activation.

    Args:
      layer: encoder layer index.
      name: one of PROJECTIONS.
      inputs: float Tensor [tokens, width_in].
      project: the frozen projection, inputs -> inputs W + b [tokens,
        width_out]. LoRA adds a low-rank term to project(inputs); IA3
        rescales its result (keys, values) or its input (the FFN output).
    """
    del layer, name  # Unused here.
    return project(inputs)

  def projection_hook(self, layer, name):
    """`projection` bound to one point, as `dense_layer`'s hook."""
    return lambda inputs, project: self.projection(layer, name, inputs,
                                                   project)

  def keys_values(self, layer, keys, values, attention_mask):
    """The attention's keys and values: prefix tuning prepends some.

    Args:
      layer: encoder layer index.
      keys, values: float Tensors [batch, heads, key_seq, size_per_head].
      attention_mask: float32 Tensor [batch, query_seq or 1, key_seq] of 0/1,
        or None; extended with ones for prepended keys.

    Returns:
      (keys, values, attention_mask), key_seq possibly longer.
    """
    del layer  # Unused here.
    return (keys, values, attention_mask)

  def layer_norm(self, normalized, scale_and_shift):
    """A LayerNorm's scale and shift.

    Args:
      normalized: float32 Tensor [..., hidden] of zero mean, unit variance.
      scale_and_shift: x -> x * gamma + beta with the LayerNorm's variables,
        made (or found) in its scope when called. Several tasks' rows in one
        batch each take their own (adapter_bert/routing.py).
    """
    return scale_and_shift(normalized)

  def sublayer_output(self, layer, name, inputs, outputs):
    """A sub-layer's output after its dropout, before add & LayerNorm.

    Args:
      layer: encoder layer index.
      name: one of SUBLAYERS.
      inputs: the sub-layer's input [tokens, hidden] (the residual).
      outputs: its output [tokens, hidden]. A serial adapter maps it; a
        parallel adapter adds a function of `inputs` to it.

    Returns:
      [tokens, hidden]; float32 is allowed (the add & LayerNorm sums in
      float32 anyway), and keeps a near-identity change that bfloat16 would
      round away.
    """
    del layer, name, inputs  # Unused here.
    return outputs


# Both GELUs are TensorFlow's own (tf.nn.gelu): on CPU, grappler fuses its
# exact op pattern with the matmul and bias before it into one oneDNN kernel
# (_MklNativeFusedMatMul), ten ops fewer per adapter and per feed-forward
# block than the same formula written out by hand.


def gelu(x):
  """GELU, tanh approximation: Google BERT's `gelu` (arXiv:1606.08415),
  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
  return tf.compat.v2.nn.gelu(x, approximate=True)


def gelu_exact(x):
  """GELU with the exact Gaussian CDF, 0.5 x (1 + erf(x / sqrt(2))): what
  Hugging Face calls "gelu"."""
  return tf.compat.v2.nn.gelu(x, approximate=False)


def swish(x):
  return x * tf.sigmoid(x)


_ACTIVATIONS = {
    "linear": None,
    "gelu": gelu,
    "gelu_exact": gelu_exact,
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "swish": swish,
}


def get_activation(activation_string):
  """Maps an activation name to its function (None for "linear").

  Args:
    activation_string: one of "linear", "gelu", "gelu_exact", "relu", "tanh",
      "swish"; a function passes through unchanged.

  Returns:
    The activation function, or None for the identity.

  Raises:
    ValueError: the name is not known.
  """
  if not isinstance(activation_string, six.string_types):
    return activation_string
  name = activation_string.lower()
  if not name:
    return None
  if name not in _ACTIVATIONS:
    raise ValueError("unknown activation %r (known: %s)" %
                     (activation_string, ", ".join(sorted(_ACTIVATIONS))))
  return _ACTIVATIONS[name]


def dropout(input_tensor, dropout_prob):
  """Drops with probability `dropout_prob` (a rate, not a keep probability).

  Kept elements are scaled by 1 / (1 - rate). Each element draws 16 random
  bits rather than the 32-bit float of `tf.nn.dropout`: half the random
  numbers, which are most of dropout's cost on CPU. The rate is then
  round(rate * 65536) / 65536 (0.1 becomes 0.1000061). Where the last axis is
  odd or unknown, each element draws a float instead. The random numbers come
  from a stateless generator seeded by `dropout_seed`: every mask is a
  function of (--seed, the dropout site, the global step).
  """
  if dropout_prob is None or dropout_prob == 0.0:
    return input_tensor
  if not 0.0 < dropout_prob < 1.0:
    raise ValueError("dropout rate must be in [0, 1), got %r" % dropout_prob)
  with tf.name_scope("dropout"):
    seed = dropout_seed()
    shape = get_shape_list(input_tensor)
    width = input_tensor.shape[-1]
    (replica, replicas) = replica_position()

    def draw(random_shape, **kwargs):
      """Stateless randoms of `random_shape`; under tf.distribute, this
      replica's rows of the global batch's draw, so N replicas drop exactly
      what one device would drop on the whole batch."""
      if replicas == 1:
        return tf.random.stateless_uniform(random_shape, seed, **kwargs)
      rows = random_shape[0]
      draws = tf.random.stateless_uniform(
          [rows * replicas] + random_shape[1:], seed, **kwargs)
      return draws[replica * rows:(replica + 1) * rows]

    if width is None or int(width) % 2:
      # Drawn in float32 whatever the compute dtype: a bfloat16 uniform has
      # 7 bits (rate 0.1 would drop 13/128) and other values than float32's,
      # so bfloat16 would train with other masks than float32 on a seed.
      uniform = draw(shape, dtype=tf.float32)
      return _scaled_where_kept(input_tensor, uniform >= dropout_prob,
                                1.0 / (1.0 - dropout_prob))
    # One int32 per two elements, split into two uint16 halves.
    bits = draw(shape[:-1] + [int(width) // 2], minval=None, maxval=None,
                dtype=tf.int32)
    bits = tf.reshape(tf.bitcast(bits, tf.uint16), shape)
    threshold = int(round(dropout_prob * 65536))
    return _scaled_where_kept(input_tensor, bits >= threshold,
                              65536.0 / (65536 - threshold))


def _scaled_where_kept(input_tensor, kept, scale):
  """input * kept * scale. In bfloat16 the product is taken in float32 and
  rounded once: 1 / 0.9 as a bfloat16 constant is 1.109375, and every
  dropout would shrink what it keeps by 0.16%, compounding over the layers
  of training (not of evaluation, which drops nothing)."""
  # In float32 both casts of the input are the input itself (no op).
  return tf.cast(tf.cast(input_tensor, tf.float32) *
                 (tf.cast(kept, tf.float32) * scale), input_tensor.dtype)


def replica_position():
  """(this replica's index, replicas in sync): (0, 1) outside tf.distribute."""
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return (0, 1)
  return (context.replica_id_in_sync_group, context.num_replicas_in_sync)


def dropout_seed():
  """The seed pair of one dropout site's stateless randoms: [site, step].

  `site` hashes the graph seed (--seed) and the site's unique name scope;
  `step` is the global step. A run resumed from a checkpoint then draws
  exactly the masks an uninterrupted run draws from that step on, which a
  stateful random op (restarted with the process) would not. A model built
  with no global step (outside training) seeds from a stateful op, itself
  fixed by the graph seed.
  """
  global_step = tf.train.get_global_step()
  if global_step is None:
    return tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
  graph = tf.get_default_graph()
  # tf.distribute builds replica k > 0 under a "replica_k/" scope: the site
  # is the same dropout for every replica.
  scope = re.sub(r"^replica_\d+/", "", graph.get_name_scope())
  site = zlib.crc32(("%s|%s" % (graph.seed, scope))
                    .encode("utf-8")) & 0x7FFFFFFF
  return tf.stack([tf.constant(site, dtype=tf.int64),
                   tf.cast(global_step, tf.int64)])


def layer_norm(input_tensor, epsilon=1e-12, name="LayerNorm", hooks=None):
  """LayerNorm over the last axis, with Google BERT's `LayerNorm/{beta,gamma}`.

  Computed in float32 whatever the input's dtype, and returned in the input's
  dtype: in bfloat16 (8 bits of mantissa) the variance of a wide activation
  loses most of its digits, and 1e-12 is below float16's range. `hooks` may
  change its scale and shift (`GraphHooks.layer_norm`). A second call in the
  same scope uses the same variables (an adapter in AdapterHub's Pfeiffer
  order reads the sub-layer's own LayerNorm).
  """
  with tf.variable_scope(name, reuse=tf.AUTO_REUSE):
    width = input_tensor.shape[-1]

    def scale_and_shift(normalized):
      beta = tf.get_variable("beta", [width],
                             initializer=tf.zeros_initializer())
      gamma = tf.get_variable("gamma", [width],
                              initializer=tf.ones_initializer())
      return normalized * gamma + beta

    values = tf.cast(input_tensor, tf.float32)
    mean, variance = tf.nn.moments(values, axes=[-1], keepdims=True)
    normalized = (values - mean) * tf.math.rsqrt(variance + epsilon)
    if hooks is None:
      output = scale_and_shift(normalized)
    else:
      output = hooks.layer_norm(normalized, scale_and_shift)
    return tf.cast(output, input_tensor.dtype)


def add_and_norm(sublayer_output, residual, epsilon=1e-12, hooks=None):
  """LayerNorm(sublayer_output + residual), the sum taken in float32.

  Under mixed precision the sum of an adapter's near-identity output and the
  residual would otherwise be rounded to the compute dtype before the
  LayerNorm: bfloat16 keeps 8 bits, so an adapter's change under 1/256 of
  its input would vanish there. Returns the residual's dtype.
  """
  total = tf.cast(sublayer_output, tf.float32) + tf.cast(residual, tf.float32)
  return tf.cast(layer_norm(total, epsilon, hooks=hooks), residual.dtype)


def name_seeded_getter(getter, name, *args, **kwargs):
  """A variable-scope custom getter: unseeded truncated-normal initializers
  get a seed from the variable's name.

  TensorFlow seeds an op by its position in the graph, so the same variable
  would start elsewhere in a graph built another way (under tf.distribute,
  or with one more op before it). With this, a new variable's initial value
  is a function of the graph seed (--seed) and its name alone: mirrored
  training starts from the weights one device starts from.
  """
  initializer = kwargs.get("initializer")
  if (isinstance(initializer, tf.truncated_normal_initializer) and
      initializer.seed is None):
    kwargs["initializer"] = tf.truncated_normal_initializer(
        mean=initializer.mean, stddev=initializer.stddev,
        seed=zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF,
        dtype=initializer.dtype)
  return getter(name, *args, **kwargs)


def create_initializer(initializer_range=0.02):
  return tf.truncated_normal_initializer(stddev=initializer_range)


def dense_layer(input_tensor, units, activation=None, initializer=None,
                name="dense", hook=None):
  """A fully connected layer on the last axis, with `kernel` and `bias` variables.

  The variables are float32 (so checkpoints are, whatever the precision);
  the layer computes in the input's dtype (bfloat16 or float16 under mixed
  precision), reading a cast copy of them.

  Args:
    input_tensor: float Tensor [..., width].
    units: output width.
    activation: (optional) function applied to the result.
    initializer: kernel initializer; the bias starts at zero.
    name: variable scope of the layer.
    hook: (optional) function (inputs, project) -> pre-activation output,
      where project(x) = x W + b is this layer: a tuning method's change to
      it (see `GraphHooks.projection`). Called inside the layer's scope.

  Returns:
    float Tensor [..., units].
  """
  with tf.variable_scope(name):
    width = input_tensor.shape[-1]
    kernel = tf.get_variable("kernel", [width, units], initializer=initializer)
    bias = tf.get_variable("bias", [units], initializer=tf.zeros_initializer())

    def project(inputs):
      weights = tf.cast(kernel, inputs.dtype)
      if inputs.shape.ndims == 2:
        result = tf.matmul(inputs, weights)
      else:
        result = tf.tensordot(inputs, weights, axes=[[-1], [0]])
      return tf.nn.bias_add(result, tf.cast(bias, inputs.dtype))

    output = project(input_tensor) if hook is None else hook(input_tensor,
                                                              project)
    if activation is not None:
      output = activation(output)
    return output


def embedding_lookup(input_ids, vocab_size, embedding_size=128,
                     initializer_range=0.02,
                     word_embedding_name="word_embeddings"):
  """Looks up word embeddings.

  Args:
    input_ids: int32 Tensor [batch, seq].
    vocab_size: rows of the embedding table.
    embedding_size: width of the embeddings.
    initializer_range: stddev of the table's initializer.
    word_embedding_name: variable name of the table.

  Returns:
    (float Tensor [batch, seq, embedding_size], table [vocab_size, embedding_size]).
  """
  embedding_table = tf.get_variable(
      name=word_embedding_name,
      shape=[vocab_size, embedding_size],
      initializer=create_initializer(initializer_range))
  output = tf.gather(embedding_table, input_ids)
  return (output, embedding_table)


def embedding_postprocessor(input_tensor, token_type_ids, token_type_vocab_size,
                            max_position_embeddings, initializer_range,
                            dropout_prob, layer_norm_eps=1e-12, hooks=None):
  """Adds segment and position embeddings, then LayerNorm and dropout.

  Args:
    input_tensor: float Tensor [batch, seq, hidden] of word embeddings.
    token_type_ids: int32 Tensor [batch, seq].
    token_type_vocab_size: rows of the segment embedding table.
    max_position_embeddings: rows of the position table; seq must not exceed it.
    initializer_range: stddev of the tables' initializer.
    dropout_prob: dropout rate on the result.
    layer_norm_eps: LayerNorm epsilon.
    hooks: (optional) `GraphHooks`: the first token's position
      (`position_offset`: 0, or after a tuning method's own positions, as
      prefix tuning in PEFT; an int32 Tensor [batch] of each row's where rows
      differ) and the LayerNorm (`layer_norm`).

  Returns:
    float Tensor [batch, seq, hidden].
  """
  input_shape = get_shape_list(input_tensor, expected_rank=3)
  batch_size, seq_length, width = input_shape[0], input_shape[1], input_shape[2]
  position_offset = hooks.position_offset() if hooks is not None else 0

  token_type_table = tf.get_variable(
      name="token_type_embeddings",
      shape=[token_type_vocab_size, width],
      initializer=create_initializer(initializer_range))
  # A one-hot matmul: the table is tiny, and this is faster than a gather on TPU.
  flat_token_type_ids = tf.reshape(token_type_ids, [-1])
  one_hot_ids = tf.one_hot(flat_token_type_ids, depth=token_type_vocab_size)
  token_type_embeddings = tf.matmul(one_hot_ids, token_type_table)
  output = input_tensor + tf.reshape(token_type_embeddings,
                                     [batch_size, seq_length, width])

  full_position_embeddings = tf.get_variable(
      name="position_embeddings",
      shape=[max_position_embeddings, width],
      initializer=create_initializer(initializer_range))
  if isinstance(position_offset, tf.Tensor):
    # Each row's own offset [batch] (rows of several tasks in one batch; see
    # adapter_bert/routing.py), or one set at run time [] (an ablation's
    # switches): positions [batch, seq] or [seq].
    positions = tf.expand_dims(position_offset, -1) + tf.range(seq_length)
    output += tf.gather(full_position_embeddings, positions)
  else:
    if (isinstance(seq_length, int) and
        seq_length + position_offset > max_position_embeddings):
      raise ValueError(
          "sequence length %d%s is above max_position_embeddings %d" % (
              seq_length, " + %d positions of the tuning method" %
              position_offset if position_offset else "",
              max_position_embeddings))
    # [seq, hidden], broadcast over the batch.
    position_embeddings = tf.slice(full_position_embeddings,
                                   [position_offset, 0], [seq_length, -1])
    output += tf.expand_dims(position_embeddings, 0)

  return dropout(layer_norm(output, layer_norm_eps, hooks=hooks),
                 dropout_prob)


def create_attention_mask_from_input_mask(from_tensor, to_mask):
  """[batch, from_seq, to_seq] float mask: 1 where a query may attend to a key.

  Args:
    from_tensor: Tensor [batch, from_seq, ...] (only its shape is used).
    to_mask: int32 Tensor [batch, to_seq]; 1 for real tokens.

  Returns:
    float32 Tensor [batch, from_seq, to_seq].
  """
  from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
  to_shape = get_shape_list(to_mask, expected_rank=2)
  to_mask = tf.cast(tf.reshape(to_mask, [to_shape[0], 1, to_shape[1]]),
                    tf.float32)
  # Padded queries attend too; their outputs are never read.
  broadcast_ones = tf.ones(shape=[from_shape[0], from_shape[1], 1],
                           dtype=tf.float32)
  return broadcast_ones * to_mask


def attention_layer(from_tensor, to_tensor, attention_mask, config, shape,
                    hooks, layer):
  """Multi-headed scaled dot-product attention ("self" when from == to).

  Args:
    from_tensor: float Tensor [batch * from_seq, width].
    to_tensor: float Tensor [batch * to_seq, width].
    attention_mask: float32 Tensor [batch, from_seq, to_seq] or [batch, 1,
      to_seq] (the same keys for every query) of 0/1, or None.
    config: `BertConfig`: heads, dropout rate on the attention probabilities,
      initializer range.
    shape: (B, F, T): the batch size, the query and the key length.
    hooks: `GraphHooks` (the query, key and value projections, the keys and
      values).
    layer: the encoder layer index, for the hooks.

  Returns:
    float Tensor [batch * from_seq, N * H].
  """
  (batch_size, from_seq_length, to_seq_length) = shape
  num_heads = config.num_attention_heads
  size_per_head = config.hidden_size // num_heads

  def split_heads(tensor, seq_length):
    # [B * S, N * H] -> [B, N, S, H]
    tensor = tf.reshape(tensor, [batch_size, seq_length, num_heads,
                                 size_per_head])
    return tf.transpose(tensor, [0, 2, 1, 3])

  def projection(inputs, name):
    return dense_layer(inputs, config.hidden_size,
                       initializer=create_initializer(config.initializer_range),
                       name=name, hook=hooks.projection_hook(layer, name))

  query = split_heads(projection(from_tensor, "query"), from_seq_length)
  key = split_heads(projection(to_tensor, "key"), to_seq_length)
  value = split_heads(projection(to_tensor, "value"), to_seq_length)
  # Prefix tuning prepends keys and values here (and extends the mask).
  (key, value, attention_mask) = hooks.keys_values(layer, key, value,
                                                   attention_mask)

  # [B, N, F, T]. The scores leave the matmul in the compute dtype; the
  # mask and softmax work in float32 (exp() of a float16 score overflows at
  # 11.1, and a bfloat16 sum of many small probabilities drifts).
  attention_scores = tf.matmul(query, key, transpose_b=True)
  attention_scores = tf.cast(attention_scores, tf.float32)
  attention_scores *= 1.0 / math.sqrt(float(size_per_head))
  if attention_mask is not None:
    # [B, 1, F or 1, T]. Masked keys get -10000 before the softmax: exp() of that is
    # 0 in float32, and unlike -inf it cannot make a fully masked row NaN.
    adder = (1.0 - tf.expand_dims(attention_mask, axis=1)) * -10000.0
    attention_scores += adder
  attention_probs = tf.cast(tf.nn.softmax(attention_scores), value.dtype)
  attention_probs = dropout(attention_probs,
                            config.attention_probs_dropout_prob)

  context = tf.matmul(attention_probs, value)  # [B, N, F, H]
  context = tf.transpose(context, [0, 2, 1, 3])  # [B, F, N, H]
  return tf.reshape(context, [batch_size * from_seq_length,
                              config.hidden_size])


def transformer_model(input_tensor, attention_mask, config, hooks=None,
                      last_layer_first_token_only=False):
  """The post-LayerNorm Transformer encoder of BERT, with a method's hooks.

  Each layer: self-attention -> dense -> dropout -> [hook] -> add & LayerNorm,
  then intermediate dense + activation -> dense -> dropout -> [hook] ->
  add & LayerNorm. The sub-layer hooks sit exactly where Houlsby et al.
  (2019) put adapters: after the sub-layer's dropout, before its residual add.

  Args:
    input_tensor: float Tensor [batch, seq, hidden], in the compute dtype.
    attention_mask: float32 Tensor [batch, seq, seq] or [batch, 1, seq] of 0/1,
      or None.
    config: `BertConfig` (its dropout rates are used as given).
    hooks: (optional) `GraphHooks`; None: plain BERT.
    last_layer_first_token_only: the last layer computes position 0 alone
      (its keys and values still come from every position); its output is
      then [batch, 1, hidden]. For a classifier that reads only [CLS].

  Returns:
    List of float Tensors [batch, seq, hidden], one per layer; each is the
    input of the layer above it.
  """
  if config.hidden_size % config.num_attention_heads != 0:
    raise ValueError("hidden_size %d is not a multiple of num_attention_heads %d"
                     % (config.hidden_size, config.num_attention_heads))
  hooks = hooks or GraphHooks()
  input_shape = get_shape_list(input_tensor, expected_rank=3)
  batch_size, seq_length = input_shape[0], input_shape[1]

  # The encoder works on [batch * seq, hidden] matrices: cheaper reshapes on TPU.
  prev_output = reshape_to_matrix(input_tensor)
  all_layer_outputs = []
  for layer_idx in range(config.num_hidden_layers):
    with tf.variable_scope("layer_%d" % layer_idx):
      layer_input = prev_output  # [batch * seq, hidden]
      # Queries: every position, or only position 0 in a first-token-only
      # last layer. Whatever comes after attention is per position, so the
      # rest of the layer then runs on [batch, hidden] alone.
      from_seq_length = seq_length
      query_input = layer_input
      if (last_layer_first_token_only and
          layer_idx == config.num_hidden_layers - 1):
        from_seq_length = 1
        query_input = tf.reshape(
            layer_input, [batch_size, seq_length, config.hidden_size])[:, 0]
      layer_output = transformer_layer(
          query_input, layer_input, attention_mask, config,
          (batch_size, from_seq_length, seq_length), hooks, layer_idx)
      all_layer_outputs.append(tf.reshape(
          layer_output, [batch_size, from_seq_length, config.hidden_size]))
      # The next layer reads the returned tensor (a reshape costs no copy),
      # so a session may feed a layer's output and run only the layers above
      # it (`session_predictor`'s ablation of every span).
      prev_output = reshape_to_matrix(all_layer_outputs[-1])
  return all_layer_outputs


def transformer_layer(query_input, layer_input, attention_mask, config, shape,
                      hooks, layer):
  """One encoder layer (inside its `layer_N` scope).

  Args:
    query_input: float Tensor [batch * from_seq, hidden]: the positions that
      query (every one, or [CLS] alone).
    layer_input: float Tensor [batch * seq, hidden]: the keys and values.
    attention_mask, config, shape, hooks, layer: as `attention_layer`.

  Returns:
    float Tensor [batch * from_seq, hidden].
  """
  initializer = create_initializer(config.initializer_range)

  def sublayer_output(inputs, outputs, name):
    """Dropout, the method's hook, then add & LayerNorm."""
    outputs = dropout(outputs, config.hidden_dropout_prob)
    outputs = hooks.sublayer_output(layer, name, inputs, outputs)
    return add_and_norm(outputs, inputs, config.layer_norm_eps, hooks)

  with tf.variable_scope("attention"):
    with tf.variable_scope("self"):
      attention_output = attention_layer(query_input, layer_input,
                                         attention_mask, config, shape,
                                         hooks, layer)
    with tf.variable_scope("output"):
      attention_output = dense_layer(
          attention_output, config.hidden_size, initializer=initializer,
          hook=hooks.projection_hook(layer, "attention_output"))
      attention_output = sublayer_output(query_input, attention_output,
                                         "attention")

  with tf.variable_scope("intermediate"):
    intermediate_output = dense_layer(
        attention_output, config.intermediate_size,
        activation=get_activation(config.hidden_act), initializer=initializer,
        hook=hooks.projection_hook(layer, "intermediate"))

  with tf.variable_scope("output"):
    layer_output = dense_layer(intermediate_output, config.hidden_size,
                               initializer=initializer,
                               hook=hooks.projection_hook(layer, "output"))
    return sublayer_output(attention_output, layer_output, "ffn")


def get_shape_list(tensor, expected_rank=None, name=None):
  """The shape of a tensor: Python ints where static, scalar Tensors where not.

  Args:
    tensor: a tf.Tensor.
    expected_rank: (optional) int or list of ints; a different rank raises.
    name: (optional) name of the tensor for the error message.

  Returns:
    A list with one entry per dimension.
  """
  if expected_rank is not None:
    assert_rank(tensor, expected_rank, name)
  shape = tensor.shape.as_list()
  dynamic_shape = None
  for (index, dim) in enumerate(shape):
    if dim is None:
      if dynamic_shape is None:
        dynamic_shape = tf.shape(tensor)
      shape[index] = dynamic_shape[index]
  return shape


def reshape_to_matrix(input_tensor):
  """[..., width] -> [rows, width]."""
  ndims = input_tensor.shape.ndims
  if ndims < 2:
    raise ValueError("need a tensor of rank >= 2, got shape %s" %
                     input_tensor.shape)
  if ndims == 2:
    return input_tensor
  width = input_tensor.shape[-1]
  return tf.reshape(input_tensor, [-1, width])


def reshape_from_matrix(output_tensor, orig_shape_list):
  """[rows, width] -> orig_shape_list[:-1] + [width]."""
  if len(orig_shape_list) == 2:
    return output_tensor
  output_shape = get_shape_list(output_tensor)
  return tf.reshape(output_tensor, orig_shape_list[0:-1] + [output_shape[-1]])


def assert_rank(tensor, expected_rank, name=None):
  """Raises ValueError if the tensor's static rank is not the expected one."""
  if name is None:
    name = tensor.name
  expected = expected_rank if isinstance(expected_rank, (list, tuple)) else [
      expected_rank]
  actual_rank = tensor.shape.ndims
  if actual_rank not in expected:
    raise ValueError("tensor %s has rank %d, expected %s" %
                     (name, actual_rank, expected_rank))
