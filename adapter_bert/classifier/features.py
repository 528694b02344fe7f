# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Examples to features: one example's model inputs, and the cache of their
TFRecords in --output_dir (named by a hash of everything that shapes them,
checked by a record count and a checksum before reuse)."""

import collections
import hashlib
import json
import os
import time

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import console
from adapter_bert import errors
from adapter_bert import fileio


# Bumped whenever the feature format changes, so old caches are not reused.
FEATURE_CACHE_VERSION = 3


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


def batch_arrays(examples, label_list, max_seq_length, tokenizer):
  """One in-memory batch of `examples`, padded to its longest row (as
  --padding=batch) for a graph fed directly: {"input_ids", "input_mask",
  "segment_ids": int32 [rows, longest], "label_ids": int32 [rows]}."""
  rows = [convert_single_example(i, e, label_list, max_seq_length, tokenizer)
          for (i, e) in enumerate(examples)]
  longest = max(sum(f.input_mask) for f in rows)
  batch = {name: np.array([getattr(f, name)[:longest] for f in rows],
                          np.int32)
           for name in ("input_ids", "input_mask", "segment_ids")}
  batch["label_ids"] = np.array([f.label_id for f in rows], np.int32)
  return batch


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
