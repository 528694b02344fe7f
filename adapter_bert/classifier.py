# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The classifier library: settings, features, the model, TPUEstimator, the job.

Everything `run_classifier.py` does lives here, as functions that take their
inputs as arguments; nothing here reads command-line flags. A job is described
by one immutable `Settings` object (its fields are run_classifier.py's flag
names) and run with `run(settings)`:

```python
settings = classifier.Settings(
    task_name="MRPC", data_dir="glue/MRPC", output_dir="/tmp/mrpc",
    bert_config_file=..., vocab_file=..., init_checkpoint=...,
    do_train=True, do_eval=True, learning_rate=3e-4)
results = classifier.run(settings)   # {"dev": {"eval_accuracy": ...}}
```

Every user error raises `errors.InputError` with a one-line message. Every
file goes through `tf.io.gfile`, so paths may be `gs://` (Cloud TPU) or any
other TensorFlow file system.
"""

import collections
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import threading
import time

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import console
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert.methods import base
from adapter_bert import run_folder
import modeling
import optimization
import tokenization

InputError = errors.InputError

# Bumped whenever the feature format changes, so old caches are not reused.
FEATURE_CACHE_VERSION = 3


# ---------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class JobSettings(object):
  """Everything one job needs but the tuning method's options (`Settings`
  adds those). Field names and defaults are the flags'.

  Immutable: a bundle's settings are merged in by `with_bundle_settings`,
  which returns a new object, before anything is validated.
  """

  # Required (None here; `validate_settings` says which a job needs).
  task_name: str = None
  data_dir: str = None
  bert_config_file: str = None
  vocab_file: str = None
  output_dir: str = None
  # BERT's other flags.
  init_checkpoint: str = None
  do_lower_case: bool = True
  max_seq_length: int = 128
  do_train: bool = False
  do_eval: bool = False
  do_predict: bool = False
  train_batch_size: int = 32
  eval_batch_size: int = 8
  predict_batch_size: int = 8
  learning_rate: float = 5e-5
  num_train_epochs: float = 3.0
  warmup_proportion: float = 0.1
  max_loss: float = 1e4  # the divergence guard (see optimization.py)
  save_checkpoints_steps: int = 1000
  iterations_per_loop: int = 1000
  use_tpu: bool = False
  tpu_name: str = None
  tpu_zone: str = None
  gcp_project: str = None
  master: str = None
  num_tpu_cores: int = 8
  # The tuning method (the registry's first by default); its options are
  # the fields `Settings` adds.
  tuning_mode: str = methods.names()[0]
  ablate_adapters: str = None  # eval only: "2-5", "0,3"...
  seed: int = 12345
  # Bundles.
  adapter_bundle: str = None
  export_adapter_bundle: str = None
  export_from_checkpoint: str = None
  overwrite_output_dir: bool = False
  allow_partial_init_checkpoint: bool = False
  # Task options and logging.
  xnli_language: str = "zh"
  log_every_n_steps: int = 100
  # Devices and speed.
  strategy: str = "one_device"
  num_cpu_devices: int = 0  # mirrored without GPUs: N logical CPU devices
  precision: str = "float32"
  padding: str = "auto"
  intra_op_parallelism_threads: int = 0
  inter_op_parallelism_threads: int = 0

  @classmethod
  def field_names(cls):
    return [f.name for f in dataclasses.fields(cls)]

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  @property
  def runs_model(self):
    return self.do_train or self.do_eval or self.do_predict

  def method_options(self):
    """{flag: value} of every method option given (None: not given)."""
    return {name: getattr(self, name) for name in methods.all_options()
            if getattr(self, name) is not None}


# One field per option of the registry's methods, None meaning "not given"
# (the method's own default applies): adapter_size, train_layernorm, ...
Settings = dataclasses.make_dataclass(
    "Settings",
    [(name, option.type, dataclasses.field(default=None))
     for (name, option) in methods.all_options().items()],
    bases=(JobSettings,), frozen=True)
Settings.__doc__ = (JobSettings.__doc__.split("\n")[0] + " The tuning "
                    "method's options are fields too, None when not given.")


def with_bundle_settings(settings, explicit=()):
  """Reads `settings.adapter_bundle` and merges the settings it records.

  The bundle's values (max_seq_length, do_lower_case, tuning method, adapter
  settings, XNLI language) replace the given ones: they are what its weights
  were trained with. An explicitly given value that differs is warned about.

  Args:
    settings: `Settings`.
    explicit: names of the settings the user gave explicitly (flags on the
      command line).

  Returns:
    (settings, bundle): the merged `Settings` and the `bundles.Bundle`, or
    the given settings and None without --adapter_bundle.
  """
  if not settings.adapter_bundle:
    return settings, None
  try:
    bundle = bundles.read_bundle(settings.adapter_bundle)
  except ValueError as e:
    raise InputError(e)
  if settings.task_name and (glue.normalize_task_name(bundle.task_name) !=
                             glue.normalize_task_name(settings.task_name)):
    raise InputError("--adapter_bundle=%s was trained for %s, not "
                     "--task_name=%s" % (settings.adapter_bundle,
                                         bundle.task_name, settings.task_name))
  recorded = bundle.settings()
  for (name, value) in sorted(recorded.items()):
    if name in explicit and getattr(settings, name) != value:
      logging.warning("--%s=%s ignored: adapter bundle %s was trained with %s",
                      name, getattr(settings, name), settings.adapter_bundle,
                      value)
  logging.info("Adapter bundle %s: %s, trained %d steps, %s parameters",
               settings.adapter_bundle, bundle.task_name, bundle.global_step,
               "{:,}".format(bundle.num_parameters))
  return settings.replace(**recorded), bundle


def validate_settings(settings):
  """Checks settings before any work; raises InputError naming the flag."""
  s = settings
  required = ["bert_config_file", "task_name", "vocab_file", "output_dir"]
  if s.runs_model:
    required.append("data_dir")
  for name in required:
    if not getattr(s, name):
      raise InputError("--%s is required" % name)
  if not (s.runs_model or s.export_from_checkpoint):
    raise InputError("at least one of --do_train, --do_eval or --do_predict "
                     "must be true")
  if s.adapter_bundle and (s.do_train or s.export_from_checkpoint):
    raise InputError("--adapter_bundle is for --do_eval/--do_predict; to "
                     "train more, keep training in the bundle's --output_dir")
  if s.ablate_adapters and (s.do_train or s.do_predict or
                            s.export_from_checkpoint):
    raise InputError("--ablate_adapters=%s is for --do_eval of a trained "
                     "model alone (no --do_train, --do_predict or "
                     "--export_from_checkpoint)" % s.ablate_adapters)
  if s.overwrite_output_dir and not s.do_train:
    raise InputError("--overwrite_output_dir starts a training run again; it "
                     "needs --do_train=true")
  if s.overwrite_output_dir and s.export_from_checkpoint:
    raise InputError("--overwrite_output_dir and --export_from_checkpoint "
                     "do not go together: the export reads a checkpoint the "
                     "overwrite could delete")
  if s.adapter_bundle and not s.init_checkpoint:
    raise InputError("--adapter_bundle needs --init_checkpoint: the backbone "
                     "it goes on")
  for name in ("max_seq_length", "train_batch_size", "eval_batch_size",
               "predict_batch_size", "save_checkpoints_steps",
               "iterations_per_loop", "log_every_n_steps"):
    if getattr(s, name) <= 0:
      raise InputError("--%s must be positive, got %d" %
                       (name, getattr(s, name)))
  if s.max_seq_length < 3:
    raise InputError("--max_seq_length must be at least 3 ([CLS] x [SEP])")
  if s.do_train and not 0 < s.num_train_epochs < float("inf"):
    raise InputError("--num_train_epochs must be a positive finite number, "
                     "got %r" % s.num_train_epochs)
  if not 0.0 <= s.warmup_proportion <= 1.0:
    raise InputError("--warmup_proportion must be in [0, 1]")
  for name in ("learning_rate", "max_loss"):
    value = getattr(s, name)
    # `not value > 0` also catches NaN, which passes `value <= 0`.
    if not (value > 0 and value != float("inf")):
      raise InputError("--%s must be a positive finite number, got %r" %
                       (name, value))
  try:
    resolve_padding(s.padding, s.use_tpu)
  except ValueError as e:
    raise InputError(e)
  if s.strategy not in STRATEGIES:
    raise InputError("--strategy=%s: unknown (known: %s)" % (
        s.strategy, ", ".join(STRATEGIES)))
  if s.strategy != "one_device" and s.use_tpu:
    raise InputError("--strategy=%s is for CPUs and GPUs; on Cloud TPU, "
                     "--use_tpu=true shards over the TPU cores itself" %
                     s.strategy)
  if s.strategy == "multi_worker" and not os.environ.get("TF_CONFIG"):
    raise InputError("--strategy=multi_worker needs TF_CONFIG (the cluster "
                     "and this worker's task) in the environment")
  if s.precision not in PRECISIONS:
    raise InputError("--precision=%s: unknown (known: %s)" % (
        s.precision, ", ".join(PRECISIONS)))
  if s.precision == "mixed_float16" and s.use_tpu:
    raise InputError("--precision=mixed_float16 is for GPUs; Cloud TPUs "
                     "compute in bfloat16: give --precision=mixed_bfloat16")
  if s.num_cpu_devices < 0 or s.num_cpu_devices == 1:
    raise InputError("--num_cpu_devices must be 0 (none) or at least 2, got "
                     "%d" % s.num_cpu_devices)
  if s.num_cpu_devices and s.strategy != "mirrored":
    raise InputError("--num_cpu_devices=%d is for --strategy=mirrored" %
                     s.num_cpu_devices)
  if (s.strategy == "mirrored" and not s.num_cpu_devices and
      not gpu_available()):
    raise InputError(
        "--strategy=mirrored: this machine has no GPU; give "
        "--num_cpu_devices=N to mirror over N logical CPU devices (it shows "
        "the mechanism, not a speed-up)")
  if s.num_cpu_devices and s.train_batch_size % s.num_cpu_devices:
    raise InputError(
        "--train_batch_size=%d is the global batch; it must split evenly over "
        "the %d replicas of --num_cpu_devices" % (s.train_batch_size,
                                                  s.num_cpu_devices))
  for name in ("intra_op_parallelism_threads", "inter_op_parallelism_threads"):
    if getattr(s, name) < 0:
      raise InputError("--%s must be >= 0 (0: TensorFlow's choice), got %d" %
                       (name, getattr(s, name)))
  for name in ("vocab_file", "bert_config_file"):
    if not tf.io.gfile.exists(getattr(s, name)):
      raise InputError("--%s=%s: no such file" % (name, getattr(s, name)))
  if s.runs_model and not tf.io.gfile.isdir(s.data_dir):
    raise InputError("--data_dir=%s: no such directory" % s.data_dir)


def check_output_paths(settings):
  """Every folder the job writes to takes files, before any work: an
  unwritable --export_adapter_bundle is not found after an hour of
  training."""
  s = settings
  folders = [("output_dir", s.output_dir, s.output_dir)]
  if s.export_adapter_bundle:
    folders.append(("export_adapter_bundle", s.export_adapter_bundle,
                    os.path.dirname(s.export_adapter_bundle.rstrip("/")) or
                    "."))
  for (flag, value, folder) in folders:
    try:
      fileio.check_writable_folder(folder)
    except ValueError as e:
      where = "" if folder == value else " (its folder %s)" % folder
      raise InputError("--%s=%s%s: %s" % (flag, value, where, e))


def build_tuning_method(settings, num_layers=None):
  """The settings' `TuningMethod` (adapter_bert/methods/).

  Args:
    num_layers: the model's encoder layers (some methods need them).
  """
  try:
    return methods.build(settings.tuning_mode, settings.method_options(),
                         num_layers)
  except ValueError as e:
    raise InputError(e)


# ---------------------------------------------------------------- features


class PaddingInputExample(object):
  """A fake example that fills the last batch on TPU; its weight is 0."""


class InputFeatures(object):
  """One example as model inputs."""

  def __init__(self, input_ids, input_mask, segment_ids, label_id,
               is_real_example=True, num_truncated=0):
    self.input_ids = input_ids
    self.input_mask = input_mask
    self.segment_ids = segment_ids
    self.label_id = label_id  # a class id, or a score for regression
    self.is_real_example = is_real_example
    self.num_truncated = num_truncated  # word pieces cut to fit


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
  num_truncated = max(0, len(tokens_a) + len(tokens_b or []) +
                      (3 if tokens_b else 2) - max_seq_length)
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
    # Google BERT's look at the first rows; with --verbose (absl DEBUG).
    logging.debug("*** Example %s ***", example.guid)
    logging.debug("tokens: %s", " ".join(tokens))
    logging.debug("input_ids: %s", " ".join(str(x) for x in input_ids))
    logging.debug("label: %s (id = %s)", example.label, label_id)

  return InputFeatures(input_ids=input_ids, input_mask=input_mask,
                       segment_ids=segment_ids, label_id=label_id,
                       is_real_example=True, num_truncated=num_truncated)


def _truncate_seq_pair(tokens_a, tokens_b, max_length):
  """Truncates a pair in place, one token at a time from the longer one.

  This keeps more of the shorter text than cutting both proportionally would,
  which suits pairs where one side is much shorter.
  """
  while len(tokens_a) + len(tokens_b) > max_length:
    longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
    longer.pop()


def feature_cache_key(input_file, vocab_file, do_lower_case, max_seq_length,
                      task_name, label_list, num_padding,
                      sort_by_length=False):
  """A key for everything that shapes a cached TFRecord of features.

  The contents of the input file and the vocab are hashed (not their names or
  times), so an edited file or a changed flag never reuses stale features.
  """
  description = {
      "version": FEATURE_CACHE_VERSION,
      "input_sha256": fileio.file_sha256(input_file),
      "vocab_sha256": fileio.file_sha256(vocab_file),
      "do_lower_case": bool(do_lower_case),
      "max_seq_length": int(max_seq_length),
      "task_name": task_name.lower(),
      "labels": list(label_list),
      "num_padding": int(num_padding),
      "sort_by_length": bool(sort_by_length),
  }
  encoded = json.dumps(description, sort_keys=True).encode("utf-8")
  return hashlib.sha256(encoded).hexdigest()[:16]


def file_based_convert_examples_to_features(examples, label_list,
                                            max_seq_length, tokenizer,
                                            output_file, sort_by_length=False):
  """Writes the features of `examples` to a TFRecord, atomically.

  Each record holds its row's tokens without padding (padding is the input
  pipeline's choice, see PADDING_POLICIES) and `example_index`, the example's
  position in `examples`.

  Args:
    sort_by_length: write the records longest first, so that batches of
      neighbouring records need little padding (eval and predict; their
      outputs are put back in example order by `example_index`).
  """
  cuts = []
  started = time.time()
  if len(examples) >= CONVERSION_PROGRESS_ROWS:
    logging.info("Converting %s: %s rows", os.path.basename(output_file),
                 "{:,}".format(len(examples)))

  def indexed_features():
    for (ex_index, example) in enumerate(examples):
      if ex_index and ex_index % CONVERSION_PROGRESS_ROWS == 0:
        logging.info("Converting %s: %s", os.path.basename(output_file),
                     console.progress(ex_index, len(examples), started,
                                      time.time()))
      feature = convert_single_example(ex_index, example, label_list,
                                       max_seq_length, tokenizer)
      if feature.num_truncated:
        cuts.append(feature.num_truncated)
      yield (ex_index, feature)

  rows = indexed_features()
  if sort_by_length:
    # A stable sort: rows of one length keep their order.
    rows = sorted(rows, key=lambda row: -sum(row[1].input_mask))
  with fileio.atomic_path(output_file) as temp_file:
    with tf.io.TFRecordWriter(temp_file) as writer:
      for (ex_index, feature) in rows:
        writer.write(_feature_to_example(feature, ex_index)
                     .SerializeToString())
  report_truncation(cuts, len(examples), max_seq_length, output_file)


# A large file's conversion logs its progress every this many rows.
CONVERSION_PROGRESS_ROWS = 20000


def report_truncation(cuts, num_examples, max_seq_length, output_file):
  """Logs how many examples were cut to fit, and by how much; warns when it
  is most of them (a --max_seq_length too short for the task).

  Args:
    cuts: the word pieces cut from each truncated example.
  """
  if not cuts:
    logging.info("%s: no example truncated at --max_seq_length=%d",
                 output_file, max_seq_length)
    return
  share = len(cuts) / float(max(1, num_examples))
  log = logging.warning if share > 0.5 else logging.info
  log("%s: %d of %d examples (%.1f%%) truncated at --max_seq_length=%d, by "
      "%.1f word pieces on average (at most %d)%s", output_file, len(cuts),
      num_examples, 100.0 * share, max_seq_length, np.mean(cuts), max(cuts),
      "; most examples lose text: raise --max_seq_length" if share > 0.5
      else "")


def _feature_to_example(feature, example_index):
  def int_feature(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

  def float_feature(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))

  # The real tokens only; a TPU padding example keeps one (id 0) so that no
  # batch is ever zero tokens wide.
  length = max(1, sum(feature.input_mask))
  features = collections.OrderedDict()
  features["input_ids"] = int_feature(feature.input_ids[:length])
  features["segment_ids"] = int_feature(feature.segment_ids[:length])
  # Float for both kinds of task: class ids are exact in float32.
  features["label_ids"] = float_feature([feature.label_id])
  features["is_real_example"] = int_feature([int(feature.is_real_example)])
  features["example_index"] = int_feature([example_index])
  return tf.train.Example(features=tf.train.Features(feature=features))


class FeatureCache(object):
  """TFRecords of features in a folder, named by a key of what shapes them."""

  def __init__(self, folder, task, tokenizer, vocab_file, do_lower_case,
               max_seq_length):
    self.folder = folder
    self.task = task
    self.tokenizer = tokenizer
    self.vocab_file = vocab_file
    self.do_lower_case = do_lower_case
    self.max_seq_length = max_seq_length

  def features_file(self, split_name, examples, input_file,
                    sort_by_length=False):
    """Writes (or reuses) the TFRecord of one split; returns its path.

    Args:
      sort_by_length: longest rows first (eval and predict files).
    """
    label_list = self.task.get_labels()
    num_padding = sum(isinstance(e, PaddingInputExample) for e in examples)
    key = feature_cache_key(input_file, self.vocab_file, self.do_lower_case,
                            self.max_seq_length, self.task.name, label_list,
                            num_padding, sort_by_length)
    path = os.path.join(self.folder, "%s-%s.tf_record" % (split_name, key))
    if tf.io.gfile.exists(path):
      damage = cache_damage(path, len(examples))
      if damage is None:
        logging.info("Reusing cached features %s (%d records, checksum "
                     "verified)", path, len(examples))
        return path
      logging.warning("Cached features %s are damaged (%s): building them "
                      "again", path, damage)
      fileio.remove_quietly(path)
    fileio.remove_quietly(path + CACHE_CHECK_SUFFIX)
    file_based_convert_examples_to_features(examples, label_list,
                                            self.max_seq_length,
                                            self.tokenizer, path,
                                            sort_by_length)
    # Written after the records: a kill in between leaves records without
    # a check, which are built again.
    fileio.write_json(path + CACHE_CHECK_SUFFIX, {
        "records": len(examples), "sha256": fileio.file_sha256(path)})
    return path


# Beside each cached TFRecord: its record count and sha256.
CACHE_CHECK_SUFFIX = ".check.json"


def cache_damage(path, num_examples):
  """Why a cached feature file cannot be reused, or None if it can.

  A cache cut short (a full disk, a copy) or edited would otherwise be read as
  fewer or other examples than the log reports.
  """
  check_path = path + CACHE_CHECK_SUFFIX
  if not tf.io.gfile.exists(check_path):
    return "no %s with its record count and checksum" % os.path.basename(
        check_path)
  try:
    check = json.loads(fileio.read_text(check_path))
    (records, sha256) = (check["records"], check["sha256"])
  except (ValueError, KeyError, TypeError) as e:
    return "%s is corrupt (%s)" % (os.path.basename(check_path),
                                   errors.one_line(e, 100))
  if records != num_examples:
    return "%s records for %d examples" % (records, num_examples)
  if fileio.file_sha256(path) != sha256:
    return "its checksum differs from the one recorded when it was written"
  return None


# How batches are padded (`--padding`):
#   static: every row to max_seq_length. Static shapes, as TPUs need.
#   batch:  each batch to its longest row.
#   bucket: as batch, and training batches are drawn from rows of similar
#           length (length buckets over the shuffled stream), so they need
#           little padding. Eval and predict read length-sorted files, so
#           "batch" and "bucket" pad them alike.
#   auto:   static on TPU, bucket elsewhere: the fastest correct policy.
PADDING_POLICIES = ("auto", "static", "batch", "bucket")
# The features that are [batch, width].
SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")


def resolve_padding(padding, use_tpu):
  """The policy `padding` means on this device (never "auto").

  Raises:
    ValueError: an unknown policy, or a dynamic one on TPU.
  """
  if padding not in PADDING_POLICIES:
    raise ValueError("--padding=%s: unknown (known: %s)" %
                     (padding, ", ".join(PADDING_POLICIES)))
  if padding == "auto":
    return "static" if use_tpu else "bucket"
  if use_tpu and padding != "static":
    raise ValueError("--padding=%s: TPUs need static shapes; use "
                     "--padding=static (or auto)" % padding)
  return padding


# Dynamic batches are padded to a multiple of this many tokens, so that a run
# sees at most max_seq_length / 8 distinct shapes: every new shape costs
# oneDNN (and cuDNN) new kernels, which cost more than the padding saves.
PAD_TO_MULTIPLE = 8


def padded_width(longest, max_seq_length, multiple=PAD_TO_MULTIPLE):
  """The width a dynamic batch whose longest row is `longest` is padded to
  (the rule round_up_width applies in the input pipeline, for Python ints)."""
  return min(max_seq_length, -(-longest // multiple) * multiple)


def length_bucket_boundaries(max_seq_length, width=PAD_TO_MULTIPLE):
  """Upper ends (exclusive) of the length buckets: every `width` tokens."""
  return list(range(width + 1, max_seq_length + 1, width))


def file_based_input_fn_builder(input_file, seq_length, is_training,
                                drop_remainder, seed=None, padding="static",
                                pad_to_multiple=PAD_TO_MULTIPLE,
                                skip_batches=0):
  """An `input_fn` for TPUEstimator reading a features TFRecord.

  Args:
    input_file: written by `file_based_convert_examples_to_features`.
    seq_length: max_seq_length; rows are padded to it under "static".
    is_training: repeat and shuffle (seeded by `seed`).
    drop_remainder: only full batches (TPU).
    padding: "static", "batch" or "bucket" (see PADDING_POLICIES;
      `resolve_padding` turns "auto" into one of these).
    pad_to_multiple: "batch" and "bucket" round each batch's width up to a
      multiple of this (never beyond seq_length).
    skip_batches: training batches already consumed (the global step a run
      resumes at): the stream is a function of the seed, so skipping them
      gives exactly the batches an uninterrupted run would see next.
  """
  if padding not in ("static", "batch", "bucket"):
    raise ValueError("padding must be static, batch or bucket, got %r" %
                     padding)
  name_to_features = {
      "input_ids": tf.io.VarLenFeature(tf.int64),
      "segment_ids": tf.io.VarLenFeature(tf.int64),
      "label_ids": tf.io.FixedLenFeature([], tf.float32),
      "is_real_example": tf.io.FixedLenFeature([], tf.int64),
      "example_index": tf.io.FixedLenFeature([], tf.int64),
  }

  def decode_record(record):
    example = tf.io.parse_single_example(record, name_to_features)
    # TPUs only take int32; int64 is what tf.Example stores.
    features = {}
    for (name, tensor) in example.items():
      if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(tensor)
      if tensor.dtype == tf.int64:
        tensor = tf.cast(tensor, tf.int32)
      features[name] = tensor
    features["input_mask"] = tf.ones_like(features["input_ids"])
    return features

  def padded_shapes(length):
    """What decode_record makes: the parsed features and input_mask."""
    return {name: ([length] if name in SEQUENCE_FEATURES else [])
            for name in list(name_to_features) + ["input_mask"]}

  def round_up_width(batch):
    """Pads [batch, width] features to a multiple of pad_to_multiple."""
    width = tf.shape(batch["input_ids"])[1]
    target = tf.minimum(
        (width + pad_to_multiple - 1) // pad_to_multiple * pad_to_multiple,
        seq_length)
    for name in SEQUENCE_FEATURES:
      batch[name] = tf.pad(batch[name], [[0, 0], [0, target - width]])
    return batch

  def input_fn(params, input_context=None):
    batch_size = params["batch_size"]
    replicas = 1
    if input_context is not None and input_context.num_replicas_in_sync > 1:
      # tf.distribute gives each replica its own batch from this stream:
      # consecutive per-replica batches together make the global one, the
      # same rows one device would take in one batch (with "static" or
      # "batch" padding; "bucket" groups by length, so it differs).
      replicas = input_context.num_replicas_in_sync
      batch_size = input_context.get_per_replica_batch_size(batch_size)
    d = tf.data.TFRecordDataset(input_file)
    if is_training:
      d = d.repeat()
      d = d.shuffle(buffer_size=10000, seed=seed)
    d = d.map(decode_record, num_parallel_calls=tf.data.AUTOTUNE)
    if padding == "bucket" and is_training:
      boundaries = length_bucket_boundaries(seq_length)
      d = d.bucket_by_sequence_length(
          element_length_func=lambda f: tf.shape(f["input_ids"])[0],
          bucket_boundaries=boundaries,
          bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
          padded_shapes=padded_shapes(None),
          drop_remainder=drop_remainder)
    else:
      d = d.padded_batch(
          batch_size,
          padded_shapes=padded_shapes(seq_length if padding == "static"
                                      else None),
          drop_remainder=drop_remainder)
    if padding != "static" and pad_to_multiple > 1:
      d = d.map(round_up_width)
    if skip_batches:
      d = d.skip(skip_batches * replicas)
    return d.prefetch(tf.data.AUTOTUNE)

  return input_fn


# ---------------------------------------------------------------- the model


def create_model(bert_config, is_training, input_ids, input_mask, segment_ids,
                 labels, num_labels, method=None, compute_dtype=tf.float32):
  """BERT + a linear head on the pooled output.

  With num_labels > 1 the head is a softmax classifier with cross-entropy
  loss; with num_labels == 1 (STS-B) it is a regressor with squared error.

  Args:
    labels: float Tensor [batch]: class ids, or target scores.
    method: the `TuningMethod` whose hooks change BERT (its additions, and
      the layers where they are switched off), or None for plain BERT.
    compute_dtype: the encoder's dtype (`modeling.BertModel`); the head,
      its softmax and the loss are float32 whatever it is.

  Returns:
    dict: loss (scalar), per_example_loss [batch], logits [batch, num_labels],
    predictions [batch] (class id or score), and for classification
    probabilities [batch, num_labels].
  """
  with tf.variable_scope(tf.get_variable_scope(),
                         custom_getter=modeling.name_seeded_getter):
    return _create_model(bert_config, is_training, input_ids, input_mask,
                         segment_ids, labels, num_labels, method,
                         compute_dtype)


def _create_model(bert_config, is_training, input_ids, input_mask,
                  segment_ids, labels, num_labels, method, compute_dtype):
  model = modeling.BertModel(
      config=bert_config,
      is_training=is_training,
      input_ids=input_ids,
      input_mask=input_mask,
      token_type_ids=segment_ids,
      hooks=method,
      pooled_only=True,  # the head reads [CLS] alone
      compute_dtype=compute_dtype)

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
    return outputs


def model_fn_builder(bert_config, num_labels, init_checkpoints, learning_rate,
                     num_train_steps, num_warmup_steps, use_tpu, method,
                     log_every_n_steps=100,
                     compact_checkpoints=False, keep_checkpoint_max=5,
                     max_loss=None, train_batch_size=None,
                     precision="float32"):
  """Returns the `model_fn` closure for TPUEstimator (TRAIN and PREDICT).

  Evaluation runs through PREDICT as well: the metrics GLUE asks for (MCC,
  F1, Spearman...) are computed exactly, over the whole dev set, by
  `evaluate_split` from the per-example outputs.

  Args:
    method: the `TuningMethod`: what the graph adds and what trains (and
      the layers whose additions are switched off, eval only).
    init_checkpoints: checkpoints that initialise the variables, first one
      first (see `checkpoint_assignment_maps`).
    compact_checkpoints: checkpoints hold only what training changes (see
      `compact_scaffold`); the frozen weights come from `init_checkpoints` at
      every session start.
    keep_checkpoint_max: how many compact checkpoints to keep.
    max_loss: the divergence guard of `optimization.create_optimizer`.
    precision: a key of `PRECISIONS`: the encoder's compute dtype, and for
      mixed_float16 dynamic loss scaling.
  """
  (compute_dtype, loss_scale) = PRECISIONS[precision]

  def model_fn(features, labels, mode, params, config=None):  # pylint: disable=unused-argument
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    outputs = create_model(
        bert_config, is_training, features["input_ids"],
        features["input_mask"], features["segment_ids"],
        features["label_ids"], num_labels, method, compute_dtype)

    all_variables = tf.trainable_variables()
    maps = checkpoint_assignment_maps(all_variables, init_checkpoints)

    def scaffold_fn():
      # Runs on the host (TPU) or right after model_fn (CPU/GPU); it must
      # come before the scaffold's initializer ops are built, because
      # init_from_checkpoint replaces the variables' initializers.
      for (checkpoint, assignment_map) in maps:
        if assignment_map:
          tf.train.init_from_checkpoint(checkpoint, assignment_map)
      if compact_checkpoints:
        return compact_scaffold(method, keep_checkpoint_max)
      if optimization.replica_count() > 1:
        return tf.train.Scaffold(local_init_op=tf.group(
            tf.train.Scaffold.default_local_init_op(), replica_sync_op()))
      return tf.train.Scaffold()

    if mode == tf.estimator.ModeKeys.TRAIN:
      trained = method.trained_variables(all_variables)
      train_op = optimization.create_optimizer(
          outputs["loss"], learning_rate, num_train_steps, num_warmup_steps,
          use_tpu, trained, max_loss=max_loss, loss_scale=loss_scale)
      loss = outputs["loss"]
      replicas = optimization.replica_count()
      if replicas > 1:
        # The Estimator sums the replicas' losses for its own reports; each
        # replica's share makes that sum the global batch's mean loss. The
        # throughput log reads the same mean, reduced in the graph.
        loss = outputs["loss"] / replicas
        logged_loss = tf.distribute.get_replica_context().all_reduce(
            tf.distribute.ReduceOp.MEAN, outputs["loss"])
        # Every replica's side of that all-reduce must run each step (the
        # hook fetches one replica's): else the others wait forever.
        train_op = tf.group(train_op, logged_loss)
      else:
        logged_loss = loss
      current_rate = optimization.learning_rate_schedule(
          tf.train.get_global_step(), learning_rate, num_train_steps,
          num_warmup_steps)
      # The chief writes the TensorBoard scalars (None: a test's bare call).
      summary_dir = (config.model_dir if config is not None and
                     config.is_chief else None)
      # On TPU the loss lives on the device: the host call carries it out
      # (and TPUEstimator logs its own rates).
      hooks = [] if use_tpu else [
          ThroughputHook(logged_loss, current_rate,
                         # Under tf.distribute params has no batch size.
                         params.get("batch_size", train_batch_size),
                         log_every_n_steps, num_train_steps, summary_dir)]
      host_call = None
      if use_tpu and summary_dir:
        host_call = tpu_host_call(summary_dir, loss=outputs["loss"],
                                  learning_rate=current_rate)
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=loss, train_op=train_op, host_call=host_call,
          training_hooks=hooks, scaffold_fn=scaffold_fn)

    if mode == tf.estimator.ModeKeys.PREDICT:
      predictions = {name: outputs[name] for name in
                     ("predictions", "per_example_loss", "probabilities")
                     if name in outputs}
      # Which example each output is: files may be sorted by length.
      for name in ("example_index", "is_real_example"):
        predictions[name] = features[name]
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, predictions=predictions, scaffold_fn=scaffold_fn)

    raise ValueError("mode %s is not supported; evaluation runs through "
                     "PREDICT" % mode)

  return model_fn


def tpu_host_call(model_dir, **scalars):
  """A TPUEstimator host call writing `scalars` as TensorBoard summaries.

  On a TPU the training loop runs `iterations_per_loop` steps on the device
  without returning; the host call's tensors travel out through the outfeed
  every step and the host writes them to `model_dir` (as TPUEstimator's own
  global_step/sec and examples/sec), where TensorBoard reads them.

  Args:
    model_dir: the folder of the event files.
    **scalars: {name: float32 scalar Tensor} computed on the device.

  Returns:
    (host_fn, tensors), for TPUEstimatorSpec(host_call=...).
  """
  names = sorted(scalars)
  # Host-call tensors need a leading (batch-like) axis.
  tensors = [tf.reshape(tf.cast(tf.train.get_global_step(), tf.int64), [1])]
  tensors += [tf.reshape(tf.cast(scalars[name], tf.float32), [1])
              for name in names]

  def host_fn(global_step, *values):
    step = global_step[0]
    with tf.compat.v2.summary.create_file_writer(model_dir).as_default():
      with tf.compat.v2.summary.record_if(True):
        for (name, value) in zip(names, values):
          # The tags of ThroughputHook's scalars on CPU and GPU.
          tf.compat.v2.summary.scalar("train/" + name, value[0], step=step)
        return tf.summary.all_v2_summary_ops()

  return (host_fn, tensors)


def compact_scaffold(method, keep_checkpoint_max):
  """A Scaffold whose checkpoints hold only what training changes.

  The saver takes every global variable but the frozen model weights: the
  trained variables, their Adam slots and the global step. The frozen weights
  are initialised from the pre-trained checkpoint (their initializers, set by
  init_from_checkpoint) by the local init op, which the session manager runs
  at every start, after a checkpoint was restored or not. A BERT-base adapter
  run then writes ~30 MB per checkpoint instead of ~470 MB.

  Args:
    method: the `TuningMethod`; what it does not train is frozen.
    keep_checkpoint_max: checkpoints kept, as the Estimator's own saver.

  Returns:
    tf.train.Scaffold.
  """
  # The model_fn (and so this) runs once per replica under tf.distribute:
  # one scaffold serves them all, so no replica's initializers run after
  # another's replica_sync_op.
  built = tf.get_collection(_COMPACT_SCAFFOLD)
  if built:
    return built[0]
  frozen = [v for v in tf.trainable_variables()
            if not method.trains(base.variable_name(v))]
  frozen_ids = {id(v) for v in frozen}
  saved = [v for v in tf.global_variables() if id(v) not in frozen_ids]
  saver = tf.train.Saver(saved, sharded=True, max_to_keep=keep_checkpoint_max,
                         save_relative_paths=True)
  # Through the graph collection, not the Scaffold argument: under
  # tf.distribute the Estimator tests that argument's truth (`if op:`), which
  # a Tensor refuses; the collection is read by every path alike.
  tf.add_to_collection(tf.GraphKeys.READY_FOR_LOCAL_INIT_OP,
                       tf.report_uninitialized_variables(saved))
  local_init_op = tf.group(tf.variables_initializer(frozen),
                           tf.train.Scaffold.default_local_init_op())
  if optimization.replica_count() > 1:
    with tf.control_dependencies([local_init_op]):
      local_init_op = replica_sync_op()
  scaffold = tf.train.Scaffold(
      init_op=tf.variables_initializer(saved),
      local_init_op=local_init_op,
      saver=saver)
  tf.add_to_collection(_COMPACT_SCAFFOLD, scaffold)
  return scaffold


_COMPACT_SCAFFOLD = "adapter_bert_compact_scaffold"


def replica_sync_op():
  """Copies every mirrored variable's first copy into its other copies.

  Under MirroredStrategy a variable has one copy per device, and the copies
  after the first take their initial value from the first one's *original*
  initializer. `init_from_checkpoint` replaces only the first copy's, so the
  other replicas would start from random weights (measured: different losses
  from step 0). This op, run by the session manager after every
  initialisation or restore, makes every copy the first one's.
  """
  strategy = tf.distribute.get_strategy()
  assignments = []
  for variable in tf.global_variables():
    copies = strategy.experimental_local_results(variable)
    for copy in copies[1:]:
      assignments.append(copy.assign(copies[0].read_value()))
  return tf.group(*assignments, name="replica_sync")


def checkpoint_assignment_maps(variables, checkpoints):
  """Which checkpoint initialises which variable.

  Each variable comes from the first of `checkpoints` that holds it (an
  adapter bundle before the backbone); variables none holds (adapters and head
  when training starts) keep their initializers. Shapes were checked before
  (`check_init_checkpoint`).

  Returns:
    list of (checkpoint, {name: name}) pairs, for tf.train.init_from_checkpoint.
  """
  remaining = [base.variable_name(v) for v in variables]
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


def describe_model(bert_config, method, num_labels, max_seq_length):
  """Builds the model once in a scratch graph; returns {name: shape}."""
  with tf.Graph().as_default():
    input_ids = tf.zeros([1, max_seq_length], dtype=tf.int32)
    create_model(bert_config, False, input_ids, input_ids, input_ids,
                 tf.zeros([1], dtype=tf.float32), num_labels, method)
    return collections.OrderedDict(
        (base.variable_name(v), v.shape.as_list())
        for v in tf.global_variables())


def check_init_checkpoint(init_checkpoint, model_shapes, method,
                          bert_config_file, allow_partial=False):
  """Refuses a checkpoint that does not fit the model built from the config.

  Every backbone variable (not new in `method`) must be in the checkpoint,
  with the model's shape, and its data must be all there; every BERT
  variable of the checkpoint must be in the model unless `allow_partial`.
  """
  try:
    fileio.check_checkpoint_data(init_checkpoint)
  except ValueError as e:
    raise InputError("--init_checkpoint=%s: %s" % (init_checkpoint, e))
  try:
    in_checkpoint = dict(tf.train.list_variables(init_checkpoint))
  except (tf.errors.OpError, ValueError) as e:
    raise InputError("--init_checkpoint=%s: cannot read it (%s)" %
                     (init_checkpoint, errors.one_line(e)))
  shared = [name for name in model_shapes if name in in_checkpoint]
  if not any(name.startswith("bert/") for name in shared):
    raise InputError("--init_checkpoint=%s: holds no BERT variable "
                     "(bert/...)" % init_checkpoint)
  for name in shared:
    if list(in_checkpoint[name]) != list(model_shapes[name]):
      raise InputError(
          "--bert_config_file=%s does not match --init_checkpoint=%s: %s has "
          "shape %s in the checkpoint but %s in the model" %
          (bert_config_file, init_checkpoint, name, in_checkpoint[name],
           model_shapes[name]))
  missing = [name for name in model_shapes if not method.is_new(name) and
             name not in in_checkpoint]
  if missing:
    raise InputError("--init_checkpoint=%s lacks %d pre-trained variables "
                     "the model needs, e.g. %s" %
                     (init_checkpoint, len(missing), missing[0]))
  # BERT weights the model leaves out mean a config smaller than the
  # checkpoint (fewer layers...): a cut-down model, unless that is meant.
  unused = sorted(name for name in in_checkpoint
                  if name.startswith("bert/") and name not in model_shapes and
                  not name.endswith(("/adam_m", "/adam_v")))
  if unused and not allow_partial:
    raise InputError(
        "--init_checkpoint=%s holds %d BERT variables the model of "
        "--bert_config_file=%s does not use (e.g. %s); give the checkpoint's "
        "own config, or --allow_partial_init_checkpoint=true for a cut-down "
        "model" %
        (init_checkpoint, len(unused), bert_config_file, unused[0]))
  if unused:
    logging.warning("--init_checkpoint=%s: %d BERT variables left unused "
                    "(--allow_partial_init_checkpoint), e.g. %s",
                    init_checkpoint, len(unused), unused[0])


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


class StopOnSignalHook(tf.estimator.SessionRunHook):
  """Turns SIGTERM and SIGINT into a clean stop after the current step.

  Preemptible GPU and TPU machines send SIGTERM before they go. The handler
  only records the signal; after the step that is running, the session is
  asked to stop, and the Estimator's checkpoint hook then saves the last
  step as it does at the end of training. `run` reports it and exits
  non-zero; the same command resumes from that checkpoint.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.received = None
    self.step = None
    self._previous = {}

  def begin(self):
    self._global_step = tf.train.get_global_step()
    # Handlers can only be set from the main thread (a library caller may
    # train in another one: then signals keep their usual meaning).
    if threading.current_thread() is threading.main_thread():
      for number in self.SIGNALS:
        self._previous[number] = signal.signal(number, self._handle)

  def _handle(self, number, frame):  # pylint: disable=unused-argument
    self.received = signal.Signals(number).name

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    if self.received:
      self.step = int(run_values.results) + 1
      run_context.request_stop()

  def end(self, session):
    for (number, handler) in self._previous.items():
      signal.signal(number, handler)
    self._previous = {}


