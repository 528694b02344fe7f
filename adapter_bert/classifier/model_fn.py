# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The model and its `model_fn`: BERT + a linear head (`create_model`), what
it holds (`describe_model`, `parameter_summary`), and the TPUEstimator
`model_fn` that trains it or predicts with it."""

import collections
import dataclasses

import tensorflow.compat.v1 as tf

from adapter_bert.classifier import checkpoints
from adapter_bert.classifier import hooks
from adapter_bert.methods import base
import modeling
import optimization

# --precision: (the encoder's compute dtype, the initial dynamic loss scale
# or None). Variables, checkpoints and bundles are float32 in every case.
# float16's 5 exponent bits underflow small gradients, hence loss scaling
# (2**15 is TensorFlow's default start); bfloat16 has float32's exponent.
PRECISIONS = {
    "float32": (tf.float32, None),
    "mixed_bfloat16": (tf.bfloat16, None),
    "mixed_float16": (tf.float16, 2.0 ** 15),
}


@dataclasses.dataclass(frozen=True)
class Model(object):
  """What the graph is: the backbone's config, the head's labels, the tuning
  method (what the graph adds, what trains, the layers switched off) and the
  encoder's arithmetic (a key of `PRECISIONS`)."""

  bert_config: modeling.BertConfig
  num_labels: int
  method: base.TuningMethod
  precision: str = "float32"


@dataclasses.dataclass(frozen=True)
class Training(object):
  """How the model trains: the learning-rate schedule, the divergence guard
  of `optimization.create_optimizer` (None: none), the global batch (for the
  examples/s of the progress line) and how often that line is logged."""

  learning_rate: float
  num_train_steps: int
  num_warmup_steps: int
  max_loss: float = None
  batch_size: int = None
  adam_bias_correction: bool = False
  log_every_n_steps: int = 100


# ---------------------------------------------------------------- the model


def create_model(bert_config, is_training, features, num_labels, method=None,
                 compute_dtype=tf.float32):
  """BERT + a linear head on the pooled output.

  With num_labels > 1 the head is a softmax classifier with cross-entropy
  loss; with num_labels == 1 (STS-B) it is a regressor with squared error.

  Args:
    features: the model's inputs, as the input_fn gives them: int32 Tensors
      "input_ids", "input_mask", "segment_ids" [batch, seq] and "label_ids"
      [batch] (class ids, or target scores; absent: zeros, for serving).
    method: the `TuningMethod` whose hooks change BERT (its additions, and
      the layers where they are switched off), or None for plain BERT.
    compute_dtype: the encoder's dtype (`modeling.BertModel`); the head,
      its softmax and the loss are float32 whatever it is.

  Returns:
    dict: loss (scalar), per_example_loss [batch], logits [batch, num_labels],
    predictions [batch] (class id or score), for classification
    probabilities [batch, num_labels], and encoder_layers (each layer's
    output [batch, seq, hidden], in the compute dtype; the last layer's is
    [batch, 1, hidden]).
  """
  with tf.variable_scope(tf.get_variable_scope(),
                         custom_getter=modeling.name_seeded_getter):
    return _create_model(bert_config, is_training, features, num_labels,
                         method, compute_dtype)


def _create_model(bert_config, is_training, features, num_labels, method,
                  compute_dtype):
  input_ids = features["input_ids"]
  labels = features.get("label_ids")
  if labels is None:
    labels = tf.zeros_like(input_ids[:, 0], dtype=tf.float32)
  labels = tf.cast(labels, tf.float32)
  model = modeling.BertModel(
      config=bert_config,
      is_training=is_training,
      input_ids=input_ids,
      input_mask=features["input_mask"],
      token_type_ids=features["segment_ids"],
      hooks=method,
      pooled_only=True,  # the head reads [CLS] alone
      compute_dtype=compute_dtype)

  encoder_layers = model.get_all_encoder_layers()
  output_layer = tf.cast(model.get_pooled_output(), tf.float32)  # [batch, hidden]
  hidden_size = output_layer.shape[-1]

  # Top-level names, as BERT's classifier: fine-tuned BERT checkpoints load.
  (weights_name, bias_name) = base.HEAD_VARIABLES
  output_weights = tf.get_variable(
      weights_name, [num_labels, hidden_size],
      initializer=tf.truncated_normal_initializer(stddev=0.02))
  output_bias = tf.get_variable(
      bias_name, [num_labels], initializer=tf.zeros_initializer())

  with tf.variable_scope("loss"):
    if is_training:
      output_layer = modeling.dropout(output_layer, 0.1)
    logits = tf.matmul(output_layer, output_weights, transpose_b=True)
    logits = tf.nn.bias_add(logits, output_bias)  # [batch, num_labels]
    outputs = {"logits": logits}
    if num_labels == 1:
      scores = tf.squeeze(logits, axis=-1)  # [batch]
      outputs["predictions"] = scores
      outputs["per_example_loss"] = tf.square(scores - labels)
    else:
      outputs["probabilities"] = tf.nn.softmax(logits, axis=-1)
      outputs["predictions"] = tf.argmax(logits, axis=-1, output_type=tf.int32)
      log_probs = tf.nn.log_softmax(logits, axis=-1)
      one_hot_labels = tf.one_hot(tf.cast(labels, tf.int32), depth=num_labels,
                                  dtype=tf.float32)
      outputs["per_example_loss"] = -tf.reduce_sum(one_hot_labels * log_probs,
                                                   axis=-1)
    outputs["loss"] = tf.reduce_mean(outputs["per_example_loss"])
    outputs["encoder_layers"] = encoder_layers
    return outputs


