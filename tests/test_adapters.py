# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of adapters.py: the adapter's math and init, the adapters method's
option validation and parameter counts. (What trains:
test_methods_rules.py.)"""

import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import new_session
from conftest import tiny_bert_config_dict
from conftest import tiny_classifier_variables
from adapter_bert.methods import base
import adapters
import modeling

HIDDEN = 32
LAYERS = 2
NUM_LABELS = 3


# ---------------------------------------------------------------------------
# feedforward_adapter: numpy reference.
# ---------------------------------------------------------------------------


def _np_gelu(x):
  return 0.5 * x * (1.0 + np.tanh(
      math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


NUMPY_ACTIVATIONS = {
    "gelu": _np_gelu,
    "relu": lambda x: np.maximum(x, 0.0),
    "linear": lambda x: x,
}


def _run_adapter(x, size, activation, weights=None, init_scale=1e-3, seed=0):
  """Builds feedforward_adapter on `x` [tokens, hidden], optionally loads
  `weights` (dict name -> array) into it, returns (output, {name: value})."""
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    inputs = tf.constant(x, tf.float32)
    output = adapters.feedforward_adapter(
        inputs, size, modeling.get_activation(activation), init_scale)
    variables = {base.variable_name(v): v for v in tf.global_variables()}
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      for name, value in (weights or {}).items():
        variables["adapters/" + name].load(value, session)
      values = session.run({k: v for (k, v) in variables.items()})
      return session.run(output), values


@pytest.mark.parametrize("activation", sorted(NUMPY_ACTIVATIONS))
def test_feedforward_adapter_matches_numpy(activation):
  rng = np.random.RandomState(0)
  h, m, tokens = 6, 3, 5
  x = rng.normal(size=[tokens, h]).astype(np.float32)
  weights = {"weights1": rng.normal(size=[h, m]),
             "biases1": rng.normal(size=[1, m]),
             "weights2": rng.normal(size=[m, h]),
             "biases2": rng.normal(size=[1, h])}
  output, values = _run_adapter(x, m, activation, weights)
  assert {k: v.shape for (k, v) in values.items()} == {
      "adapters/weights1": (h, m), "adapters/biases1": (1, m),
      "adapters/weights2": (m, h), "adapters/biases2": (1, h)}
  act = NUMPY_ACTIVATIONS[activation]
  x64 = x.astype(np.float64)
  expected = x64 + act(x64 @ weights["weights1"] + weights["biases1"]) @ (
      weights["weights2"]) + weights["biases2"]
  np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


def test_feedforward_adapter_activation_matters():
  # relu and linear give different outputs on the same weights (negative
  # pre-activations exist), so the parametrised test above can tell them apart.
  rng = np.random.RandomState(1)
  x = rng.normal(size=[5, 6]).astype(np.float32)
  weights = {"weights1": rng.normal(size=[6, 3]), "weights2":
             rng.normal(size=[3, 6])}
  relu, _ = _run_adapter(x, 3, "relu", weights)
  linear, _ = _run_adapter(x, 3, "linear", weights)
  assert np.max(np.abs(relu - linear)) > 0.1


@pytest.mark.parametrize("init_scale", [1e-3, 0.05])
def test_adapter_init_is_truncated_normal_with_zero_biases(init_scale):
  x = np.zeros([2, 256], np.float32)
  _, values = _run_adapter(x, 256, "gelu", init_scale=init_scale)
  for name in ("adapters/weights1", "adapters/weights2"):
    w = values[name]
    # A normal truncated at 2 stddev has std 0.88 * stddev.
    assert abs(np.std(w) - init_scale) <= 0.2 * init_scale, name
    assert np.max(np.abs(w)) <= 2.0 * init_scale * (1 + 1e-6), name
    assert abs(np.mean(w)) <= 0.05 * init_scale, name
  for name in ("adapters/biases1", "adapters/biases2"):
    np.testing.assert_array_equal(values[name], 0.0)


def test_adapter_init_scale_zero_gives_zero_weights():
  x = np.random.RandomState(0).normal(size=[3, 8]).astype(np.float32)
  output, values = _run_adapter(x, 4, "gelu", init_scale=0.0)
  for value in values.values():
    np.testing.assert_array_equal(value, 0.0)
  np.testing.assert_array_equal(output, x)


def test_variable_name():
  assert base.variable_name("bert/x/kernel:0") == "bert/x/kernel"
  assert base.variable_name("bert/x/kernel:12") == "bert/x/kernel"
  assert base.variable_name("bert/x/kernel") == "bert/x/kernel"


# ---------------------------------------------------------------------------
# The adapters method's options.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("options,flag", [
    ({"adapter_size": 0}, "--adapter_size"),
    ({"adapter_size": -4}, "--adapter_size"),
    ({"adapter_size": True}, "--adapter_size"),
    ({"adapter_size": 8.0}, "--adapter_size"),
    ({"adapter_size": "8"}, "--adapter_size"),
    ({"adapter_size": [8]}, "--adapter_size"),
    ({"adapter_init_scale": -1e-3}, "--adapter_init_scale"),
    ({"adapter_init_scale": "small"}, "--adapter_init_scale"),
    ({"adapter_placement": "everywhere"}, "--adapter_placement"),
    ({"adapter_placement": "Both"}, "--adapter_placement"),
    ({"adapter_activation": "gelu2"}, "--adapter_activation"),
])
def test_adapter_options_validation(options, flag):
  with pytest.raises(ValueError) as excinfo:
    adapters.AdaptersMethod.create(options)
  message = str(excinfo.value)
  assert message.startswith(flag), message
  assert "\n" not in message


def test_an_adapter_option_of_none_is_not_given():
  # None means "not given" (a flag left out): the method's default applies.
  assert adapters.AdaptersMethod.create({"adapter_size": None})[
      "adapter_size"] == 64


def test_adapter_options_defaults_and_to_dict():
  method = adapters.AdaptersMethod.create()
  assert method.to_dict() == {
      "tuning_mode": "adapters",
      "options": {"adapter_size": 64, "adapter_activation": "gelu",
                  "adapter_init_scale": 1e-3, "adapter_placement": "both",
                  "adapter_ln_before": False, "train_layernorm": True,
                  "train_pooler": False}}
  zero = adapters.AdaptersMethod.create({"adapter_init_scale": 0})
  assert zero["adapter_init_scale"] == 0.0
  assert isinstance(zero["adapter_init_scale"], float)
  assert adapters.AdaptersMethod.create(
      {"adapter_size": 8, "adapter_activation": "relu",
       "adapter_placement": "ffn"}).to_dict()["options"] == {
           "adapter_size": 8, "adapter_activation": "relu",
           "adapter_init_scale": 1e-3, "adapter_placement": "ffn",
           "adapter_ln_before": False, "train_layernorm": True,
           "train_pooler": False}


@pytest.mark.parametrize("placement,attention,ffn", [
    ("both", True, True),
    ("attention", True, False),
    ("ffn", False, True),
    ("none", False, False),
])
def test_adapter_placement_adapts(placement, attention, ffn):
  method = adapters.AdaptersMethod.create({"adapter_placement": placement})
  assert method.adapts("attention") == attention
  assert method.adapts("ffn") == ffn
  assert method.adds_anything == (attention or ffn)


# ---------------------------------------------------------------------------
# count_parameters.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 64])
def test_count_parameters_of_adapters(size):
  variables = tiny_classifier_variables(
      adapters.AdaptersMethod.create({"adapter_size": size}))
  adapter_variables = [v for v in variables if "/adapters/" in v.name]
  h, m = HIDDEN, size
  assert base.count_parameters(adapter_variables) == (
      LAYERS * 2 * (2 * h * m + m + h))
  config = modeling.BertConfig.from_dict(tiny_bert_config_dict())
  assert adapters.adapter_parameters(config, size, "both") == (
      base.count_parameters(adapter_variables))


def test_count_parameters_of_bert_and_head():
  variables = tiny_classifier_variables(None)
  config = tiny_bert_config_dict()
  h, i = config["hidden_size"], config["intermediate_size"]
  embeddings = (config["vocab_size"] + config["type_vocab_size"] +
                config["max_position_embeddings"]) * h + 2 * h
  layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
  pooler = h * h + h
  head = NUM_LABELS * h + NUM_LABELS
  assert base.count_parameters(variables) == (
      embeddings + LAYERS * layer + pooler + head)
  assert base.count_parameters([]) == 0


def test_a_manifest_made_before_adapter_ln_before_resumes():
  """Houlsby's order records the option as None, as manifests made before
  it existed have it (absent): such a run resumes; the other order
  differs."""
  from adapter_bert import methods  # pylint: disable=g-import-not-at-top
  from adapter_bert import run_folder  # pylint: disable=g-import-not-at-top
  now = methods.settings_record(adapters.AdaptersMethod.create())
  before = {k: v for (k, v) in now.items() if k != "adapter_ln_before"}
  keys = list(now)
  assert run_folder.differences(before, now, keys) == []
  other = methods.settings_record(adapters.AdaptersMethod.create(
      {"adapter_ln_before": True}))
  assert run_folder.differences(before, other, keys) == [
      "adapter_ln_before None (now True)"]