class ThroughputHook(tf.estimator.SessionRunHook):
  """Every `every_n_steps` steps: logs the progress line and writes the
  TensorBoard scalars.

  The line: `step 120/343 (35%): loss = 0.4123, 2.41 steps/s, 77.1
  examples/s, ETA 1m32s` (the rates and the ETA over the last window). The
  scalars, in `summary_dir`: train/loss, train/learning_rate and
  train/examples_per_second (the Estimator's own `loss` is beside them).
  """

  def __init__(self, loss, learning_rate, batch_size, every_n_steps,
               total_steps=None, summary_dir=None):
    """Args:
      loss, learning_rate: scalar Tensors read at each step.
      total_steps: (optional) the step training ends at, for the progress.
      summary_dir: (optional) where the scalars go; None writes none (a
        non-chief worker).
    """
    self._loss = loss
    self._learning_rate = learning_rate
    self._batch_size = batch_size
    self._every_n_steps = max(1, every_n_steps)
    self._total_steps = total_steps
    self._summary_dir = summary_dir

  def begin(self):
    self._global_step = tf.train.get_global_step()
    self._last_time = None
    self._last_step = None
    self._writer = (tf.summary.FileWriterCache.get(self._summary_dir)
                    if self._summary_dir else None)

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(
        [self._global_step, self._loss, self._learning_rate])

  def after_run(self, run_context, run_values):
    (step, loss, learning_rate) = run_values.results
    now = time.time()
    if self._last_time is None:
      (self._last_time, self._last_step) = (now, step)
      return
    if step - self._last_step >= self._every_n_steps:
      steps_per_sec = (step - self._last_step) / (now - self._last_time)
      examples_per_sec = steps_per_sec * self._batch_size
      where = "step %d" % step
      eta = ""
      if self._total_steps:
        where += "/%d (%.0f%%)" % (self._total_steps,
                                   100.0 * step / self._total_steps)
        eta = ", ETA " + console.duration(
            max(0, self._total_steps - step) / steps_per_sec)
      logging.info("%s: loss = %.4f, %.2f steps/s, %.1f examples/s%s", where,
                   loss, steps_per_sec, examples_per_sec, eta)
      if self._writer is not None:
        self._writer.add_summary(tf.Summary(value=[
            tf.Summary.Value(tag=tag, simple_value=float(value))
            for (tag, value) in (("train/loss", loss),
                                 ("train/learning_rate", learning_rate),
                                 ("train/examples_per_second",
                                  examples_per_sec))]), step)
      (self._last_time, self._last_step) = (now, step)

  def end(self, session):
    if self._writer is not None:
      self._writer.flush()


