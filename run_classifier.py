# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Fine-tunes BERT with adapters on a GLUE-style classification task.

Flags and outputs are those of Google BERT's run_classifier.py (the adapter-bert
README command runs as is), plus the adapter flags. With the default
`--tuning_mode=adapters` only the adapters, every LayerNorm and the classifier
head train; the pre-trained weights stay bit-identical.
"""

import collections
import hashlib
import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

import adapters
import bundles
import glue
import modeling
import optimization
import tokenization

FLAGS = flags.FLAGS

## Required parameters
flags.DEFINE_string(
    "data_dir", None,
    "The input data dir. Should contain the .tsv files (or other data files) "
    "for the task.")
flags.DEFINE_string(
    "bert_config_file", None,
    "The config json file corresponding to the pre-trained BERT model.")
flags.DEFINE_string("task_name", None, "The name of the task to train.")
flags.DEFINE_string("vocab_file", None,
                    "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_string(
    "output_dir", None,
    "The output directory where the model checkpoints will be written.")

## Other parameters
flags.DEFINE_string(
    "init_checkpoint", None,
    "Initial checkpoint (usually from a pre-trained BERT model).")
flags.DEFINE_bool(
    "do_lower_case", True,
    "Whether to lower case the input text. Should be True for uncased "
    "models and False for cased models.")
flags.DEFINE_integer(
    "max_seq_length", 128,
    "The maximum total input sequence length after WordPiece tokenization. "
    "Longer sequences are truncated, shorter ones padded.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_bool("do_predict", False,
                  "Whether to run the model in inference mode on the test set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predict.")
flags.DEFINE_float("learning_rate", 5e-5,
                   "The initial learning rate for Adam. Adapters usually "
                   "want 1e-4 to 1e-3.")
flags.DEFINE_float("num_train_epochs", 3.0,
                   "Total number of training epochs to perform.")
flags.DEFINE_float(
    "warmup_proportion", 0.1,
    "Proportion of training to perform linear learning rate warmup for.")
flags.DEFINE_integer("save_checkpoints_steps", 1000,
                     "How often to save the model checkpoint.")
flags.DEFINE_integer("iterations_per_loop", 1000,
                     "How many steps to make in each estimator call.")
flags.DEFINE_bool("use_tpu", False, "Whether to use TPU or GPU/CPU.")
flags.DEFINE_string(
    "tpu_name", None,
    "The Cloud TPU to use for training. This should be either the name "
    "used when creating the Cloud TPU, or a grpc://ip.address.of.tpu:8470 url.")
flags.DEFINE_string(
    "tpu_zone", None,
    "[Optional] GCE zone where the Cloud TPU is located in. If not "
    "specified, we will attempt to automatically detect it from metadata.")
flags.DEFINE_string(
    "gcp_project", None,
    "[Optional] Project name for the Cloud TPU-enabled project. If not "
    "specified, we will attempt to automatically detect it from metadata.")
flags.DEFINE_string("master", None, "[Optional] TensorFlow master URL.")
flags.DEFINE_integer(
    "num_tpu_cores", 8,
    "Only used if `use_tpu` is True. Total number of TPU cores to use.")

## Adapter parameters
flags.DEFINE_integer("adapter_size", 64, "Bottleneck width m of each adapter.")
flags.DEFINE_string("adapter_activation", "gelu",
                    "Adapter nonlinearity: gelu, gelu_exact, relu, tanh, "
                    "swish or linear.")
flags.DEFINE_float("adapter_init_scale", 1e-3,
                   "Stddev of the adapters' truncated-normal weight init; "
                   "small, so the model starts as the pre-trained one.")
flags.DEFINE_enum("adapter_placement", "both", list(adapters.PLACEMENTS),
                  "Where adapters go: after attention and after the "
                  "feed-forward block (both), only one of them, or none.")
flags.DEFINE_enum("tuning_mode", "adapters", sorted(adapters.TUNING_MODES),
                  "What trains: adapters (adapters + LayerNorms + head) or "
                  "full (every weight: plain fine-tuning).")
flags.DEFINE_integer("seed", 12345,
                     "Random seed for initialisation, dropout and shuffling.")
flags.DEFINE_string(
    "adapter_bundle", None,
    "Evaluate or predict with this adapter bundle on the --init_checkpoint "
    "backbone, with no training checkpoint. Its settings (adapters, "
    "max_seq_length, do_lower_case) replace the flags'.")
flags.DEFINE_string(
    "export_adapter_bundle", None,
    "Where training writes its adapter bundle (default: "
    "<output_dir>/adapter_bundle).")
flags.DEFINE_string(
    "export_from_checkpoint", None,
    "Write the adapter bundle of this existing checkpoint (a folder or a "
    "prefix) to --export_adapter_bundle and stop; the task and adapter flags "
    "must describe how it was trained.")
flags.DEFINE_string("xnli_language", "zh",
                    "XNLI only: the language of the training, dev and test "
                    "rows.")
flags.DEFINE_integer("log_every_n_steps", 100,
                     "How often training logs loss, steps/s and examples/s.")

InputError = glue.InputError

# Bumped whenever the feature format changes, so old caches are not reused.
FEATURE_CACHE_VERSION = 2


class PaddingInputExample(object):
  """A fake example that fills the last batch on TPU; its weight is 0."""


class InputFeatures(object):
  """One example as model inputs."""

  def __init__(self, input_ids, input_mask, segment_ids, label_id,
               is_real_example=True):
    self.input_ids = input_ids
    self.input_mask = input_mask
    self.segment_ids = segment_ids
    self.label_id = label_id  # a class id, or a score for regression
    self.is_real_example = is_real_example


def convert_single_example(ex_index, example, label_list, max_seq_length,
                           tokenizer):
  """Turns one InputExample into InputFeatures.

  Layout: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, segment ids 0 for the
  first part and 1 for the second, then zero padding to max_seq_length.
  """
  if isinstance(example, PaddingInputExample):
    return InputFeatures(
        input_ids=[0] * max_seq_length,
        input_mask=[0] * max_seq_length,
        segment_ids=[0] * max_seq_length,
        label_id=0,
        is_real_example=False)

  tokens_a = tokenizer.tokenize(example.text_a)
  tokens_b = tokenizer.tokenize(example.text_b) if example.text_b else None
  if tokens_b:
    _truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)  # CLS, SEP, SEP
  elif len(tokens_a) > max_seq_length - 2:
    tokens_a = tokens_a[0:(max_seq_length - 2)]

  tokens = ["[CLS]"] + tokens_a + ["[SEP]"]
  segment_ids = [0] * len(tokens)
  if tokens_b:
    tokens += tokens_b + ["[SEP]"]
    segment_ids += [1] * (len(tokens_b) + 1)
  input_ids = tokenizer.convert_tokens_to_ids(tokens)
  input_mask = [1] * len(input_ids)

  padding = max_seq_length - len(input_ids)
  input_ids += [0] * padding
  input_mask += [0] * padding
  segment_ids += [0] * padding

  # A class id, or the score itself for regression (empty label_list).
  label_id = (label_list.index(example.label) if label_list else
              float(example.label))
  if ex_index < 3:
    logging.info("*** Example %s ***", example.guid)
    logging.info("tokens: %s", " ".join(tokens))
    logging.info("input_ids: %s", " ".join(str(x) for x in input_ids))
    logging.info("label: %s (id = %s)", example.label, label_id)

  return InputFeatures(input_ids=input_ids, input_mask=input_mask,
                       segment_ids=segment_ids, label_id=label_id,
                       is_real_example=True)


def _truncate_seq_pair(tokens_a, tokens_b, max_length):
  """Truncates a pair in place, one token at a time from the longer one.

  This keeps more of the shorter text than cutting both proportionally would,
  which suits pairs where one side is much shorter.
  """
  while len(tokens_a) + len(tokens_b) > max_length:
    longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
    longer.pop()


def feature_cache_key(input_file, vocab_file, do_lower_case, max_seq_length,
                      task_name, label_list, num_padding):
  """A key for everything that shapes a cached TFRecord of features.

  The contents of the input file and the vocab are hashed (not their names or
  times), so an edited file or a changed flag never reuses stale features.
  """
  hasher = hashlib.sha256()
  description = {
      "version": FEATURE_CACHE_VERSION,
      "input_sha256": _file_sha256(input_file),
      "vocab_sha256": _file_sha256(vocab_file),
      "do_lower_case": bool(do_lower_case),
      "max_seq_length": int(max_seq_length),
      "task_name": task_name.lower(),
      "labels": list(label_list),
      "num_padding": int(num_padding),
  }
  hasher.update(json.dumps(description, sort_keys=True).encode("utf-8"))
  return hasher.hexdigest()[:16]


def _file_sha256(path):
  hasher = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    while True:
      block = f.read(1 << 20)
      if not block:
        break
      hasher.update(block)
  return hasher.hexdigest()


def file_based_convert_examples_to_features(examples, label_list,
                                            max_seq_length, tokenizer,
                                            output_file):
  """Writes the features of `examples` to a TFRecord, atomically."""
  temp_file = output_file + ".tmp-%d" % os.getpid()
  writer = tf.io.TFRecordWriter(temp_file)
  try:
    for (ex_index, example) in enumerate(examples):
      if ex_index % 10000 == 0:
        logging.info("Writing example %d of %d", ex_index, len(examples))
      feature = convert_single_example(ex_index, example, label_list,
                                       max_seq_length, tokenizer)
      writer.write(_feature_to_example(feature).SerializeToString())
    writer.close()
    tf.io.gfile.rename(temp_file, output_file, overwrite=True)
  except BaseException:
    writer.close()
    if tf.io.gfile.exists(temp_file):
      tf.io.gfile.remove(temp_file)
    raise


def _feature_to_example(feature):
  def int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

  def float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

  features = collections.OrderedDict()
  features["input_ids"] = int_feature(feature.input_ids)
  features["input_mask"] = int_feature(feature.input_mask)
  features["segment_ids"] = int_feature(feature.segment_ids)
  # Float for both kinds of task: class ids are exact in float32.
  features["label_ids"] = float_feature([feature.label_id])
  features["is_real_example"] = int_feature([int(feature.is_real_example)])
  return tf.train.Example(features=tf.train.Features(feature=features))


def cached_features_file(split, examples, label_list, tokenizer, input_file):
  """Writes (or reuses) the TFRecord of one split; returns its path."""
  num_padding = sum(isinstance(e, PaddingInputExample) for e in examples)
  key = feature_cache_key(input_file, FLAGS.vocab_file, FLAGS.do_lower_case,
                          FLAGS.max_seq_length, FLAGS.task_name, label_list,
                          num_padding)
  path = os.path.join(FLAGS.output_dir, "%s-%s.tf_record" % (split, key))
  if tf.io.gfile.exists(path):
    logging.info("Reusing cached features %s", path)
  else:
    file_based_convert_examples_to_features(examples, label_list,
                                            FLAGS.max_seq_length, tokenizer,
                                            path)
  return path


def file_based_input_fn_builder(input_file, seq_length, is_training,
                                drop_remainder, seed=None):
  """An `input_fn` for TPUEstimator reading a features TFRecord."""
  name_to_features = {
      "input_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
      "input_mask": tf.io.FixedLenFeature([seq_length], tf.int64),
      "segment_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
      "label_ids": tf.io.FixedLenFeature([], tf.float32),
      "is_real_example": tf.io.FixedLenFeature([], tf.int64),
  }

  def decode_record(record):
    example = tf.io.parse_single_example(record, name_to_features)
    # TPUs only take int32; int64 is what tf.Example stores.
    return {name: (t if t.dtype == tf.float32 else tf.cast(t, tf.int32))
            for (name, t) in example.items()}

  def input_fn(params):
    batch_size = params["batch_size"]
    d = tf.data.TFRecordDataset(input_file)
    if is_training:
      d = d.repeat()
      d = d.shuffle(buffer_size=10000, seed=seed)
    d = d.map(decode_record, num_parallel_calls=tf.data.AUTOTUNE)
    d = d.batch(batch_size, drop_remainder=drop_remainder)
    return d.prefetch(tf.data.AUTOTUNE)

  return input_fn


def create_model(bert_config, is_training, input_ids, input_mask, segment_ids,
                 labels, num_labels, adapter_config):
  """BERT + a linear head on the pooled output.

  With num_labels > 1 the head is a softmax classifier with cross-entropy
  loss; with num_labels == 1 (STS-B) it is a regressor with squared error.

  Args:
    labels: float Tensor [batch]: class ids, or target scores.

  Returns:
    dict: loss (scalar), per_example_loss [batch], logits [batch, num_labels],
    predictions [batch] (class id or score), and for classification
    probabilities [batch, num_labels].
  """
  model = modeling.BertModel(
      config=bert_config,
      is_training=is_training,
      input_ids=input_ids,
      input_mask=input_mask,
      token_type_ids=segment_ids,
      adapter_config=adapter_config)

  output_layer = model.get_pooled_output()  # [batch, hidden]
  hidden_size = output_layer.shape[-1]

  # Top-level names, as BERT's classifier: fine-tuned BERT checkpoints load.
  output_weights = tf.get_variable(
      "output_weights", [num_labels, hidden_size],
      initializer=tf.truncated_normal_initializer(stddev=0.02))
  output_bias = tf.get_variable(
      "output_bias", [num_labels], initializer=tf.zeros_initializer())

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
    return outputs


def model_fn_builder(bert_config, num_labels, init_checkpoints, learning_rate,
                     num_train_steps, num_warmup_steps, use_tpu, adapter_config,
                     tuning_mode):
  """Returns the `model_fn` closure for TPUEstimator (TRAIN and PREDICT).

  Evaluation runs through PREDICT as well: the metrics GLUE asks for (MCC,
  F1, Spearman...) are computed exactly, over the whole dev set, by
  `evaluate_split` from the per-example outputs.
  """

  def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    outputs = create_model(
        bert_config, is_training, features["input_ids"],
        features["input_mask"], features["segment_ids"],
        features["label_ids"], num_labels, adapter_config)

    all_variables = tf.trainable_variables()
    scaffold_fn = None
    maps = checkpoint_assignment_maps(all_variables, init_checkpoints)

    def init_from_checkpoints():
      for (checkpoint, assignment_map) in maps:
        if assignment_map:
          tf.train.init_from_checkpoint(checkpoint, assignment_map)

    if use_tpu:
      def tpu_scaffold():
        init_from_checkpoints()
        return tf.train.Scaffold()
      scaffold_fn = tpu_scaffold
    else:
      init_from_checkpoints()

    if mode == tf.estimator.ModeKeys.TRAIN:
      trained = adapters.trained_variables(all_variables, tuning_mode)
      train_op = optimization.create_optimizer(
          outputs["loss"], learning_rate, num_train_steps, num_warmup_steps,
          use_tpu, trained)
      # On TPU the loss lives on the device; TPUEstimator logs its own rates.
      hooks = [] if use_tpu else [
          ThroughputHook(outputs["loss"], params["batch_size"],
                         FLAGS.log_every_n_steps)]
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=outputs["loss"], train_op=train_op,
          training_hooks=hooks, scaffold_fn=scaffold_fn)

    if mode == tf.estimator.ModeKeys.PREDICT:
      predictions = {name: outputs[name] for name in
                     ("predictions", "per_example_loss", "probabilities")
                     if name in outputs}
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, predictions=predictions, scaffold_fn=scaffold_fn)

    raise ValueError("mode %s is not supported; evaluation runs through "
                     "PREDICT" % mode)

  return model_fn


def checkpoint_assignment_maps(variables, checkpoints):
  """Which checkpoint initialises which variable.

  Each variable comes from the first of `checkpoints` that holds it (an
  adapter bundle before the backbone); variables none holds (adapters and head
  when training starts) keep their initializers. Shapes were checked before
  (`check_init_checkpoint`).

  Returns:
    list of (checkpoint, {name: name}) pairs, for tf.train.init_from_checkpoint.
  """
  remaining = [adapters.variable_name(v) for v in variables]
  maps = []
  for checkpoint in checkpoints:
    in_checkpoint = dict(tf.train.list_variables(checkpoint))
    assignment_map = collections.OrderedDict(
        (name, name) for name in remaining if name in in_checkpoint)
    remaining = [name for name in remaining if name not in assignment_map]
    logging.info("Initialised %d of %d variables from %s", len(assignment_map),
                 len(variables), checkpoint)
    maps.append((checkpoint, assignment_map))
  return maps


def describe_model(bert_config, adapter_config, num_labels, max_seq_length):
  """Builds the model once in a scratch graph; returns {name: shape}."""
  with tf.Graph().as_default():
    input_ids = tf.zeros([1, max_seq_length], dtype=tf.int32)
    create_model(bert_config, False, input_ids, input_ids, input_ids,
                 tf.zeros([1], dtype=tf.float32), num_labels, adapter_config)
    return collections.OrderedDict(
        (adapters.variable_name(v), v.shape.as_list())
        for v in tf.global_variables())


def check_init_checkpoint(init_checkpoint, model_shapes):
  """Refuses a checkpoint that does not fit the model built from the config."""
  try:
    in_checkpoint = dict(tf.train.list_variables(init_checkpoint))
  except (tf.errors.OpError, ValueError) as e:
    raise InputError("--init_checkpoint=%s: cannot read it (%s)" %
                     (init_checkpoint, str(e).splitlines()[0]))
  shared = [name for name in model_shapes if name in in_checkpoint]
  if not any(name.startswith("bert/") for name in shared):
    raise InputError("--init_checkpoint=%s: holds no BERT variable "
                     "(bert/...)" % init_checkpoint)
  for name in shared:
    if list(in_checkpoint[name]) != list(model_shapes[name]):
      raise InputError(
          "--bert_config_file=%s does not match --init_checkpoint=%s: %s has "
          "shape %s in the checkpoint but %s in the model" %
          (FLAGS.bert_config_file, init_checkpoint, name, in_checkpoint[name],
           model_shapes[name]))
  missing = [name for name in model_shapes if name.startswith("bert/") and
             "/adapters/" not in name and name not in in_checkpoint]
  if missing:
    raise InputError("--init_checkpoint=%s lacks %d pre-trained variables "
                     "the model needs, e.g. %s" %
                     (init_checkpoint, len(missing), missing[0]))


def log_parameter_counts(model_shapes, tuning_mode):
  """Logs trained vs total parameter counts, by kind."""
  def size(shape):
    return int(np.prod(shape)) if shape else 1

  total = sum(size(s) for s in model_shapes.values())
  trained = {name: size(s) for (name, s) in model_shapes.items()
             if adapters.is_trained(name, tuning_mode)}
  num_trained = sum(trained.values())
  by_kind = collections.OrderedDict([("adapters", 0), ("LayerNorm", 0),
                                     ("head", 0), ("other", 0)])
  for (name, count) in trained.items():
    if "/adapters/" in name:
      by_kind["adapters"] += count
    elif "/LayerNorm/" in name:
      by_kind["LayerNorm"] += count
    elif name.startswith("output_"):
      by_kind["head"] += count
    else:
      by_kind["other"] += count
  logging.info(
      "Parameters: %s trained of %s total (%.2f%%), tuning_mode=%s [%s]",
      "{:,}".format(num_trained), "{:,}".format(total),
      100.0 * num_trained / total, tuning_mode,
      ", ".join("%s %s" % (k, "{:,}".format(v)) for (k, v) in by_kind.items()
                if v))
  return num_trained, total


class ThroughputHook(tf.estimator.SessionRunHook):
  """Logs loss, steps/s and examples/s every `every_n_steps` steps."""

  def __init__(self, loss, batch_size, every_n_steps):
    self._loss = loss
    self._batch_size = batch_size
    self._every_n_steps = max(1, every_n_steps)

  def begin(self):
    self._global_step = tf.train.get_global_step()
    self._last_time = None
    self._last_step = None

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs([self._global_step, self._loss])

  def after_run(self, run_context, run_values):
    (step, loss) = run_values.results
    now = time.time()
    if self._last_time is None:
      (self._last_time, self._last_step) = (now, step)
      return
    if step - self._last_step >= self._every_n_steps:
      steps_per_sec = (step - self._last_step) / (now - self._last_time)
      logging.info("step %d: loss = %.4f, %.2f steps/s, %.1f examples/s",
                   step, loss, steps_per_sec, steps_per_sec * self._batch_size)
      (self._last_time, self._last_step) = (now, step)


def validate_flags():
  """Checks flags before any work; raises InputError naming the flag."""
  runs_model = FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict
  required = ["bert_config_file", "task_name", "vocab_file", "output_dir"]
  if runs_model:
    required.append("data_dir")
  for name in required:
    if not getattr(FLAGS, name):
      raise InputError("--%s is required" % name)
  if not (runs_model or FLAGS.export_from_checkpoint):
    raise InputError("at least one of --do_train, --do_eval or --do_predict "
                     "must be true")
  if FLAGS.adapter_bundle and (FLAGS.do_train or FLAGS.export_from_checkpoint):
    raise InputError("--adapter_bundle is for --do_eval/--do_predict; to "
                     "train more, keep training in the bundle's --output_dir")
  if FLAGS.adapter_bundle and not FLAGS.init_checkpoint:
    raise InputError("--adapter_bundle needs --init_checkpoint: the backbone "
                     "it goes on")
  for name in ("max_seq_length", "train_batch_size", "eval_batch_size",
               "predict_batch_size", "save_checkpoints_steps",
               "iterations_per_loop", "log_every_n_steps"):
    if getattr(FLAGS, name) <= 0:
      raise InputError("--%s must be positive, got %d" %
                       (name, getattr(FLAGS, name)))
  if FLAGS.max_seq_length < 3:
    raise InputError("--max_seq_length must be at least 3 ([CLS] x [SEP])")
  if FLAGS.num_train_epochs <= 0 and FLAGS.do_train:
    raise InputError("--num_train_epochs must be positive")
  if not 0.0 <= FLAGS.warmup_proportion <= 1.0:
    raise InputError("--warmup_proportion must be in [0, 1]")
  if FLAGS.learning_rate <= 0:
    raise InputError("--learning_rate must be positive")
  for name in ("vocab_file", "bert_config_file"):
    if not tf.io.gfile.exists(getattr(FLAGS, name)):
      raise InputError("--%s=%s: no such file" % (name, getattr(FLAGS, name)))
  if runs_model and not tf.io.gfile.isdir(FLAGS.data_dir):
    raise InputError("--data_dir=%s: no such directory" % FLAGS.data_dir)


def build_adapter_config():
  if FLAGS.adapter_placement == "none":
    return None
  try:
    return adapters.AdapterConfig(size=FLAGS.adapter_size,
                                  activation=FLAGS.adapter_activation,
                                  init_scale=FLAGS.adapter_init_scale,
                                  placement=FLAGS.adapter_placement)
  except ValueError as e:
    raise InputError("--%s" % e)


def make_estimator(bert_config, num_labels, adapter_config, num_train_steps=None,
                   num_warmup_steps=None, predict_batch_size=None,
                   model_dir=None, init_checkpoints=None):
  """A TPUEstimator; on CPU/GPU it runs as a normal Estimator.

  Args:
    predict_batch_size: evaluation predicts too, so it passes
      --eval_batch_size here; default --predict_batch_size.
    model_dir: default --output_dir.
    init_checkpoints: checkpoints that initialise the variables, first one
      first (see `checkpoint_assignment_maps`); default [--init_checkpoint].
  """
  if init_checkpoints is None:
    init_checkpoints = [FLAGS.init_checkpoint] if FLAGS.init_checkpoint else []
  tpu_cluster_resolver = None
  if FLAGS.use_tpu and FLAGS.tpu_name:
    tpu_cluster_resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        FLAGS.tpu_name, zone=FLAGS.tpu_zone, project=FLAGS.gcp_project)
  run_config = tf.estimator.tpu.RunConfig(
      cluster=tpu_cluster_resolver,
      master=FLAGS.master,
      model_dir=model_dir or FLAGS.output_dir,
      tf_random_seed=FLAGS.seed,
      save_checkpoints_steps=FLAGS.save_checkpoints_steps,
      # On CPU/GPU our ThroughputHook logs instead: TPUEstimator's own rate
      # hooks would fire every step there.
      log_step_count_steps=FLAGS.log_every_n_steps if FLAGS.use_tpu else None,
      tpu_config=tf.estimator.tpu.TPUConfig(
          iterations_per_loop=FLAGS.iterations_per_loop,
          num_shards=FLAGS.num_tpu_cores,
          per_host_input_for_training=(
              tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2)))
  model_fn = model_fn_builder(
      bert_config=bert_config,
      num_labels=num_labels,
      init_checkpoints=init_checkpoints,
      learning_rate=FLAGS.learning_rate,
      num_train_steps=num_train_steps,
      num_warmup_steps=num_warmup_steps,
      use_tpu=FLAGS.use_tpu,
      adapter_config=adapter_config,
      tuning_mode=FLAGS.tuning_mode)
  return tf.estimator.tpu.TPUEstimator(
      use_tpu=FLAGS.use_tpu,
      model_fn=model_fn,
      config=run_config,
      train_batch_size=FLAGS.train_batch_size,
      predict_batch_size=predict_batch_size or FLAGS.predict_batch_size)


def pad_for_tpu(examples, batch_size, use_tpu):
  """On TPU every batch is full: pads with weight-0 examples. Else a copy."""
  padded = list(examples)
  while use_tpu and len(padded) % batch_size != 0:
    padded.append(PaddingInputExample())
  return padded


def predict_examples(estimator, split_name, examples, input_file, batch_size,
                     label_list, tokenizer):
  """Runs the model over `examples`; returns one output dict per example.

  On TPU the examples are padded to full batches; the padding's outputs are
  cut here, so callers see exactly one output per real example.
  """
  num_actual_examples = len(examples)
  padded = pad_for_tpu(examples, batch_size, FLAGS.use_tpu)
  features_file = cached_features_file(split_name, padded, label_list,
                                       tokenizer, input_file)
  logging.info("***** Running %s on %s *****", split_name, input_file)
  logging.info("  Num examples = %d (%d actual, %d padding)", len(padded),
               num_actual_examples, len(padded) - num_actual_examples)
  input_fn = file_based_input_fn_builder(
      input_file=features_file, seq_length=FLAGS.max_seq_length,
      is_training=False, drop_remainder=FLAGS.use_tpu)
  outputs = []
  for output in estimator.predict(input_fn=input_fn):
    if len(outputs) == num_actual_examples:
      break
    outputs.append(output)
  if len(outputs) != num_actual_examples:
    raise RuntimeError("got %d outputs for %d examples" %
                       (len(outputs), num_actual_examples))
  return outputs


def evaluate_split(estimator, task, split, tokenizer, global_step):
  """Official metrics of `task` on one dev split, plus losses and the step.

  Returns:
    dict: eval_<metric> for each metric of the task, eval_loss (mean
    per-example loss over the real examples), loss (the same, the name
    BERT's eval_results.txt has), global_step.
  """
  examples = task.read_examples(FLAGS.data_dir, split)
  if not examples:
    raise InputError("%s: no examples" % task.path(FLAGS.data_dir, split))
  label_list = task.get_labels()
  outputs = predict_examples(estimator, "eval-%s" % split.name, examples,
                             task.path(FLAGS.data_dir, split),
                             FLAGS.eval_batch_size, label_list, tokenizer)
  predictions = np.array([o["predictions"] for o in outputs])
  results = task.metrics(predictions, np.array(task.label_values(examples)))
  results["eval_loss"] = float(np.mean([o["per_example_loss"]
                                        for o in outputs]))
  results["loss"] = results["eval_loss"]
  results["global_step"] = int(global_step)
  return results


def format_eval_results(results):
  """BERT's eval_results.txt: sorted `key = value` lines, float32 printing."""
  lines = []
  for key in sorted(results):
    value = results[key]
    text = str(value) if isinstance(value, int) else str(np.float32(value))
    lines.append("%s = %s\n" % (key, text))
  return "".join(lines)


def result_file_name(stem, split, first, extension):
  """eval_results.txt for a task's first split, eval_results_<split>.txt else."""
  if first:
    return "%s.%s" % (stem, extension)
  return "%s_%s.%s" % (stem, split.name, extension)


def optional_splits(task, splits):
  """The first split is required; later ones only if their file exists."""
  present = list(splits[:1])
  for split in splits[1:]:
    path = task.path(FLAGS.data_dir, split)
    if tf.io.gfile.exists(path):
      present.append(split)
    else:
      logging.warning("%s not found: skipping %s %s", path, task.name,
                      split.name)
  return present


def run(unused_argv):
  """The whole job; every user error surfaces as InputError."""
  tf.logging.set_verbosity(tf.logging.INFO)
  validate_flags()
  bundle = apply_adapter_bundle() if FLAGS.adapter_bundle else None

  try:
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case,
                                                  FLAGS.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    tokenizer = tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file,
                                           do_lower_case=FLAGS.do_lower_case)
    # [CLS]/[SEP]/[UNK] missing would otherwise fail mid-way through features.
    tokenizer.check_special_tokens()
  except ValueError as e:
    raise InputError(str(e))
  if FLAGS.max_seq_length > bert_config.max_position_embeddings:
    raise InputError(
        "--max_seq_length=%d is above max_position_embeddings=%d of "
        "--bert_config_file=%s" % (FLAGS.max_seq_length,
                                   bert_config.max_position_embeddings,
                                   FLAGS.bert_config_file))
  if len(tokenizer.vocab) != bert_config.vocab_size:
    raise InputError("--vocab_file=%s has %d tokens but --bert_config_file=%s "
                     "says vocab_size=%d" % (FLAGS.vocab_file,
                                             len(tokenizer.vocab),
                                             FLAGS.bert_config_file,
                                             bert_config.vocab_size))

  task = glue.get_task(FLAGS.task_name)
  if task.key == "xnli":
    task.language = FLAGS.xnli_language
  label_list = task.get_labels()
  adapter_config = build_adapter_config()

  model_shapes = describe_model(bert_config, adapter_config, task.num_labels,
                                FLAGS.max_seq_length)
  if FLAGS.init_checkpoint:
    check_init_checkpoint(FLAGS.init_checkpoint, model_shapes)
  elif FLAGS.do_train and FLAGS.tuning_mode != "full":
    logging.warning("No --init_checkpoint: training adapters on a randomly "
                    "initialised, frozen BERT.")
  log_parameter_counts(model_shapes, FLAGS.tuning_mode)

  if FLAGS.export_from_checkpoint:
    export_adapter_bundle(FLAGS.export_from_checkpoint, task, bert_config,
                          adapter_config, model_shapes)
    if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
      return

  tf.io.gfile.makedirs(FLAGS.output_dir)
  # Where eval/predict find their weights: the training checkpoints in
  # --output_dir, or a bundle on the backbone in a fresh model_dir of its own
  # (so no stale checkpoint there can shadow the bundle).
  model_dir = FLAGS.output_dir
  init_checkpoints = None
  if bundle:
    try:
      bundles.check_backbone(bundle, FLAGS.init_checkpoint)
    except ValueError as e:
      raise InputError(str(e))
    model_dir = os.path.join(FLAGS.output_dir, "bundle_model")
    if tf.io.gfile.exists(model_dir):
      tf.io.gfile.rmtree(model_dir)
    init_checkpoints = [bundle.checkpoint, FLAGS.init_checkpoint]
  elif not FLAGS.do_train and not tf.train.latest_checkpoint(FLAGS.output_dir):
    raise InputError("--output_dir=%s holds no trained checkpoint to evaluate "
                     "or predict with; add --do_train=true, or give "
                     "--adapter_bundle" % FLAGS.output_dir)

  if FLAGS.do_train:
    train_path = task.path(FLAGS.data_dir, task.train)
    train_examples = task.get_train_examples(FLAGS.data_dir)
    if not train_examples:
      raise InputError("%s: no training examples" % train_path)
    num_train_steps = max(1, int(len(train_examples) / FLAGS.train_batch_size *
                                 FLAGS.num_train_epochs))
    num_warmup_steps = int(num_train_steps * FLAGS.warmup_proportion)
    estimator = make_estimator(bert_config, task.num_labels, adapter_config,
                               num_train_steps, num_warmup_steps)
    train_file = cached_features_file("train", train_examples, label_list,
                                      tokenizer, train_path)
    logging.info("***** Running training *****")
    logging.info("  Num examples = %d", len(train_examples))
    logging.info("  Batch size = %d", FLAGS.train_batch_size)
    logging.info("  Num steps = %d", num_train_steps)
    train_input_fn = file_based_input_fn_builder(
        input_file=train_file, seq_length=FLAGS.max_seq_length,
        is_training=True, drop_remainder=True, seed=FLAGS.seed)
    start = time.time()
    estimator.train(input_fn=train_input_fn, max_steps=num_train_steps)
    logging.info("Training took %.1f s", time.time() - start)
    if FLAGS.tuning_mode != "full" or FLAGS.export_adapter_bundle:
      export_adapter_bundle(FLAGS.output_dir, task, bert_config,
                            adapter_config, model_shapes)
    else:
      # A full bundle is the whole model again, and no backbone takes it.
      logging.info("tuning_mode=full: the checkpoint is the model; no adapter "
                   "bundle written (--export_adapter_bundle writes one)")

  if FLAGS.do_eval:
    estimator = make_estimator(bert_config, task.num_labels, adapter_config,
                               predict_batch_size=FLAGS.eval_batch_size,
                               model_dir=model_dir,
                               init_checkpoints=init_checkpoints)
    global_step = (bundle.metadata["global_step"] if bundle else
                   estimator.get_variable_value("global_step"))
    splits = optional_splits(task, task.dev)
    for split in splits:
      results = evaluate_split(estimator, task, split, tokenizer, global_step)
      text = format_eval_results(results)
      logging.info("***** Eval results: %s %s *****", task.name, split.name)
      for line in text.splitlines():
        logging.info("  %s", line)
      glue.write_atomically(
          os.path.join(FLAGS.output_dir, result_file_name(
              "eval_results", split, split is splits[0], "txt")), text)

  if FLAGS.do_predict:
    estimator = make_estimator(bert_config, task.num_labels, adapter_config,
                               model_dir=model_dir,
                               init_checkpoints=init_checkpoints)
    splits = optional_splits(task, task.test)
    for split in splits:
      examples = task.read_examples(FLAGS.data_dir, split)
      outputs = predict_examples(estimator, "predict-%s" % split.name,
                                 examples, task.path(FLAGS.data_dir, split),
                                 FLAGS.predict_batch_size, label_list,
                                 tokenizer)
      if task.is_regression:
        rows = ["%s\n" % o["predictions"] for o in outputs]
      else:
        rows = ["\t".join(str(p) for p in o["probabilities"]) + "\n"
                for o in outputs]
      glue.write_atomically(
          os.path.join(FLAGS.output_dir, result_file_name(
              "test_results", split, split is splits[0], "tsv")), "".join(rows))
      if task.has_submission:
        submission = os.path.join(FLAGS.output_dir, split.name + ".tsv")
        glue.write_submission(submission, task,
                              [e.index for e in examples],
                              [o["predictions"] for o in outputs])
        logging.info("Wrote %s (GLUE server format)", submission)

  if bundle and tf.io.gfile.exists(model_dir):
    tf.io.gfile.rmtree(model_dir)


