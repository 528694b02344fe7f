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
flags.DEFINE_integer("log_every_n_steps", 100,
                     "How often training logs loss, steps/s and examples/s.")

# Bumped whenever the feature format changes, so old caches are not reused.
FEATURE_CACHE_VERSION = 1


class InputError(Exception):
  """Bad user input: printed as one line, exit code 1."""


class InputExample(object):
  """A single train/dev/test example: one or two texts and a label."""

  def __init__(self, guid, text_a, text_b=None, label=None):
    self.guid = guid
    self.text_a = text_a
    self.text_b = text_b
    self.label = label


class PaddingInputExample(object):
  """A fake example that fills the last batch on TPU; its weight is 0."""


class InputFeatures(object):
  """One example as model inputs."""

  def __init__(self, input_ids, input_mask, segment_ids, label_id,
               is_real_example=True):
    self.input_ids = input_ids
    self.input_mask = input_mask
    self.segment_ids = segment_ids
    self.label_id = label_id
    self.is_real_example = is_real_example


class DataProcessor(object):
  """Reads one task's TSV files into InputExamples.

  A subclass says which file each split lives in, whether it has a header,
  which columns hold the texts and the label, and the label strings.
  """

  train_file = "train.tsv"
  dev_file = "dev.tsv"
  test_file = "test.tsv"
  labels = None

  def get_train_examples(self, data_dir):
    return self._create_examples(self._read_split(data_dir, self.train_file),
                                 "train")

  def get_dev_examples(self, data_dir):
    return self._create_examples(self._read_split(data_dir, self.dev_file),
                                 "dev")

  def get_test_examples(self, data_dir):
    return self._create_examples(self._read_split(data_dir, self.test_file),
                                 "test")

  def get_labels(self):
    return list(self.labels)

  def split_file(self, data_dir, split):
    """The path of `split` ("train", "dev" or "test") under data_dir."""
    name = {"train": self.train_file, "dev": self.dev_file,
            "test": self.test_file}[split]
    return os.path.join(data_dir, name)

  def _read_split(self, data_dir, file_name):
    return read_tsv(os.path.join(data_dir, file_name))

  def _create_examples(self, rows, set_type):
    raise NotImplementedError()


def read_tsv(input_file):
  """Reads a GLUE TSV file as (path, line_number, columns) rows.

  GLUE files are not CSV-quoted: a `"` is text, so only tabs split.

  Raises:
    InputError: the file is missing or not UTF-8.
  """
  if not tf.io.gfile.exists(input_file):
    raise InputError("%s: no such file" % input_file)
  rows = []
  try:
    with tf.io.gfile.GFile(input_file, "rb") as f:
      data = f.read()
    text = data.decode("utf-8-sig")
  except (tf.errors.OpError, OSError) as e:
    raise InputError("%s: cannot read it (%s)" %
                     (input_file, str(e).splitlines()[0]))
  except UnicodeDecodeError as e:
    line_number = data[:e.start].count(b"\n") + 1
    raise InputError("%s:%d: not UTF-8 text" % (input_file, line_number))
  for (index, line) in enumerate(text.split("\n")):
    line = line.rstrip("\r")
    if not line:
      continue
    rows.append((input_file, index + 1, line.split("\t")))
  return rows


def column(row, index, what):
  """The `index`-th column of a row, or an InputError naming file and line."""
  (path, line_number, columns) = row
  if index >= len(columns) or -index > len(columns):
    raise InputError("%s:%d: expected at least %d tab-separated columns "
                     "(%s), found %d" % (path, line_number,
                                         index + 1 if index >= 0 else -index,
                                         what, len(columns)))
  return tokenization.convert_to_unicode(columns[index])