def session_config(intra_op_threads, inter_op_threads, use_tpu,
                   num_cpu_devices=0):
  """The session's devices and thread pools; 0 means the default.

  The default inter-op pool is 1 thread on a machine with no GPU: matmuls
  already use every core, and one op at a time was measured faster there
  than TensorFlow's default (one thread per core; benchmarks/README.md).
  Elsewhere TensorFlow chooses.

  Args:
    num_cpu_devices: logical CPU devices for a mirrored strategy over CPUs.
      They must be declared here: devices set with `tf.config` do not reach
      the Estimator's session. Replicas then run ops side by side and wait on
      each other in all-reduces, which deadlocks a small inter-op pool, so it
      gets at least 8 threads per device.
  """
  device_count = {}
  if num_cpu_devices > 1:
    device_count = {"CPU": num_cpu_devices}
    inter_op_threads = max(inter_op_threads, 8 * num_cpu_devices)
  elif not inter_op_threads and not use_tpu and not gpu_available():
    inter_op_threads = 1
  if not (intra_op_threads or inter_op_threads or device_count):
    return None
  return tf.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                        inter_op_parallelism_threads=inter_op_threads,
                        device_count=device_count,
                        allow_soft_placement=True)


STRATEGIES = ("one_device", "mirrored", "multi_worker")

