# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Evaluation and prediction: the model over a split's examples, GLUE's
metrics on dev, and the result files (eval_results.txt, test_results.tsv,
the GLUE server's file)."""

import collections
import dataclasses
import os

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert import glue
from adapter_bert.classifier import features
from adapter_bert.classifier import inputs

InputError = errors.InputError

# One split of a task as read: the `glue.Split`, its file and its examples.
SplitData = collections.namedtuple("SplitData", ["split", "path", "examples"])


@dataclasses.dataclass(frozen=True)
class Predictor(object):
  """A trained model and how examples go through it: its estimator, the
  feature cache, the batch size, TPU batches (full ones) and the padding
  policy ("static", "batch" or "bucket", see `inputs.resolve_padding`)."""

  estimator: object
  feature_cache: features.FeatureCache
  batch_size: int
  use_tpu: bool = False
  padding: str = "static"

  def predict(self, split_name, examples, input_file):
    """`predict_examples` with this predictor's model and batches."""
    return predict_examples(self.estimator, self.feature_cache, split_name,
                            examples, input_file, self.batch_size,
                            self.use_tpu, self.padding)


def pad_for_tpu(examples, batch_size, use_tpu):
  """On TPU every batch is full: pads with weight-0 examples. Else a copy."""
  padded = list(examples)
  while use_tpu and len(padded) % batch_size != 0:
    padded.append(features.PaddingInputExample())
  return padded


def predict_examples(estimator, feature_cache, split_name, examples,
                     input_file, batch_size, use_tpu, padding="static"):
  """Runs the model over `examples`; returns one output dict per example.

  The features file is sorted by length (so that "batch" padding wastes
  little) and on TPU padded to full batches; outputs are put back in the
  order of `examples` and the padding's are cut, so callers see exactly one
  output per real example, in order.

  Args:
    padding: "static", "batch" or "bucket" (see `inputs.resolve_padding`).
  """
  num_actual_examples = len(examples)
  padded = pad_for_tpu(examples, batch_size, use_tpu)
  features_file = feature_cache.features_file(split_name, padded, input_file,
                                              sort_by_length=True)
  logging.info("***** Running %s on %s *****", split_name, input_file)
  logging.info("  Num examples = %d (%d actual, %d padding)", len(padded),
               num_actual_examples, len(padded) - num_actual_examples)
  input_fn = inputs.file_based_input_fn_builder(
      input_file=features_file, seq_length=feature_cache.max_seq_length,
      is_training=False, drop_remainder=use_tpu, padding=padding)
  return outputs_in_order(estimator.predict(input_fn=input_fn),
                          num_actual_examples, features_file)


def outputs_in_order(outputs, num_actual_examples, features_file):
  """The real examples' outputs, in the order of the examples.

  Args:
    outputs: output dicts, each with its example_index and is_real_example
      (in the order of `features_file`, sorted by length).
    num_actual_examples: how many real examples there are.
    features_file: the file they came from, for the error message.

  Returns:
    [output dict] without those two keys, one per real example.

  Raises:
    RuntimeError: an example missing, repeated or out of range.
  """
  ordered = [None] * num_actual_examples
  for output in outputs:
    index = int(output.pop("example_index"))
    is_real = output.pop("is_real_example")
    if not is_real:
      continue
    if not 0 <= index < num_actual_examples or ordered[index] is not None:
      raise RuntimeError("features file %s: bad example_index %d" %
                         (features_file, index))
    ordered[index] = output
  if None in ordered:
    raise RuntimeError("got %d outputs for %d examples" %
                       (num_actual_examples - ordered.count(None),
                        num_actual_examples))
  return ordered


def evaluate_split(predictor, task, data, global_step):
  """Official metrics of `task` on one dev split, plus losses and the step.

  Args:
    predictor: the `Predictor` of the trained model.
    data: the split's `SplitData` (its examples, read from its file).

  Returns:
    dict: eval_<metric> for each metric of the task, eval_loss (mean
    per-example loss over the real examples), loss (the same, the name
    BERT's eval_results.txt has), global_step.
  """
  outputs = predictor.predict("eval-%s" % data.split.name, data.examples,
                              data.path)
  predictions = np.array([o["predictions"] for o in outputs])
  results = task.metrics(predictions,
                         np.array(task.label_values(data.examples)))
  results["eval_loss"] = float(np.mean([o["per_example_loss"]
                                        for o in outputs]))
  results["loss"] = results["eval_loss"]
  results["global_step"] = int(global_step)
  return results


def read_splits(task, data_dir, splits):
  """[SplitData(split, path, examples)] of the splits present (the first
  always).

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
    read.append(SplitData(split, path, examples))
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


def predict_test_split(predictor, task, data, first, output_dir):
  """Predicts one test split.

  Args:
    predictor: the `Predictor` of the trained model.
    data: the split's `SplitData`.
    first: whether it is the task's first test split (its files have no
      split suffix).
    output_dir: where the files go.

  Returns:
    [(path, text)]: test_results*.tsv and, for GLUE tasks, the server's file.
  """
  (split, examples) = (data.split, data.examples)
  outputs = predictor.predict("predict-%s" % split.name, examples, data.path)
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