def describe_model(bert_config, method, num_labels, max_seq_length):
  """Builds the model once in a scratch graph; returns {name: shape}."""
  with tf.Graph().as_default():
    input_ids = tf.zeros([1, max_seq_length], dtype=tf.int32)
    create_model(bert_config, False, {"input_ids": input_ids,
                                      "input_mask": input_ids,
                                      "segment_ids": input_ids},
                 num_labels, method)
    return collections.OrderedDict(
        (base.variable_name(v), v.shape.as_list())
        for v in tf.global_variables())


def parameter_summary(model_shapes, method):
  """The parameter log line: trained and frozen counts, naming every group.

  Example (BERT-base, adapters of size 64):
    Parameters: 2,419,202 trained of 111,863,042 total (2.16%),
    tuning_mode=adapters [adapters 2,379,264, LayerNorm 38,400, head 1,538];
    frozen [embeddings 23,440,896, attention 28,348,416, ...]
  """
  (trained, frozen) = base.parameter_counts(model_shapes, method)
  num_trained = sum(trained.values())
  total = num_trained + sum(frozen.values())

  def groups(counts):
    return ", ".join("%s %s" % (k, "{:,}".format(v)) for (k, v) in
                     counts.items()) or "none"

  return ("Parameters: %s trained of %s total (%.2f%%), tuning_mode=%s [%s]; "
          "frozen [%s]" % ("{:,}".format(num_trained), "{:,}".format(total),
                           100.0 * num_trained / total, method.name,
                           groups(trained), groups(frozen)))


def model_fn_builder(model, init_checkpoints, use_tpu=False, training=None,
                     compact_checkpoints=False, keep_checkpoint_max=5):
  """Returns the `model_fn` closure for TPUEstimator (TRAIN and PREDICT).

  Evaluation runs through PREDICT as well: the metrics GLUE asks for (MCC,
  F1, Spearman...) are computed exactly, over the whole dev set, by
  `evaluation.evaluate_split` from the per-example outputs.

  Args:
    model: the `Model`: what the graph holds, and what trains.
    init_checkpoints: checkpoints that initialise the variables, first one
      first (see `checkpoints.checkpoint_assignment_maps`).
    use_tpu: build for TPUs (cross-shard gradients, the host call).
    training: the `Training` of TRAIN mode (PREDICT needs none).
    compact_checkpoints: checkpoints hold only what training changes (see
      `hooks.compact_scaffold`); the frozen weights come from
      `init_checkpoints` at every session start.
    keep_checkpoint_max: how many compact checkpoints to keep.
  """
  (compute_dtype, loss_scale) = PRECISIONS[model.precision]

  def model_fn(features, labels, mode, params, config=None):  # pylint: disable=unused-argument
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    outputs = create_model(model.bert_config, is_training, features,
                           model.num_labels, model.method, compute_dtype)
    all_variables = tf.trainable_variables()
    scaffold_fn = _scaffold_builder(
        checkpoints.checkpoint_assignment_maps(all_variables,
                                               init_checkpoints),
        model.method, compact_checkpoints, keep_checkpoint_max)
    if mode == tf.estimator.ModeKeys.TRAIN:
      if training is None:
        raise ValueError("model_fn_builder: TRAIN mode needs `training`")
      trained = model.method.trained_variables(all_variables)
      return _train_spec(outputs["loss"], trained, training, use_tpu,
                         loss_scale, params.get("batch_size"), config,
                         scaffold_fn)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return _predict_spec(outputs, features, scaffold_fn)
    raise ValueError("mode %s is not supported; evaluation runs through "
                     "PREDICT" % mode)

  return model_fn