# --precision: (the encoder's compute dtype, the initial dynamic loss scale
# or None). Variables, checkpoints and bundles are float32 in every case.
# float16's 5 exponent bits underflow small gradients, hence loss scaling
# (2**15 is TensorFlow's default start); bfloat16 has float32's exponent.
PRECISIONS = {
    "float32": (tf.float32, None),
    "mixed_bfloat16": (tf.bfloat16, None),
    "mixed_float16": (tf.float16, 2.0 ** 15),
}


def declare_cpu_devices(count):
  """Splits the CPU into `count` logical devices in TF's eager context.

  The Estimator's session gets its devices from `session_config`; this is
  for MirroredStrategy's constructor, which checks its devices against the
  eager context. It must run before that context starts (before the first
  eager op); afterwards the context keeps what it has, and a constructor
  given missing devices fails with TF's own message.
  """
  cpus = tf.config.list_physical_devices("CPU")
  try:
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
  except RuntimeError:
    pass  # the context started already


def build_strategy(strategy, num_cpu_devices=0):
  """The tf.distribute strategy of --strategy, or None for one device.

  mirrored: synchronous replicas on this machine, one per GPU (or one per
  logical CPU device with `num_cpu_devices`). multi_worker: the same across
  the machines `TF_CONFIG` lists. The settings were checked against this
  machine by `validate_settings`.
  """
  if strategy == "one_device":
    return None
  if strategy == "mirrored":
    if num_cpu_devices > 1:
      declare_cpu_devices(num_cpu_devices)
      return tf.distribute.MirroredStrategy(
          ["/cpu:%d" % i for i in range(num_cpu_devices)])
    return tf.distribute.MirroredStrategy()  # every local GPU
  if strategy == "multi_worker":
    return tf.distribute.experimental.MultiWorkerMirroredStrategy()
  raise ValueError("unknown strategy %r (known: %s)" % (
      strategy, ", ".join(STRATEGIES)))


