# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The input pipeline: `input_fn`s over a features TFRecord, and how their
batches are padded (static, per batch, or by length buckets)."""

import tensorflow.compat.v1 as tf


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


# What each record of a features file holds (see features._feature_to_example).
_NAME_TO_FEATURES = {
    "input_ids": tf.io.VarLenFeature(tf.int64),
    "segment_ids": tf.io.VarLenFeature(tf.int64),
    "label_ids": tf.io.FixedLenFeature([], tf.float32),
    "is_real_example": tf.io.FixedLenFeature([], tf.int64),
    "example_index": tf.io.FixedLenFeature([], tf.int64),
}


def decode_record(record):
  """One record as the model's int32 features, with an all-ones input_mask."""
  example = tf.io.parse_single_example(record, _NAME_TO_FEATURES)
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
          for name in list(_NAME_TO_FEATURES) + ["input_mask"]}


def round_up_width(batch, pad_to_multiple, seq_length):
  """Pads [batch, width] features to a multiple of pad_to_multiple (never
  beyond seq_length)."""
  width = tf.shape(batch["input_ids"])[1]
  target = tf.minimum(
      (width + pad_to_multiple - 1) // pad_to_multiple * pad_to_multiple,
      seq_length)
  for name in SEQUENCE_FEATURES:
    batch[name] = tf.pad(batch[name], [[0, 0], [0, target - width]])
  return batch


def batch_rows(d, batch_size, seq_length, padding, bucket, drop_remainder):
  """Batches decoded rows: padded to seq_length ("static"), to each batch's
  longest row, or (`bucket`) drawn from rows of similar length first."""
  if bucket:
    boundaries = length_bucket_boundaries(seq_length)
    return d.bucket_by_sequence_length(
        element_length_func=lambda f: tf.shape(f["input_ids"])[0],
        bucket_boundaries=boundaries,
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padded_shapes=padded_shapes(None),
        drop_remainder=drop_remainder)
  return d.padded_batch(
      batch_size,
      padded_shapes=padded_shapes(seq_length if padding == "static"
                                  else None),
      drop_remainder=drop_remainder)


def file_based_input_fn_builder(input_file, seq_length, is_training,
                                drop_remainder, seed=None, padding="static",
                                pad_to_multiple=PAD_TO_MULTIPLE,
                                skip_batches=0):
  """An `input_fn` for TPUEstimator reading a features TFRecord.

  Args:
    input_file: written by `features.file_based_convert_examples_to_features`.
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
    d = batch_rows(d, batch_size, seq_length, padding,
                   padding == "bucket" and is_training, drop_remainder)
    if padding != "static" and pad_to_multiple > 1:
      d = d.map(lambda batch: round_up_width(batch, pad_to_multiple,
                                             seq_length))
    if skip_batches:
      d = d.skip(skip_batches * replicas)
    return d.prefetch(tf.data.AUTOTUNE)

  return input_fn