class GlueProcessor(DataProcessor):
  """A GLUE task described by its columns.

  Attributes:
    has_header: whether train/dev files start with a header line.
    text_a_column, text_b_column, label_column: column indices in train/dev
      (text_b_column None for single-sentence tasks).
    test_text_a_column, test_text_b_column: column indices in the test file,
      which always has a header and an `index` column first.
  """

  has_header = True
  text_a_column = None
  text_b_column = None
  label_column = None
  test_text_a_column = 1
  test_text_b_column = None

  def _create_examples(self, rows, set_type):
    is_test = set_type == "test"
    if is_test or self.has_header:
      rows = rows[1:]
    examples = []
    for (i, row) in enumerate(rows):
      guid = "%s-%d" % (set_type, i)
      if is_test:
        text_a = column(row, self.test_text_a_column, "text")
        text_b = (None if self.test_text_b_column is None else
                  column(row, self.test_text_b_column, "second text"))
        label = self.labels[0]
      else:
        text_a = column(row, self.text_a_column, "text")
        text_b = (None if self.text_b_column is None else
                  column(row, self.text_b_column, "second text"))
        label = column(row, self.label_column, "label")
        if label not in self.labels:
          raise InputError("%s:%d: label %r is not one of %s" %
                           (row[0], row[1], label, ", ".join(self.labels)))
      examples.append(InputExample(guid, text_a, text_b, label))
    return examples


class MrpcProcessor(GlueProcessor):
  """MRPC: `Quality, #1 ID, #2 ID, #1 String, #2 String`."""
  labels = ("0", "1")
  label_column = 0
  text_a_column = 3
  text_b_column = 4
  test_text_a_column = 3
  test_text_b_column = 4


class ColaProcessor(GlueProcessor):
  """CoLA: headerless `source, label, original label, sentence`."""
  labels = ("0", "1")
  has_header = False
  label_column = 1
  text_a_column = 3


class Sst2Processor(GlueProcessor):
  """SST-2: `sentence, label`; test: `index, sentence`."""
  labels = ("0", "1")
  text_a_column = 0
  label_column = 1


class RteProcessor(GlueProcessor):
  """RTE: `index, sentence1, sentence2, label`."""
  labels = ("entailment", "not_entailment")
  text_a_column = 1
  text_b_column = 2
  label_column = 3
  test_text_b_column = 2


class MnliProcessor(GlueProcessor):
  """MNLI (matched dev/test): sentence1/2 in columns 8/9, gold label last."""
  labels = ("contradiction", "entailment", "neutral")
  dev_file = "dev_matched.tsv"
  test_file = "test_matched.tsv"
  text_a_column = 8
  text_b_column = 9
  label_column = -1
  test_text_a_column = 8
  test_text_b_column = 9


PROCESSORS = {
    "cola": ColaProcessor,
    "mnli": MnliProcessor,
    "mrpc": MrpcProcessor,
    "rte": RteProcessor,
    "sst2": Sst2Processor,
}