def gpu_available():
  return bool(tf.config.list_physical_devices("GPU"))


def make_estimator(settings, bert_config, num_labels, method, model_dir,
                   init_checkpoints, num_train_steps=None,
                   num_warmup_steps=None, predict_batch_size=None,
                   compact_checkpoints=False):
  """A TPUEstimator; on CPU/GPU it runs as a normal Estimator.

  Args:
    settings: `Settings` (device, batch sizes, learning rate, seed...).
    model_dir: where checkpoints are written and read.
    init_checkpoints: checkpoints that initialise the variables, first one
      first (see `checkpoint_assignment_maps`).
    predict_batch_size: evaluation predicts too, so it passes
      eval_batch_size here; default settings.predict_batch_size.
    compact_checkpoints: checkpoints hold only the trained variables, their
      optimizer slots and the step (`compact_scaffold`).
  """
  s = settings
  distribution = build_strategy(s.strategy, s.num_cpu_devices)
  tpu_cluster_resolver = None
  if s.use_tpu and s.tpu_name:
    tpu_cluster_resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        s.tpu_name, zone=s.tpu_zone, project=s.gcp_project)
  run_config = tf.estimator.tpu.RunConfig(
      cluster=tpu_cluster_resolver,
      session_config=session_config(s.intra_op_parallelism_threads,
                                    s.inter_op_parallelism_threads,
                                    s.use_tpu, s.num_cpu_devices),
      train_distribute=distribution,
      master=s.master,
      model_dir=model_dir,
      tf_random_seed=s.seed,
      save_checkpoints_steps=s.save_checkpoints_steps,
      # On CPU/GPU our ThroughputHook logs instead: TPUEstimator's own rate
      # hooks would fire every step there.
      log_step_count_steps=s.log_every_n_steps if s.use_tpu else None,
      tpu_config=tf.estimator.tpu.TPUConfig(
          iterations_per_loop=s.iterations_per_loop,
          num_shards=s.num_tpu_cores,
          per_host_input_for_training=(
              tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2)))
  model_fn = model_fn_builder(
      bert_config=bert_config,
      num_labels=num_labels,
      init_checkpoints=init_checkpoints,
      learning_rate=s.learning_rate,
      num_train_steps=num_train_steps,
      num_warmup_steps=num_warmup_steps,
      use_tpu=s.use_tpu,
      method=method,
      log_every_n_steps=s.log_every_n_steps,
      compact_checkpoints=compact_checkpoints,
      keep_checkpoint_max=run_config.keep_checkpoint_max,
      max_loss=s.max_loss,
      train_batch_size=s.train_batch_size,
      precision=s.precision)
  return tf.estimator.tpu.TPUEstimator(
      use_tpu=s.use_tpu,
      model_fn=model_fn,
      config=run_config,
      train_batch_size=s.train_batch_size,
      predict_batch_size=predict_batch_size or s.predict_batch_size)