def apply_adapter_bundle():
  """Reads --adapter_bundle; the settings it was trained with replace flags'.

  Returns:
    the `bundles.Bundle`.
  """
  try:
    bundle = bundles.read_bundle(FLAGS.adapter_bundle)
  except ValueError as e:
    raise InputError(str(e))
  if (glue.normalize_task_name(bundle.task_name) !=
      glue.normalize_task_name(FLAGS.task_name)):
    raise InputError("--adapter_bundle=%s was trained for %s, not "
                     "--task_name=%s" % (FLAGS.adapter_bundle,
                                         bundle.task_name, FLAGS.task_name))
  metadata = bundle.metadata
  settings = {"max_seq_length": metadata["max_seq_length"],
              "do_lower_case": metadata["do_lower_case"],
              "tuning_mode": metadata["tuning_mode"]}
  adapter = metadata.get("adapter")
  if adapter:
    settings.update(adapter_size=adapter["size"],
                    adapter_activation=adapter["activation"],
                    adapter_init_scale=adapter["init_scale"],
                    adapter_placement=adapter["placement"])
  else:
    settings["adapter_placement"] = "none"
  for (name, value) in sorted(settings.items()):
    if FLAGS[name].present and FLAGS[name].value != value:
      logging.warning("--%s=%s ignored: adapter bundle %s was trained with %s",
                      name, FLAGS[name].value, FLAGS.adapter_bundle, value)
    setattr(FLAGS, name, value)
  logging.info("Adapter bundle %s: %s, trained %d steps, %s parameters",
               FLAGS.adapter_bundle, bundle.task_name, metadata["global_step"],
               "{:,}".format(metadata["num_parameters"]))
  return bundle


