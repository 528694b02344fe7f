# coding=utf-8
"""metrics.py against values computed by hand (the arithmetic is in comments).

Pure numpy: no TensorFlow, and no scipy (not a project dependency) even when
it happens to be installed.
"""

import math
import warnings

import numpy as np
import pytest

from adapter_bert import glue
from adapter_bert import metrics

ALL_METRICS = (metrics.accuracy, metrics.f1, metrics.matthews_corrcoef,
               metrics.pearson, metrics.spearman)


# ---------------------------------------------------------------- accuracy

def test_accuracy_by_hand():
  # predictions 1 0 1 1 0
  # labels      1 1 1 0 0
  # match       y n y n y  -> 3 / 5
  assert metrics.accuracy([1, 0, 1, 1, 0], [1, 1, 1, 0, 0]) == pytest.approx(0.6)


def test_accuracy_all_right_and_all_wrong():
  assert metrics.accuracy([2, 0, 1], [2, 0, 1]) == 1.0
  assert metrics.accuracy([0, 1, 2], [1, 2, 0]) == 0.0


def test_accuracy_returns_python_float():
  assert type(metrics.accuracy(np.array([1, 0]), np.array([1, 1]))) is float


# ---------------------------------------------------------------------- F1

def test_f1_by_hand():
  # predictions 1 1 1 0 0 1
  # labels      1 0 1 1 0 0
  # TP = positions 0, 2 = 2; FP = positions 1, 5 = 2; FN = position 3 = 1
  # P = 2/4 = 1/2, R = 2/3, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
  # (same as 2TP / (2TP + FP + FN) = 4 / 7)
  value = metrics.f1([1, 1, 1, 0, 0, 1], [1, 0, 1, 1, 0, 0])
  assert value == pytest.approx(4.0 / 7.0)


def test_f1_of_the_positive_class_only():
  # Swapping which class is positive changes the score:
  # positive = 0: TP = position 4 = 1, FP = position 3 = 1, FN = 1, 5 = 2
  # P = 1/2, R = 1/3, F1 = 2 * (1/6) / (5/6) = 2/5
  value = metrics.f1([1, 1, 1, 0, 0, 1], [1, 0, 1, 1, 0, 0], positive_label=0)
  assert value == pytest.approx(2.0 / 5.0)


def test_f1_perfect():
  assert metrics.f1([1, 0, 1], [1, 0, 1]) == 1.0


def test_f1_no_positives_anywhere_is_zero():
  value = metrics.f1([0, 0, 0], [0, 0, 0])
  assert value == 0.0 and not math.isnan(value)


def test_f1_no_true_positive_is_zero():
  # Predicted positives but no positive label (and the reverse): TP = 0.
  assert metrics.f1([1, 1, 0], [0, 0, 0]) == 0.0
  assert metrics.f1([0, 0, 0], [1, 0, 1]) == 0.0


# --------------------------------------------------------------------- MCC

def test_mcc_by_hand():
  # predictions 1 1 1 1 0 0 0 1
  # labels      1 1 1 0 0 0 1 0
  # TP = 3 (0, 1, 2), FP = 2 (3, 7), TN = 2 (4, 5), FN = 1 (6)
  # MCC = (TP*TN - FP*FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))
  #     = (6 - 2) / sqrt(5 * 4 * 4 * 3) = 4 / sqrt(240) = 0.2581988897...
  value = metrics.matthews_corrcoef([1, 1, 1, 1, 0, 0, 0, 1],
                                    [1, 1, 1, 0, 0, 0, 1, 0])
  assert value == pytest.approx(4.0 / math.sqrt(240.0))
  assert value == pytest.approx(0.2581988897)