# ---------------------------------------------------------------- eval, predict


def pad_for_tpu(examples, batch_size, use_tpu):
  """On TPU every batch is full: pads with weight-0 examples. Else a copy."""
  padded = list(examples)
  while use_tpu and len(padded) % batch_size != 0:
    padded.append(PaddingInputExample())
  return padded


def predict_examples(estimator, feature_cache, split_name, examples,
                     input_file, batch_size, use_tpu, padding="static"):
  """Runs the model over `examples`; returns one output dict per example.

  The features file is sorted by length (so that "batch" padding wastes
  little) and on TPU padded to full batches; outputs are put back in the
  order of `examples` and the padding's are cut, so callers see exactly one
  output per real example, in order.

  Args:
    padding: "static", "batch" or "bucket" (see `resolve_padding`).
  """
  num_actual_examples = len(examples)
  padded = pad_for_tpu(examples, batch_size, use_tpu)
  features_file = feature_cache.features_file(split_name, padded, input_file,
                                              sort_by_length=True)
  logging.info("***** Running %s on %s *****", split_name, input_file)
  logging.info("  Num examples = %d (%d actual, %d padding)", len(padded),
               num_actual_examples, len(padded) - num_actual_examples)
  input_fn = file_based_input_fn_builder(
      input_file=features_file, seq_length=feature_cache.max_seq_length,
      is_training=False, drop_remainder=use_tpu, padding=padding)
  outputs = [None] * num_actual_examples
  for output in estimator.predict(input_fn=input_fn):
    index = int(output.pop("example_index"))
    is_real = output.pop("is_real_example")
    if not is_real:
      continue
    if not 0 <= index < num_actual_examples or outputs[index] is not None:
      raise RuntimeError("features file %s: bad example_index %d" %
                         (features_file, index))
    outputs[index] = output
  if None in outputs:
    raise RuntimeError("got %d outputs for %d examples" %
                       (num_actual_examples - outputs.count(None),
                        num_actual_examples))
  return outputs


def evaluate_split(estimator, feature_cache, task, path, split, examples,
                   batch_size, use_tpu, global_step, padding="static"):
  """Official metrics of `task` on one dev split, plus losses and the step.

  Args:
    path: the split's file (`examples` were read from it).

  Returns:
    dict: eval_<metric> for each metric of the task, eval_loss (mean
    per-example loss over the real examples), loss (the same, the name
    BERT's eval_results.txt has), global_step.
  """
  outputs = predict_examples(estimator, feature_cache, "eval-%s" % split.name,
                             examples, path, batch_size, use_tpu, padding)
  predictions = np.array([o["predictions"] for o in outputs])
  results = task.metrics(predictions, np.array(task.label_values(examples)))
  results["eval_loss"] = float(np.mean([o["per_example_loss"]
                                        for o in outputs]))
  results["loss"] = results["eval_loss"]
  results["global_step"] = int(global_step)
  return results


def read_splits(task, data_dir, splits):
  """[(split, path, examples)] of the splits present (the first always).

  Raises:
    InputError: a missing or malformed file, or one without examples.
  """
  read = []
  for split in optional_splits(task, data_dir, splits):
    path = task.path(data_dir, split)
    examples = task.read_examples(data_dir, split)
    if not examples:
      raise InputError("%s: no examples to predict (%s %s)" % (
          path, task.name, split.name))
    read.append((split, path, examples))
  return read


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


def optional_splits(task, data_dir, splits):
  """The first split is required; later ones only if their file exists."""
  present = list(splits[:1])
  for split in splits[1:]:
    path = task.path(data_dir, split)
    if tf.io.gfile.exists(path):
      present.append(split)
    else:
      logging.warning("%s not found: skipping %s %s", path, task.name,
                      split.name)
  return present


def export_adapter_bundle(checkpoint, bundle_dir, method, task, bert_config,
                          max_seq_length, do_lower_case, model_shapes,
                          backbone_checkpoint=None):
  """Writes the adapter bundle of `checkpoint` and logs what it saves.

  `backbone_checkpoint` holds the frozen weights a compact checkpoint lacks.

  Raises:
    InputError: a checkpoint unreadable, cut short, or of another shape than
      the model the flags describe (--adapter_size, the task's labels...).
  """
  try:
    prefix = bundles.resolve_checkpoint(checkpoint)
    fileio.check_checkpoint_data(prefix)
  except ValueError as e:
    raise InputError("cannot export an adapter bundle from %s: %s" %
                     (checkpoint, errors.one_line(e)))
  saved = dict(tf.train.list_variables(prefix))
  for (name, shape) in model_shapes.items():
    if method.trains(name) and name in saved and (
        list(saved[name]) != list(shape)):
      raise InputError(
          "checkpoint %s is not the model the flags describe: %s has shape "
          "%s there but %s in the model of --tuning_mode=%s, --task_name=%s "
          "(%d labels) and --bert_config_file; give the settings it was "
          "trained with" % (
              prefix, name, list(saved[name]), list(shape), method.label(),
              task.name, len(task.get_labels())))
  try:
    info = bundles.export_bundle(checkpoint, bundle_dir, method, task,
                                 bert_config, max_seq_length, do_lower_case,
                                 model_variables=list(model_shapes),
                                 backbone_checkpoint=backbone_checkpoint)
  except (ValueError, tf.errors.OpError) as e:
    raise InputError("cannot export an adapter bundle from %s: %s" %
                     (checkpoint, errors.one_line(e)))
  # The same model fine-tuned without additions, in float32; Adam adds two
  # slots per variable.
  model_bytes = 4 * sum(int(np.prod(shape)) for (name, shape) in
                        model_shapes.items() if not method.adds(name))
  logging.info(
      "Adapter bundle %s: %s on disk (%s parameters). A full fine-tuned "
      "checkpoint of this model: %s, or %s with Adam state.", bundle_dir,
      fileio.human_bytes(info["bytes"]), "{:,}".format(info["num_parameters"]),
      fileio.human_bytes(model_bytes), fileio.human_bytes(3 * model_bytes))
  return info


# ---------------------------------------------------------------- checkpoints


# The backbone record beside compact checkpoints in --output_dir.
BACKBONE_RECORD = "backbone.json"


def compact_checkpoints(output_dir, init_checkpoint, method, model_shapes,
                        will_train):
  """Decides whether checkpoints in `output_dir` are compact; checks them.

  Every tuning method but a whole-model one (`full`) saves compact training
  checkpoints when there is an `init_checkpoint` to take the frozen weights
  from: the trained variables, their Adam slots and the step. Training
  records the backbone's fingerprint in `BACKBONE_RECORD` before its first
  checkpoint; every later start (resume, eval, predict, export) recomputes it
  on `init_checkpoint` and refuses a backbone that differs.

  Returns:
    whether the checkpoints of this run are (or will be) compact.

  Raises:
    InputError: compact checkpoints in `output_dir` with no, or another,
      backbone, or with a tuning method that saves whole models.
  """
  compact = not method.whole_model and bool(init_checkpoint)
  record_path = os.path.join(output_dir, BACKBONE_RECORD)
  latest = tf.train.latest_checkpoint(output_dir)
  saved = ({name for (name, _) in tf.train.list_variables(latest)}
           if latest else set())
  missing = [name for name in model_shapes if name not in saved]
  if not latest or not missing:
    # No checkpoint yet, or whole ones (they carry their own backbone, and
    # the compact ones training adds to them need the record).
    if compact and will_train:
      frozen = sorted(n for n in model_shapes if not method.trains(n))
      fingerprint = backbone_fingerprint(init_checkpoint, frozen)
      fileio.write_json(record_path, {"init_checkpoint": init_checkpoint,
                                      "fingerprint": fingerprint,
                                      "variables": frozen})
    return compact
  missing_trained = [name for name in missing if method.trains(name)]
  if missing_trained and not method.whole_model:
    raise InputError(
        "--output_dir=%s holds checkpoints without %d variables "
        "--tuning_mode=%s trains (e.g. %s): another tuning method wrote them; "
        "use another --output_dir" % (output_dir, len(missing_trained),
                                      method.name, missing_trained[0]))
  if not compact:
    raise InputError(
        "--output_dir=%s holds compact checkpoints (trained variables only); "
        "%s" % (output_dir, "--tuning_mode=%s saves whole models: use another "
                "--output_dir" % method.name if init_checkpoint else
                "give --init_checkpoint, the backbone they were trained on"))
  if not tf.io.gfile.exists(record_path):
    raise InputError("--output_dir=%s holds compact checkpoints but no %s to "
                     "tell their backbone" % (output_dir, BACKBONE_RECORD))
  try:
    record = json.loads(fileio.read_text(record_path))
    expected = record["fingerprint"]
    names = record["variables"]
  except (ValueError, KeyError, TypeError) as e:
    raise InputError("%s: corrupt (%s)" % (record_path, errors.one_line(e)))
  fingerprint = backbone_fingerprint(init_checkpoint, names)
  if fingerprint != expected:
    raise InputError(
        "--init_checkpoint=%s is not the backbone the checkpoints in "
        "--output_dir=%s were trained on (fingerprint %s..., they expect "
        "%s..., from %s)" % (init_checkpoint, output_dir, fingerprint[:12],
                             expected[:12], record.get("init_checkpoint")))
  logging.info("Compact checkpoints in %s: backbone %s checked (fingerprint "
               "%s...)", output_dir, init_checkpoint, fingerprint[:12])
  return compact


def check_latest_checkpoint(folder, what="--output_dir"):
  """Refuses a folder whose latest checkpoint is cut short or holds NaN/Inf
  (the state of a diverged run is never resumed, evaluated or exported)."""
  latest = tf.train.latest_checkpoint(folder)
  if not latest:
    return
  try:
    fileio.check_checkpoint_data(latest)
  except ValueError as e:
    raise InputError("%s=%s: checkpoint %s: %s" % (what, folder, latest, e))
  try:
    bundles.check_finite_checkpoint(latest, "%s=%s" % (what, folder))
  except ValueError as e:
    raise InputError("%s; start again in a new --output_dir" % e)