def get_processor(task_name):
  """The processor of a task; names match case- and dash-insensitively."""
  key = "".join(c for c in (task_name or "").lower() if c.isalnum())
  if key not in PROCESSORS:
    raise InputError("--task_name=%s: unknown task (known: %s)" %
                     (task_name, ", ".join(sorted(PROCESSORS))))
  return PROCESSORS[key]()


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

  label_map = {label: i for (i, label) in enumerate(label_list)}
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

  if ex_index < 3:
    logging.info("*** Example %s ***", example.guid)
    logging.info("tokens: %s", " ".join(tokens))
    logging.info("input_ids: %s", " ".join(str(x) for x in input_ids))
    logging.info("label: %s (id = %d)", example.label, label_map[example.label])

  return InputFeatures(input_ids=input_ids, input_mask=input_mask,
                       segment_ids=segment_ids,
                       label_id=label_map[example.label],
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

  features = collections.OrderedDict()
  features["input_ids"] = int_feature(feature.input_ids)
  features["input_mask"] = int_feature(feature.input_mask)
  features["segment_ids"] = int_feature(feature.segment_ids)
  features["label_ids"] = int_feature([feature.label_id])
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
      "label_ids": tf.io.FixedLenFeature([], tf.int64),
      "is_real_example": tf.io.FixedLenFeature([], tf.int64),
  }

  def decode_record(record):
    example = tf.io.parse_single_example(record, name_to_features)
    # TPUs only take int32; int64 is what tf.Example stores.
    return {name: tf.cast(t, tf.int32) for (name, t) in example.items()}

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
  """BERT + a linear classifier on the pooled output.

  Returns:
    (loss, per_example_loss [batch], logits [batch, num_labels],
     probabilities [batch, num_labels]).
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
    probabilities = tf.nn.softmax(logits, axis=-1)
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    one_hot_labels = tf.one_hot(labels, depth=num_labels, dtype=tf.float32)
    per_example_loss = -tf.reduce_sum(one_hot_labels * log_probs, axis=-1)
    loss = tf.reduce_mean(per_example_loss)
    return (loss, per_example_loss, logits, probabilities)


def model_fn_builder(bert_config, num_labels, init_checkpoint, learning_rate,
                     num_train_steps, num_warmup_steps, use_tpu, adapter_config,
                     tuning_mode):
  """Returns the `model_fn` closure for TPUEstimator."""

  def model_fn(features, labels, mode, params):  # pylint: disable=unused-argument
    input_ids = features["input_ids"]
    input_mask = features["input_mask"]
    segment_ids = features["segment_ids"]
    label_ids = features["label_ids"]
    is_real_example = tf.cast(features["is_real_example"], tf.float32)
    is_training = mode == tf.estimator.ModeKeys.TRAIN

    (total_loss, per_example_loss, logits, probabilities) = create_model(
        bert_config, is_training, input_ids, input_mask, segment_ids,
        label_ids, num_labels, adapter_config)

    all_variables = tf.trainable_variables()
    scaffold_fn = None
    if init_checkpoint:
      assignment_map = checkpoint_assignment_map(all_variables, init_checkpoint)
      if use_tpu:
        def tpu_scaffold():
          tf.train.init_from_checkpoint(init_checkpoint, assignment_map)
          return tf.train.Scaffold()
        scaffold_fn = tpu_scaffold
      else:
        tf.train.init_from_checkpoint(init_checkpoint, assignment_map)

    if mode == tf.estimator.ModeKeys.TRAIN:
      trained = adapters.trained_variables(all_variables, tuning_mode)
      train_op = optimization.create_optimizer(
          total_loss, learning_rate, num_train_steps, num_warmup_steps, use_tpu,
          trained)
      # On TPU the loss lives on the device; TPUEstimator logs its own rates.
      hooks = [] if use_tpu else [
          ThroughputHook(total_loss, params["batch_size"],
                         FLAGS.log_every_n_steps)]
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=total_loss, train_op=train_op,
          training_hooks=hooks, scaffold_fn=scaffold_fn)

    if mode == tf.estimator.ModeKeys.EVAL:
      def metric_fn(per_example_loss, label_ids, logits, is_real_example):
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        accuracy = tf.metrics.accuracy(labels=label_ids,
                                       predictions=predictions,
                                       weights=is_real_example)
        loss = tf.metrics.mean(values=per_example_loss,
                               weights=is_real_example)
        return {"eval_accuracy": accuracy, "eval_loss": loss}

      eval_metrics = (metric_fn,
                      [per_example_loss, label_ids, logits, is_real_example])
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=total_loss, eval_metrics=eval_metrics,
          scaffold_fn=scaffold_fn)

    return tf.estimator.tpu.TPUEstimatorSpec(
        mode=mode, predictions={"probabilities": probabilities},
        scaffold_fn=scaffold_fn)

  return model_fn


def checkpoint_assignment_map(variables, init_checkpoint):
  """Maps every model variable present in the checkpoint to itself.

  Variables the checkpoint lacks (adapters, the head) keep their initializers.
  Shapes were checked before training started (`check_init_checkpoint`).
  """
  in_checkpoint = dict(tf.train.list_variables(init_checkpoint))
  assignment_map = collections.OrderedDict()
  for variable in variables:
    name = adapters.variable_name(variable)
    if name in in_checkpoint:
      assignment_map[name] = name
  logging.info("Initialised %d of %d variables from %s", len(assignment_map),
               len(variables), init_checkpoint)
  return assignment_map


def describe_model(bert_config, adapter_config, num_labels, max_seq_length):
  """Builds the model once in a scratch graph; returns {name: shape}."""
  with tf.Graph().as_default():
    input_ids = tf.zeros([1, max_seq_length], dtype=tf.int32)
    create_model(bert_config, False, input_ids, input_ids, input_ids,
                 tf.zeros([1], dtype=tf.int32), num_labels, adapter_config)
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


def write_atomically(path, text):
  temp_path = path + ".tmp-%d" % os.getpid()
  with tf.io.gfile.GFile(temp_path, "w") as writer:
    writer.write(text)
  tf.io.gfile.rename(temp_path, path, overwrite=True)


def validate_flags():
  """Checks flags before any work; raises InputError naming the flag."""
  for name in ("data_dir", "bert_config_file", "task_name", "vocab_file",
               "output_dir"):
    if not getattr(FLAGS, name):
      raise InputError("--%s is required" % name)
  if not (FLAGS.do_train or FLAGS.do_eval or FLAGS.do_predict):
    raise InputError("at least one of --do_train, --do_eval or --do_predict "
                     "must be true")
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
  if not tf.io.gfile.isdir(FLAGS.data_dir):
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


def make_estimator(bert_config, num_labels, adapter_config, num_train_steps,
                   num_warmup_steps):
  tpu_cluster_resolver = None
  if FLAGS.use_tpu and FLAGS.tpu_name:
    tpu_cluster_resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        FLAGS.tpu_name, zone=FLAGS.tpu_zone, project=FLAGS.gcp_project)
  run_config = tf.estimator.tpu.RunConfig(
      cluster=tpu_cluster_resolver,
      master=FLAGS.master,
      model_dir=FLAGS.output_dir,
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
      init_checkpoint=FLAGS.init_checkpoint,
      learning_rate=FLAGS.learning_rate,
      num_train_steps=num_train_steps,
      num_warmup_steps=num_warmup_steps,
      use_tpu=FLAGS.use_tpu,
      adapter_config=adapter_config,
      tuning_mode=FLAGS.tuning_mode)
  # On CPU/GPU TPUEstimator falls back to a normal Estimator.
  return tf.estimator.tpu.TPUEstimator(
      use_tpu=FLAGS.use_tpu,
      model_fn=model_fn,
      config=run_config,
      train_batch_size=FLAGS.train_batch_size,
      eval_batch_size=FLAGS.eval_batch_size,
      predict_batch_size=FLAGS.predict_batch_size)


def pad_for_tpu(examples, batch_size):
  """On TPU every batch is full: pad with weight-0 examples."""
  if not FLAGS.use_tpu:
    return list(examples)
  padded = list(examples)
  while len(padded) % batch_size != 0:
    padded.append(PaddingInputExample())
  return padded


def inference_input(split, examples, input_file, batch_size, label_list,
                    tokenizer):
  """Features and an input_fn for eval or predict.

  On TPU the examples are padded to full batches (padding has weight 0 in the
  metrics and is cut from predictions); elsewhere the last batch is short.

  Returns:
    (input_fn, steps (None off TPU), number of real examples).
  """
  num_actual_examples = len(examples)
  examples = pad_for_tpu(examples, batch_size)
  features_file = cached_features_file(split, examples, label_list, tokenizer,
                                       input_file)
  logging.info("***** Running %s *****", split)
  logging.info("  Num examples = %d (%d actual, %d padding)", len(examples),
               num_actual_examples, len(examples) - num_actual_examples)
  steps = len(examples) // batch_size if FLAGS.use_tpu else None
  input_fn = file_based_input_fn_builder(
      input_file=features_file, seq_length=FLAGS.max_seq_length,
      is_training=False, drop_remainder=FLAGS.use_tpu)
  return (input_fn, steps, num_actual_examples)


def run(unused_argv):
  """The whole job; every user error surfaces as InputError."""
  tf.logging.set_verbosity(tf.logging.INFO)
  validate_flags()

  try:
    tokenization.validate_case_matches_checkpoint(FLAGS.do_lower_case,
                                                  FLAGS.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
    tokenizer = tokenization.FullTokenizer(vocab_file=FLAGS.vocab_file,
                                           do_lower_case=FLAGS.do_lower_case)
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

  processor = get_processor(FLAGS.task_name)
  label_list = processor.get_labels()
  adapter_config = build_adapter_config()

  model_shapes = describe_model(bert_config, adapter_config, len(label_list),
                                FLAGS.max_seq_length)
  if FLAGS.init_checkpoint:
    check_init_checkpoint(FLAGS.init_checkpoint, model_shapes)
  elif FLAGS.do_train and FLAGS.tuning_mode != "full":
    logging.warning("No --init_checkpoint: training adapters on a randomly "
                    "initialised, frozen BERT.")
  log_parameter_counts(model_shapes, FLAGS.tuning_mode)

  if not FLAGS.do_train and not tf.train.latest_checkpoint(FLAGS.output_dir):
    raise InputError("--output_dir=%s holds no trained checkpoint to evaluate "
                     "or predict with; add --do_train=true" % FLAGS.output_dir)
  tf.io.gfile.makedirs(FLAGS.output_dir)

  train_examples = None
  num_train_steps = None
  num_warmup_steps = None
  if FLAGS.do_train:
    train_examples = processor.get_train_examples(FLAGS.data_dir)
    if not train_examples:
      raise InputError("%s: no training examples" %
                       processor.split_file(FLAGS.data_dir, "train"))
    num_train_steps = max(1, int(len(train_examples) / FLAGS.train_batch_size *
                                 FLAGS.num_train_epochs))
    num_warmup_steps = int(num_train_steps * FLAGS.warmup_proportion)

  estimator = make_estimator(bert_config, len(label_list), adapter_config,
                             num_train_steps, num_warmup_steps)

  if FLAGS.do_train:
    train_file = cached_features_file(
        "train", train_examples, label_list, tokenizer,
        processor.split_file(FLAGS.data_dir, "train"))
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

  if FLAGS.do_eval:
    (eval_input_fn, eval_steps, _) = inference_input(
        "eval", processor.get_dev_examples(FLAGS.data_dir),
        processor.split_file(FLAGS.data_dir, "dev"), FLAGS.eval_batch_size,
        label_list, tokenizer)
    result = estimator.evaluate(input_fn=eval_input_fn, steps=eval_steps)
    lines = ["%s = %s\n" % (key, str(result[key])) for key in sorted(result)]
    logging.info("***** Eval results *****")
    for line in lines:
      logging.info("  %s", line.rstrip())
    write_atomically(os.path.join(FLAGS.output_dir, "eval_results.txt"),
                     "".join(lines))

  if FLAGS.do_predict:
    (predict_input_fn, _, num_actual_predict_examples) = inference_input(
        "predict", processor.get_test_examples(FLAGS.data_dir),
        processor.split_file(FLAGS.data_dir, "test"), FLAGS.predict_batch_size,
        label_list, tokenizer)
    rows = []
    for (i, prediction) in enumerate(estimator.predict(input_fn=predict_input_fn)):
      if i >= num_actual_predict_examples:
        break
      rows.append("\t".join(str(p) for p in prediction["probabilities"]) + "\n")
    if len(rows) != num_actual_predict_examples:
      raise RuntimeError("predicted %d rows for %d examples" %
                         (len(rows), num_actual_predict_examples))
    write_atomically(os.path.join(FLAGS.output_dir, "test_results.tsv"),
                     "".join(rows))


def main(argv):
  try:
    run(argv)
  except InputError as e:
    sys.stderr.write("run_classifier.py: error: %s\n" % e)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
