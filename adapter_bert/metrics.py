# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""GLUE's official metrics, computed exactly over a whole dev set in numpy.

Each function takes the predictions and the gold labels of every real example
(padding already removed) and returns a float. Degenerate inputs give the value
the GLUE scorer gives, never NaN: a constant prediction has MCC 0 and
correlation 0; no positive prediction and no positive label gives F1 0.
"""

import numpy as np


def accuracy(predictions, labels):
  """Fraction of exact matches."""
  predictions, labels = _check_same_length(predictions, labels)
  if not len(labels):
    return 0.0
  return float(np.mean(predictions == labels))


def f1(predictions, labels, positive_label=1):
  """F1 of the positive class (MRPC, QQP)."""
  predictions, labels = _check_same_length(predictions, labels)
  predicted = predictions == positive_label
  actual = labels == positive_label
  true_positives = float(np.sum(predicted & actual))
  denominator = float(np.sum(predicted) + np.sum(actual))
  if denominator == 0.0:
    return 0.0
  return 2.0 * true_positives / denominator


def matthews_corrcoef(predictions, labels):
  """Matthews correlation of a binary task (CoLA); 0 when undefined."""
  predictions, labels = _check_same_length(predictions, labels)
  predicted = predictions == 1
  actual = labels == 1
  tp = float(np.sum(predicted & actual))
  tn = float(np.sum(~predicted & ~actual))
  fp = float(np.sum(predicted & ~actual))
  fn = float(np.sum(~predicted & actual))
  denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
  if denominator == 0.0:
    return 0.0
  return float((tp * tn - fp * fn) / denominator)


def pearson(predictions, labels):
  """Pearson correlation (STS-B); 0 when either side is constant."""
  x, y = _check_same_length(predictions, labels)
  x = x.astype(np.float64)
  y = y.astype(np.float64)
  # Tested before centring: the mean of [0.1] * 3 is not exactly 0.1, so a
  # constant side would centre to rounding noise and correlate perfectly.
  if x.size == 0 or np.all(x == x.flat[0]) or np.all(y == y.flat[0]):
    return 0.0
  x = x - np.mean(x)
  y = y - np.mean(y)
  denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
  if denominator == 0.0:
    return 0.0
  return float(np.sum(x * y) / denominator)


def spearman(predictions, labels):
  """Spearman rank correlation (STS-B): Pearson of average ranks (ties shared)."""
  x, y = _check_same_length(predictions, labels)
  return pearson(_average_ranks(x), _average_ranks(y))


def _average_ranks(values):
  """Ranks 1..n; tied values all get the mean of the ranks they span."""
  values = np.asarray(values, dtype=np.float64)
  order = np.argsort(values, kind="mergesort")
  ranks = np.empty(len(values), dtype=np.float64)
  sorted_values = values[order]
  start = 0
  while start < len(values):
    end = start
    while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
      end += 1
    ranks[order[start:end + 1]] = (start + end) / 2.0 + 1.0
    start = end + 1
  return ranks


def _check_same_length(predictions, labels):
  predictions = np.asarray(predictions)
  labels = np.asarray(labels)
  if predictions.shape != labels.shape:
    raise ValueError("%d predictions for %d labels" %
                     (predictions.size, labels.size))
  return predictions, labels


# The metrics a task may name, by their name in eval_results.txt.
METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def compute(names, predictions, labels):
  """{"eval_<name>": value} of the named metrics (a task's `metric_names`).

  Args:
    names: keys of METRICS ("accuracy", "f1", "mcc", "pearson", "spearman").
    predictions: class ids (classification) or scores (regression).
    labels: gold class ids or scores.

  Returns:
    dict of floats.
  """
  return {"eval_" + name: METRICS[name](predictions, labels) for name in names}