def diverged_message(error, settings):
  """One line for a run the divergence guard stopped."""
  match = re.search(r"\[step\] \[(\d+)\] \[loss\] \[([^\]]*)\]", str(error))
  (step, loss) = match.groups() if match else ("?", "?")
  latest = tf.train.latest_checkpoint(settings.output_dir)
  return ("training diverged at step %s: loss %s (NaN, Inf or above "
          "--max_loss=%g, or non-finite gradients); that step changed "
          "nothing, and the last good checkpoint is %s; try a lower "
          "--learning_rate (now %g)" % (
              step, loss, settings.max_loss, latest or "none (no step "
              "finished)", settings.learning_rate))


def checkpoint_step(model_dir):
  """The global step of the latest checkpoint in `model_dir`, or 0."""
  latest = tf.train.latest_checkpoint(model_dir)
  if not latest:
    return 0
  reader = tf.train.load_checkpoint(latest)
  return int(reader.get_tensor("global_step")) if reader.has_tensor(
      "global_step") else 0


def backbone_fingerprint(init_checkpoint, names):
  """bundles.backbone_fingerprint of `names` in `init_checkpoint`."""
  try:
    return bundles.backbone_fingerprint(
        tf.train.load_checkpoint(init_checkpoint), names)
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise InputError("--init_checkpoint=%s: %s" % (init_checkpoint,
                                                   errors.one_line(e, 200)))


# ---------------------------------------------------------------- the job


def ablated_layers(settings, method, num_layers):
  """The layers --ablate_adapters names, checked against the model.

  Raises:
    InputError: a bad list, or a tuning method that adds nothing to switch
      off.
  """
  if not settings.ablate_adapters:
    return []
  try:
    layers = base.parse_layer_list(settings.ablate_adapters, num_layers)
  except ValueError as e:
    raise InputError("--ablate_adapters=%s: %s" % (settings.ablate_adapters,
                                                  e))
  if not method.adds_anything:
    raise InputError("--ablate_adapters=%s: --tuning_mode=%s builds no "
                     "adapters" % (settings.ablate_adapters, method.name))
  logging.info("Additions of %s in layers %s switched off (pre-trained path "
               "there)", method.name, base.format_layer_list(layers))
  return layers