def _scaffold_builder(maps, method, compact_checkpoints, keep_checkpoint_max):
  """The `scaffold_fn` of TPUEstimatorSpec: initialises the variables from
  their checkpoints (`maps`), then builds the scaffold."""

  def scaffold_fn():
    # Runs on the host (TPU) or right after model_fn (CPU/GPU); it must
    # come before the scaffold's initializer ops are built, because
    # init_from_checkpoint replaces the variables' initializers.
    for (checkpoint, assignment_map) in maps:
      if assignment_map:
        tf.train.init_from_checkpoint(checkpoint, assignment_map)
    if compact_checkpoints:
      return hooks.compact_scaffold(method, keep_checkpoint_max)
    if optimization.replica_count() > 1:
      return tf.train.Scaffold(local_init_op=tf.group(
          tf.train.Scaffold.default_local_init_op(), hooks.replica_sync_op()))
    return tf.train.Scaffold()

  return scaffold_fn


def _train_spec(loss, trained, training, use_tpu, loss_scale, batch_size,
                config, scaffold_fn):
  """TRAIN mode's TPUEstimatorSpec: the train op of `trained`, the progress
  hook (CPU/GPU) or the host call (TPU).

  Args:
    batch_size: the batch TPUEstimator gives (None under tf.distribute,
      whose params have none: then `training.batch_size`).
    config: the Estimator's RunConfig (None: a test's bare call).
  """
  train_op = optimization.create_optimizer(
      loss, training.learning_rate, training.num_train_steps,
      training.num_warmup_steps, use_tpu, trained,
      guards=optimization.StepGuards(max_loss=training.max_loss,
                                     loss_scale=loss_scale),
      bias_correction=training.adam_bias_correction)
  replicas = optimization.replica_count()
  logged_loss = loss
  if replicas > 1:
    # The throughput log reads the global batch's mean loss, reduced in the
    # graph; every replica's side of that all-reduce must run each step (the
    # hook fetches one replica's): else the others wait forever.
    logged_loss = tf.distribute.get_replica_context().all_reduce(
        tf.distribute.ReduceOp.MEAN, loss)
    train_op = tf.group(train_op, logged_loss)
  current_rate = optimization.learning_rate_schedule(
      tf.train.get_global_step(), training.learning_rate,
      training.num_train_steps, training.num_warmup_steps)
  # The chief writes the TensorBoard scalars.
  summary_dir = (config.model_dir if config is not None and
                 config.is_chief else None)
  # On TPU the loss lives on the device: the host call carries it out (and
  # TPUEstimator logs its own rates).
  training_hooks = [] if use_tpu else [
      hooks.ThroughputHook(logged_loss, current_rate,
                           batch_size or training.batch_size,
                           training.log_every_n_steps,
                           training.num_train_steps, summary_dir)]
  host_call = None
  if use_tpu and summary_dir:
    host_call = hooks.tpu_host_call(summary_dir, loss=loss,
                                    learning_rate=current_rate)
  if replicas > 1:
    # The Estimator sums the replicas' losses for its own reports; each
    # replica's share makes that sum the global batch's mean loss.
    loss = loss / replicas
  return tf.estimator.tpu.TPUEstimatorSpec(
      mode=tf.estimator.ModeKeys.TRAIN, loss=loss, train_op=train_op,
      host_call=host_call, training_hooks=training_hooks,
      scaffold_fn=scaffold_fn)


def _predict_spec(outputs, features, scaffold_fn):
  """PREDICT mode's TPUEstimatorSpec: the per-example outputs, and which
  example each is (files may be sorted by length)."""
  predictions = {name: outputs[name] for name in
                 ("predictions", "per_example_loss", "probabilities")
                 if name in outputs}
  for name in ("example_index", "is_real_example"):
    predictions[name] = features[name]
  return tf.estimator.tpu.TPUEstimatorSpec(
      mode=tf.estimator.ModeKeys.PREDICT, predictions=predictions,
      scaffold_fn=scaffold_fn)