def export_adapter_bundle(checkpoint, task, bert_config, adapter_config,
                          model_shapes):
  """Writes the adapter bundle of `checkpoint` and logs what it saves."""
  bundle_dir = (FLAGS.export_adapter_bundle or
                os.path.join(FLAGS.output_dir, "adapter_bundle"))
  metadata = {
      "task_name": task.name,
      "labels": task.get_labels(),
      "max_seq_length": FLAGS.max_seq_length,
      "do_lower_case": FLAGS.do_lower_case,
      "adapter": adapter_config.to_dict() if adapter_config else None,
      "bert_config": bert_config.to_dict(),
  }
  try:
    info = bundles.export_bundle(checkpoint, bundle_dir, FLAGS.tuning_mode,
                                 metadata)
  except (ValueError, tf.errors.OpError) as e:
    raise InputError("cannot export an adapter bundle from %s: %s" %
                     (checkpoint, " ".join(str(e).split())[:300]))
  # A fine-tuned BERT without adapters, in float32; Adam adds two slots each.
  model_bytes = 4 * sum(int(np.prod(shape)) for (name, shape) in
                        model_shapes.items() if "/adapters/" not in name)
  logging.info(
      "Adapter bundle %s: %s on disk (%s parameters). A full fine-tuned "
      "checkpoint of this model: %s, or %s with Adam state.", bundle_dir,
      human_bytes(info["bytes"]), "{:,}".format(info["num_parameters"]),
      human_bytes(model_bytes), human_bytes(3 * model_bytes))
  return info


def human_bytes(count):
  """1234567 -> "1.2 MB" (decimal units, as disk sizes are quoted)."""
  for (unit, size) in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
    if count >= size:
      return "%.1f %s" % (count / size, unit)
  return "%d B" % count


def main(argv):
  try:
    run(argv)
  except InputError as e:
    sys.stderr.write("run_classifier.py: error: %s\n" % e)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