def load_backbone_inputs(settings):
  """The BERT config and tokenizer, checked against each other.

  Returns:
    (bert_config, tokenizer).
  """
  s = settings
  try:
    tokenization.validate_case_matches_checkpoint(s.do_lower_case,
                                                  s.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(s.bert_config_file)
    tokenizer = tokenization.FullTokenizer(vocab_file=s.vocab_file,
                                           do_lower_case=s.do_lower_case)
    # [CLS]/[SEP]/[UNK] missing would otherwise fail mid-way through features.
    tokenizer.check_special_tokens()
  except ValueError as e:
    raise InputError(e)
  if s.max_seq_length > bert_config.max_position_embeddings:
    raise InputError(
        "--max_seq_length=%d is above max_position_embeddings=%d of "
        "--bert_config_file=%s" % (s.max_seq_length,
                                   bert_config.max_position_embeddings,
                                   s.bert_config_file))
  if len(tokenizer.vocab) != bert_config.vocab_size:
    raise InputError("--vocab_file=%s has %d tokens but --bert_config_file=%s "
                     "says vocab_size=%d" % (s.vocab_file, len(tokenizer.vocab),
                                             s.bert_config_file,
                                             bert_config.vocab_size))
  return bert_config, tokenizer


def run(settings, explicit=()):
  """The whole job of run_classifier.py: train, export, evaluate, predict.

  Args:
    settings: `Settings`.
    explicit: names of the settings the user gave explicitly; only used to
      warn when an adapter bundle overrides one of them.

  Returns:
    {dev split name: eval results dict} for every split evaluated.

  Raises:
    InputError: any user error, as one line. Nothing half-written is left.
  """
  settings, bundle = with_bundle_settings(settings, explicit)
  validate_settings(settings)
  s = settings
  bert_config, tokenizer = load_backbone_inputs(s)
  task = glue.get_task(s.task_name, language=s.xnli_language)
  if task.is_pair and s.max_seq_length < 5:
    raise InputError(
        "--max_seq_length=%d is too short for %s, a task of text pairs: "
        "[CLS] a [SEP] b [SEP] needs at least 5 tokens to keep a word of "
        "each text" % (s.max_seq_length, task.name))
  method = build_tuning_method(s, bert_config.num_hidden_layers)
  ablated = ablated_layers(s, method, bert_config.num_hidden_layers)
  method = method.with_layers_off(ablated)
  padding = resolve_padding(s.padding, s.use_tpu)
  logging.info("Padding: %s (--padding=%s)", padding, s.padding)

  model_shapes = describe_model(bert_config, method, task.num_labels,
                                s.max_seq_length)
  try:
    method.check(list(model_shapes))
  except ValueError as e:
    raise InputError(e)
  if s.init_checkpoint:
    check_init_checkpoint(s.init_checkpoint, model_shapes, method,
                          s.bert_config_file,
                          allow_partial=s.allow_partial_init_checkpoint)
  elif s.do_train and not method.whole_model:
    logging.warning("No --init_checkpoint: training on a randomly "
                    "initialised, frozen BERT.")
  logging.info("%s", parameter_summary(model_shapes, method))
  # Every check above writes nothing; the first output comes next.
  check_output_paths(s)
  # Under multi_worker every worker runs this job in the same folder: the
  # chief writes the run's files, the others only train beside it.
  role = worker_role(s.strategy)
  with contextlib.ExitStack() as stack:
    try:
      stack.enter_context(run_folder.locked(
          s.output_dir, run_folder.LOCK if role.is_chief else
          "%s-%s-%d" % (run_folder.LOCK, role.task_type, role.task_index)))
    except run_folder.FolderInUse as e:
      raise InputError(e)
    return _run_in_folder(s, bundle, bert_config, tokenizer, task, method,
                          ablated, padding, model_shapes, role)


WorkerRole = collections.namedtuple(
    "WorkerRole", ["task_type", "task_index", "num_workers", "is_chief"])


def worker_role(strategy):
  """This process's place in a multi-worker cluster (TF_CONFIG).

  The chief is the "chief" task, or worker 0 when the cluster has none (the
  rule of tf.distribute and the Estimator). Outside multi_worker every
  process is its own chief.

  Raises:
    InputError: TF_CONFIG that is not the JSON of a cluster and a task.
  """
  if strategy != "multi_worker":
    return WorkerRole("worker", 0, 1, True)
  try:
    config = json.loads(os.environ.get("TF_CONFIG", ""))
    cluster = config["cluster"]
    task_type = config["task"]["type"]
    task_index = int(config["task"].get("index", 0))
    num_workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise InputError("TF_CONFIG is not the JSON of a cluster and this task "
                     "(%s)" % errors.one_line(e, 100))
  is_chief = task_type == "chief" or (
      task_type == "worker" and task_index == 0 and "chief" not in cluster)
  return WorkerRole(task_type, task_index, num_workers, is_chief)


def manifest_settings(settings, task, bert_config, method, model_shapes):
  """What `run_folder.MANIFEST` records about this job (see run_folder)."""
  s = settings
  fingerprint = None
  if s.init_checkpoint:
    fingerprint = backbone_fingerprint(
        s.init_checkpoint, [n for n in model_shapes if not method.is_new(n)])
  values = {
      "task_name": task.name,
      "xnli_language": task.language,
      "bert_config": bert_config.to_dict(),
      "vocab_sha256": fileio.file_sha256(s.vocab_file),
      "do_lower_case": s.do_lower_case,
      "max_seq_length": s.max_seq_length,
      "init_checkpoint_fingerprint": fingerprint,
      "train_sha256": None,
      "train_batch_size": s.train_batch_size,
      "learning_rate": s.learning_rate,
      "num_train_epochs": s.num_train_epochs,
      "warmup_proportion": s.warmup_proportion,
      "seed": s.seed,
      "padding": resolve_padding(s.padding, s.use_tpu),
      "precision": s.precision,
  }
  values.update(methods.settings_record(method))
  if s.do_train:
    values["train_sha256"] = fileio.file_sha256(task.path(s.data_dir,
                                                          task.train))
  return values


def check_run_folder(folder, manifest, training, what="--output_dir"):
  """Refuses a run folder whose manifest differs (run_folder.check_manifest);
  warns about checkpoints made before manifests existed."""
  try:
    recorded = run_folder.check_manifest(folder, manifest, training, what)
  except ValueError as e:
    raise InputError("%s; %s" % (e, (
        "rerun with its settings, use another --output_dir, or add "
        "--overwrite_output_dir=true to start it again" if training else
        "give the settings it was trained with")))
  if recorded is None:
    logging.warning("%s=%s has checkpoints but no %s (written before run "
                    "manifests): its settings cannot be checked", what, folder,
                    run_folder.MANIFEST)


def _run_in_folder(s, bundle, bert_config, tokenizer, task, method, ablated,
                   padding, model_shapes, role):
  """run() once the checks passed and the output folder is locked."""
  manifest = (None if bundle else
              manifest_settings(s, task, bert_config, method, model_shapes))
  if s.overwrite_output_dir and role.is_chief and (
      tf.io.gfile.exists(run_folder.manifest_path(s.output_dir)) or
      tf.train.latest_checkpoint(s.output_dir)):
    removed = run_folder.clear(s.output_dir)
    logging.info("--overwrite_output_dir: removed %d files and folders of "
                 "the previous run in %s", len(removed), s.output_dir)

  bundle_dir = (s.export_adapter_bundle or
                os.path.join(s.output_dir, "adapter_bundle"))
  if s.export_from_checkpoint:
    source = s.export_from_checkpoint
    if not tf.io.gfile.isdir(source):
      source = os.path.dirname(source)
    if tf.train.latest_checkpoint(source):
      check_latest_checkpoint(source, "--export_from_checkpoint")
      # The task, method and sizes must be those it was trained with.
      check_run_folder(source, manifest, training=False,
                       what="--export_from_checkpoint")
    # A compact checkpoint's backbone must be the one it was trained on.
    compact_checkpoints(source, s.init_checkpoint, method, model_shapes,
                        will_train=False)
    export_adapter_bundle(s.export_from_checkpoint, bundle_dir, method, task,
                          bert_config, s.max_seq_length, s.do_lower_case,
                          model_shapes, s.init_checkpoint)
    if not s.runs_model:
      return {}

  tf.io.gfile.makedirs(s.output_dir)
  orphans = fileio.remove_orphans(s.output_dir)
  if orphans:
    logging.info("Removed %d temporary files of killed runs from %s: %s",
                 len(orphans), s.output_dir, ", ".join(orphans))
  feature_cache = FeatureCache(s.output_dir, task, tokenizer, s.vocab_file,
                               s.do_lower_case, s.max_seq_length)
  # Where eval/predict find their weights: the training checkpoints in
  # --output_dir, or a bundle on the backbone in a fresh model_dir of its own
  # (so no stale checkpoint there can shadow the bundle).
  model_dir = s.output_dir
  init_checkpoints = [s.init_checkpoint] if s.init_checkpoint else []
  if bundle:
    try:
      bundles.check_bert_config(bundle, bert_config.to_dict(),
                                s.bert_config_file)
      bundles.check_backbone(bundle, s.init_checkpoint)
    except ValueError as e:
      raise InputError(e)
    model_dir = os.path.join(s.output_dir, "bundle_model")
    fileio.remove_quietly(model_dir)
    init_checkpoints = [bundle.checkpoint, s.init_checkpoint]
  elif not s.do_train and not tf.train.latest_checkpoint(s.output_dir):
    raise InputError("--output_dir=%s holds no trained checkpoint to evaluate "
                     "or predict with; add --do_train=true, or give "
                     "--adapter_bundle" % s.output_dir)

  if not bundle and tf.train.latest_checkpoint(s.output_dir):
    check_latest_checkpoint(s.output_dir)
    check_run_folder(s.output_dir, manifest, training=s.do_train)
  # With a bundle nothing is restored from model_dir: no compact saver.
  compact = not bundle and compact_checkpoints(
      s.output_dir, s.init_checkpoint, method, model_shapes,
      s.do_train and role.is_chief)

  def estimator(**kwargs):
    return make_estimator(s, bert_config, task.num_labels, method, model_dir,
                          init_checkpoints, compact_checkpoints=compact,
                          **kwargs)

  # Every dev and test file is read (and checked) before training: a broken
  # test file is found now, not after an hour of training.
  eval_sets = read_splits(task, s.data_dir, task.dev) if s.do_eval else []
  predict_sets = (read_splits(task, s.data_dir, task.test) if s.do_predict
                  else [])

  if s.precision != "float32":
    logging.info(
        "--precision=%s: the encoder computes in %s; variables, LayerNorm, "
        "softmax and the loss stay float32%s", s.precision,
        PRECISIONS[s.precision][0].name,
        "; dynamic loss scaling" if PRECISIONS[s.precision][1] else "")
    # (validate_settings refused float16 on TPU.)
    if s.precision == "mixed_float16" and not gpu_available():
      logging.warning("--precision=mixed_float16 without a GPU: CPUs have no "
                      "fast float16 kernels, so this runs slower than "
                      "float32 (it is meant for GPUs)")
  if s.do_train:
    train_path = task.path(s.data_dir, task.train)
    train_examples = task.get_train_examples(s.data_dir)
    if not train_examples:
      raise InputError("%s: no training examples" % train_path)
    num_train_steps = max(1, int(len(train_examples) / s.train_batch_size *
                                 s.num_train_epochs))
    num_warmup_steps = int(num_train_steps * s.warmup_proportion)
    train_file = feature_cache.features_file("train", train_examples,
                                             train_path)
    logging.info("***** Running training *****")
    logging.info("  Num examples = %d", len(train_examples))
    logging.info("  Batch size = %d", s.train_batch_size)
    if s.strategy != "one_device":
      replicas = (s.num_cpu_devices or len(tf.config.list_physical_devices(
          "GPU")) or 1) if s.strategy == "mirrored" else None
      logging.info("  --strategy=%s: %s", s.strategy, (
          "%d replicas of %d examples each (the global batch of %d is split "
          "over them; the schedule counts global batches)" % (
              replicas, s.train_batch_size // replicas, s.train_batch_size)
          if replicas else "the global batch of %d is split over every "
          "worker's replicas" % s.train_batch_size))
    logging.info("  Num steps = %d", num_train_steps)
    # A resumed run skips the batches it consumed before; with dropout a
    # function of the step (modeling.dropout_seed) it then ends exactly as
    # an uninterrupted run.
    start_step = checkpoint_step(s.output_dir)
    if start_step:
      logging.info("Resuming at step %d of %d", start_step, num_train_steps)
    train_input_fn = file_based_input_fn_builder(
        input_file=train_file, seq_length=s.max_seq_length,
        is_training=True, drop_remainder=True, seed=s.seed, padding=padding,
        skip_batches=start_step)
    if role.is_chief:
      run_folder.write_manifest(s.output_dir, manifest, {
          "init_checkpoint": s.init_checkpoint, "train_file": train_path,
          "vocab_file": s.vocab_file, "num_train_steps": num_train_steps})
    start = time.time()
    stopper = StopOnSignalHook()
    try:
      trainer = estimator(num_train_steps=num_train_steps,
                          num_warmup_steps=num_warmup_steps)
      if s.strategy == "multi_worker":
        # The Estimator runs several workers only through train_and_evaluate
        # (its "distribute coordinator"); with no evaluator task in TF_CONFIG
        # the eval spec is never used: evaluation runs after training, here.
        tf.estimator.train_and_evaluate(
            trainer,
            tf.estimator.TrainSpec(train_input_fn, max_steps=num_train_steps,
                                   hooks=[stopper]),
            tf.estimator.EvalSpec(train_input_fn, steps=1))
      else:
        trainer.train(input_fn=train_input_fn, max_steps=num_train_steps,
                      hooks=[stopper])
    except tf.errors.InvalidArgumentError as e:
      if optimization.DIVERGED_MARKER not in str(e):
        raise
      raise InputError(diverged_message(e, s))
    if stopper.received and stopper.step < num_train_steps:
      raise InputError(
          "stopped by %s at step %d of %d; saved %s; run the same command "
          "again to resume" % (stopper.received, stopper.step,
                               num_train_steps,
                               tf.train.latest_checkpoint(s.output_dir)))
    logging.info("Training took %.1f s", time.time() - start)
    if not role.is_chief:
      # The Estimator gave this worker a scratch model_dir of its own.
      fileio.remove_quietly(os.path.join(
          s.output_dir, "tmp_%s_%d" % (role.task_type, role.task_index)))
      logging.info("%s %d of %d (not the chief): trained; the chief writes "
                   "the checkpoints, the bundle and the results",
                   role.task_type, role.task_index, role.num_workers)
      return {}
    if not method.whole_model or s.export_adapter_bundle:
      export_adapter_bundle(s.output_dir, bundle_dir, method, task,
                            bert_config, s.max_seq_length, s.do_lower_case,
                            model_shapes, s.init_checkpoint)
    else:
      # A whole-model bundle is the model again, and no backbone takes it.
      logging.info("tuning_mode=%s: the checkpoint is the model; no adapter "
                   "bundle written (--export_adapter_bundle writes one)",
                   method.name)

  all_results = collections.OrderedDict()
  outputs = []  # (path, text): written together at the end
  if s.do_eval:
    evaluator = estimator(predict_batch_size=s.eval_batch_size)
    global_step = (bundle.global_step if bundle else
                   evaluator.get_variable_value("global_step"))
    for (split, path, examples) in eval_sets:
      results = evaluate_split(evaluator, feature_cache, task, path, split,
                               examples, s.eval_batch_size, s.use_tpu,
                               global_step, padding)
      text = format_eval_results(results)
      logging.info("***** Eval results: %s %s *****", task.name, split.name)
      for line in text.splitlines():
        logging.info("  %s", line)
      stem = "eval_results"
      if ablated:
        # Ablations of one model are evaluated side by side: each its file.
        stem += "_ablated_" + base.format_layer_list(ablated)
      outputs.append((os.path.join(s.output_dir, result_file_name(
          stem, split, split is eval_sets[0][0], "txt")), text))
      all_results[split.name] = results

  if s.do_predict:
    predictor = estimator()
    for (split, path, examples) in predict_sets:
      outputs.extend(predict_test_split(
          predictor, feature_cache, task, path, split, examples,
          split is task.test[0], s.predict_batch_size, s.use_tpu,
          s.output_dir, padding))

  # Every result file of the job at once: a failure in a later split leaves
  # none of the earlier ones' files claiming to be this run's.
  for (path, text) in outputs:
    fileio.write_text(path, text)
    logging.info("Wrote %s", path)
  if bundle:
    fileio.remove_quietly(model_dir)
  return all_results


def predict_test_split(estimator, feature_cache, task, path, split, examples,
                       first, batch_size, use_tpu, output_dir,
                       padding="static"):
  """Predicts one test split.

  Returns:
    [(path, text)]: test_results*.tsv and, for GLUE tasks, the server's file.
  """
  outputs = predict_examples(estimator, feature_cache,
                             "predict-%s" % split.name, examples, path,
                             batch_size, use_tpu, padding)
  if task.is_regression:
    rows = ["%s\n" % o["predictions"] for o in outputs]
  else:
    rows = ["\t".join(str(p) for p in o["probabilities"]) + "\n"
            for o in outputs]
  files = [(os.path.join(output_dir, result_file_name(
      "test_results", split, first, "tsv")), "".join(rows))]
  if task.has_submission:
    files.append((os.path.join(output_dir, split.name + ".tsv"),
                  glue.submission_text(task, [e.index for e in examples],
                                       [o["predictions"] for o in outputs])))
  return files