def test_mcc_perfect_and_inverted():
  # TP = 2, TN = 2, FP = FN = 0: 4 / sqrt(2*2*2*2) = 1
  assert metrics.matthews_corrcoef([1, 0, 1, 0], [1, 0, 1, 0]) == pytest.approx(1.0)
  # TP = TN = 0, FP = FN = 2: -4 / sqrt(2*2*2*2) = -1
  assert metrics.matthews_corrcoef([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


@pytest.mark.parametrize("constant", [0, 1])
def test_mcc_all_one_class_predictions_is_zero_not_nan(constant):
  # CoLA model predicting one class: TP+FP = 0 or TN+FN = 0, so the
  # denominator is 0; GLUE reports 0.
  value = metrics.matthews_corrcoef([constant] * 6, [1, 0, 1, 1, 0, 1])
  assert value == 0.0 and not math.isnan(value)


def test_mcc_all_one_class_labels_is_zero_not_nan():
  value = metrics.matthews_corrcoef([1, 0, 1, 0], [1, 1, 1, 1])
  assert value == 0.0 and not math.isnan(value)


# ----------------------------------------------------------------- Pearson

def test_pearson_by_hand_on_four_points():
  # x = 1 2 3 4 (mean 2.5), y = 2 4 5 9 (mean 5)
  # dx = -1.5 -0.5 0.5 1.5 ; dy = -3 -1 0 4
  # sum dx*dy = 4.5 + 0.5 + 0 + 6 = 11
  # sum dx^2 = 2.25 + 0.25 + 0.25 + 2.25 = 5 ; sum dy^2 = 9 + 1 + 0 + 16 = 26
  # r = 11 / sqrt(5 * 26) = 11 / sqrt(130) = 0.9647638212...
  value = metrics.pearson([1, 2, 3, 4], [2, 4, 5, 9])
  assert value == pytest.approx(11.0 / math.sqrt(130.0))
  assert value == pytest.approx(0.9647638212)


def test_pearson_is_symmetric_and_sign_aware():
  assert metrics.pearson([2, 4, 5, 9], [1, 2, 3, 4]) == pytest.approx(
      11.0 / math.sqrt(130.0))
  # y -> -y flips the sign.
  assert metrics.pearson([1, 2, 3, 4], [-2, -4, -5, -9]) == pytest.approx(
      -11.0 / math.sqrt(130.0))


def test_pearson_float32_scores_like_model_output():
  x = np.array([1, 2, 3, 4], dtype=np.float32)
  y = np.array([2, 4, 5, 9], dtype=np.float32)
  assert metrics.pearson(x, y) == pytest.approx(11.0 / math.sqrt(130.0))


# ---------------------------------------------------------------- Spearman

def test_average_ranks_share_ties():
  # sorted: 10 (rank 1), 20 20 (ranks 2 and 3 -> 2.5 each), 30 (rank 4)
  np.testing.assert_array_equal(metrics._average_ranks([30, 10, 20, 20]),
                                [4.0, 1.0, 2.5, 2.5])
  # three-way tie at ranks 1..3 -> 2 each
  np.testing.assert_array_equal(metrics._average_ranks([7, 7, 7, 9]),
                                [2.0, 2.0, 2.0, 4.0])


def test_spearman_with_ties_by_hand():
  # x = 10 20 20 30 40 -> ranks 1 2.5 2.5 4 5 (the two 20s share ranks 2, 3)
  # y =  1  3  2  5  4 -> ranks 1 3   2   5 4
  # both mean 3: dx = -2 -0.5 -0.5 1 2 ; dy = -2 0 -1 2 1
  # sum dx*dy = 4 + 0 + 0.5 + 2 + 2 = 8.5
  # sum dx^2 = 4 + 0.25 + 0.25 + 1 + 4 = 9.5 ; sum dy^2 = 4 + 0 + 1 + 4 + 1 = 10
  # rho = 8.5 / sqrt(95) = 0.8720816...
  value = metrics.spearman([10, 20, 20, 30, 40], [1, 3, 2, 5, 4])
  assert value == pytest.approx(8.5 / math.sqrt(95.0))
  assert value == pytest.approx(0.8720816)


def test_spearman_ties_on_both_sides_by_hand():
  # x = 1 1 2 3 -> ranks 1.5 1.5 3 4 ; y = 5 6 6 7 -> ranks 1 2.5 2.5 4
  # means 2.5: dx = -1 -1 0.5 1.5 ; dy = -1.5 0 0 1.5
  # sum dx*dy = 1.5 + 0 + 0 + 2.25 = 3.75
  # sum dx^2 = 1 + 1 + 0.25 + 2.25 = 4.5 ; sum dy^2 = 2.25 + 0 + 0 + 2.25 = 4.5
  # rho = 3.75 / 4.5 = 5/6
  assert metrics.spearman([1, 1, 2, 3], [5, 6, 6, 7]) == pytest.approx(5.0 / 6.0)


def test_spearman_is_one_for_monotone_nonlinear_while_pearson_is_not():
  x, y = [1, 2, 3, 4], [1, 8, 27, 64]
  assert metrics.spearman(x, y) == pytest.approx(1.0)
  assert metrics.pearson(x, y) < 0.99
  assert metrics.spearman(x, [64, 27, 8, 1]) == pytest.approx(-1.0)


# -------------------------------------------------------- constant scores

@pytest.mark.parametrize("metric", [metrics.pearson, metrics.spearman])
def test_constant_predictions_correlate_zero_not_nan(metric):
  # 2.5 and the ranks are exact in binary, so the centred values are exactly 0.
  value = metric([2.5, 2.5, 2.5, 2.5], [1.0, 2.0, 3.0, 4.0])
  assert value == 0.0 and not math.isnan(value)
  value = metric([1.0, 2.0, 3.0, 4.0], [2.5, 2.5, 2.5, 2.5])
  assert value == 0.0 and not math.isnan(value)


@pytest.mark.parametrize("predictions, labels", [
    # Both sides constant (e.g. a tiny eval set): currently returns 1.0.
    ([0.1, 0.1, 0.1], [0.1, 0.1, 0.1]),
    ([0.1, 0.1, 0.1], [0.2, 0.2, 0.2]),
    # A collapsed STS-B model: float32 constant scores vs varied labels.
    (np.full(7, 2.7, dtype=np.float32),
     np.array([0.0, 1.2, 2.4, 3.6, 4.8, 5.0, 0.6], dtype=np.float32)),
    ([0.1, 0.1, 0.1], [1.0, 2.0, 4.0]),
], ids=["const-vs-const-same", "const-vs-const-other", "float32-const",
        "0.1-const"])
def test_pearson_constant_side_is_exactly_zero_despite_rounding(predictions,
                                                                labels):
  """metrics.pearson promises 0 when either side is constant.

  It centres with np.mean, which is not exact for values like 0.1 (3 * 0.1 / 3
  != 0.1), so a constant side becomes tiny non-zero residues instead of exact
  zeros; the `denominator == 0` guard then misses. Two constant sides give
  residue / residue = 1.0 (a "perfect" correlation); one gives ~1e-16..1e-7.
  """
  assert metrics.pearson(predictions, labels) == 0.0


# ---------------------------------------------------- empty and mismatched

@pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda m: m.__name__)
def test_empty_arrays_give_zero(metric):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # numpy: mean of empty
    value = metric([], [])
  assert value == 0.0 and not math.isnan(value)


@pytest.mark.parametrize("metric", ALL_METRICS, ids=lambda m: m.__name__)
def test_length_mismatch_is_value_error(metric):
  with pytest.raises(ValueError, match="3 predictions for 2 labels"):
    metric([1, 0, 1], [1, 0])


def test_compute_length_mismatch_is_value_error():
  with pytest.raises(ValueError):
    metrics.compute(("mcc", "accuracy"), [1, 0, 1], [1, 0])


# ------------------------------------------------------------ each task's


@pytest.mark.parametrize("task_key, keys", [
    ("cola", {"eval_mcc", "eval_accuracy"}),
    ("mrpc", {"eval_accuracy", "eval_f1"}),
    ("qqp", {"eval_accuracy", "eval_f1"}),
    ("stsb", {"eval_pearson", "eval_spearman"}),
    ("sst2", {"eval_accuracy"}),
    ("mnli", {"eval_accuracy"}),
    ("qnli", {"eval_accuracy"}),
    ("rte", {"eval_accuracy"}),
    ("wnli", {"eval_accuracy"}),
    ("xnli", {"eval_accuracy"}),
])
def test_task_metrics_keys(task_key, keys):
  predictions = np.array([1, 0, 1, 1, 0, 0])
  labels = np.array([1, 0, 0, 1, 1, 0])
  result = glue.get_task(task_key).metrics(predictions, labels)
  assert set(result) == keys
  for value in result.values():
    assert type(value) is float and not math.isnan(value)


@pytest.mark.parametrize("task_key, primary", [
    ("cola", "eval_mcc"), ("mrpc", "eval_f1"), ("qqp", "eval_f1"),
    ("stsb", "eval_spearman"), ("sst2", "eval_accuracy"),
    ("rte", "eval_accuracy"), ("mnli", "eval_accuracy")])
def test_primary_metric_is_one_of_the_task_metrics(task_key, primary):
  task = glue.get_task(task_key)
  assert task.primary_metric == primary
  assert primary in task.metrics([1, 0], [1, 1])


def test_task_metrics_values_are_the_metrics():
  # predictions 1 1 1 1 0 0 0 1 / labels 1 1 1 0 0 0 1 0 (MCC example above):
  # accuracy = (TP + TN) / 8 = 5/8; F1 = 2*3 / (2*3 + 2 + 1) = 6/9
  predictions = [1, 1, 1, 1, 0, 0, 0, 1]
  labels = [1, 1, 1, 0, 0, 0, 1, 0]
  assert glue.get_task("cola").metrics(predictions, labels) == pytest.approx(
      {"eval_mcc": 4.0 / math.sqrt(240.0), "eval_accuracy": 5.0 / 8.0})
  assert glue.get_task("mrpc").metrics(predictions, labels) == pytest.approx(
      {"eval_accuracy": 5.0 / 8.0, "eval_f1": 6.0 / 9.0})
  assert glue.get_task("stsb").metrics([1, 2, 3, 4], [2, 4, 5, 9]) == (
      pytest.approx({"eval_pearson": 11.0 / math.sqrt(130.0),
                     "eval_spearman": 1.0}))
