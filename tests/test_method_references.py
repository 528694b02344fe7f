"""Each method's forward pass against an independent NumPy reference
(tests/numpy_bert.py, written from the papers' formulas), on the tiny config
with every added variable set to random non-trivial values; and a merged
method (LoRA, IA3) against the same method kept apart."""

import json

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import new_session
import numpy_bert
from adapter_bert import methods
from adapter_bert.methods import base
import modeling

BATCH, SEQ = 3, 9

ALL_PROJECTIONS = ",".join(modeling.PROJECTIONS)

# The last components of every added variable: the names the docs give.
ADDED_NAMES = ("/lora/A", "/lora/B", "/ia3/scale", "/prefix/keys",
               "/prefix/values", "/prefix/embedding", "/prefix/dense/kernel",
               "/prefix/dense/bias", "/prefix/dense_1/kernel",
               "/prefix/dense_1/bias") + tuple(
                   "/%s/%s" % (scope, n) for scope in ("adapters",
                                                      "parallel_adapter")
                   for n in ("weights1", "biases1", "weights2", "biases2"))

CASES = {
    "lora": ({"lora_rank": 3, "lora_alpha": 6.0},
             lambda: numpy_bert.Lora(("query", "value"), 2.0)),
    "lora-all": ({"lora_rank": 2, "lora_targets": ALL_PROJECTIONS},
                 lambda: numpy_bert.Lora(modeling.PROJECTIONS, 4.0)),
    "ia3": ({}, numpy_bert.Ia3),
    "prefix": ({"prefix_length": 4}, lambda: numpy_bert.Prefix(4)),
    "prefix-mlp": ({"prefix_length": 4, "prefix_projection": 6},
                   lambda: numpy_bert.PrefixMlp(4)),
    "prefix-unshifted": ({"prefix_length": 4, "prefix_shifts_positions": False},
                         numpy_bert.Prefix),
    "parallel_adapters": (
        {"adapter_size": 5, "adapter_placement": "both"},
        lambda: numpy_bert.ParallelAdapter(("attention", "ffn"), 4.0,
                                           lambda x: np.maximum(x, 0.0))),
    "pfeiffer": ({"adapter_size": 5}, None),
    "mam": ({"prefix_length": 3, "adapter_size": 5},
            lambda: numpy_bert.Composed(
                numpy_bert.Prefix(3),
                numpy_bert.ParallelAdapter(("ffn",), 4.0,
                                           lambda x: np.maximum(x, 0.0)))),
}


def inputs(vocab_size):
  rng = np.random.RandomState(7)
  ids = rng.randint(5, vocab_size, size=[BATCH, SEQ]).astype(np.int32)
  mask = np.ones([BATCH, SEQ], np.int32)
  mask[1, 6:] = 0  # padding: a masked key must change nothing
  mask[2, 3:] = 0
  return ids, mask


def graph_pooled(tiny_bert, method, values=None, seed=11, extra_padding=0):
  """The graph's pooled output with `method`; its added variables set to
  random values (seeded) unless `values` gives every variable.

  Returns:
    (pooled output, {variable name: value} of every variable).
  """
  with open(tiny_bert["bert_config_file"]) as f:
    config = modeling.BertConfig.from_dict(json.load(f))
  (ids, mask) = inputs(config.vocab_size)
  # More padding on the right: the rows' tokens and mask as they were.
  ids = np.pad(ids, [(0, 0), (0, extra_padding)])
  mask = np.pad(mask, [(0, 0), (0, extra_padding)])
  with tf.Graph().as_default():
    model = modeling.BertModel(config, False, tf.constant(ids),
                               input_mask=tf.constant(mask), hooks=method)
    variables = {base.variable_name(v): v for v in tf.global_variables()}
    if values is None:
      held = dict(tf.train.list_variables(tiny_bert["init_checkpoint"]))
      tf.train.init_from_checkpoint(tiny_bert["init_checkpoint"], {
          n: n for n in variables if n in held})
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      rng = np.random.RandomState(seed)
      for (name, variable) in variables.items():
        if values is not None:
          variable.load(values[name], session)
        elif method is not None and method.adds(name):
          shape = variable.shape.as_list()
          variable.load((1.0 if name.endswith("/ia3/scale") else 0.0) +
                        rng.normal(0, 0.3, shape), session)
          assert name.endswith(ADDED_NAMES), name
      return session.run(model.get_pooled_output()), session.run(variables)


class SerialAdapter(numpy_bert.Plain):
  """Houlsby et al. (2019): h + f(h W_down + b) W_up + b' on the sub-layer's
  output h (Pfeiffer's placement: after the FFN only, ReLU)."""

  def sublayer(self, values, layer, name, scope, inputs, outputs):
    if name != "ffn":
      return outputs
    w = lambda n: values[scope + "/adapters/" + n]
    hidden = np.maximum(outputs @ w("weights1") + w("biases1"), 0.0)
    return outputs + hidden @ w("weights2") + w("biases2")


CASES["pfeiffer"] = (CASES["pfeiffer"][0], SerialAdapter)


def method_of(case):
  name = case if case in methods.names() else case.split("-")[0]
  return methods.build(name, CASES[case][0], num_layers=2)


@pytest.mark.parametrize("case", sorted(CASES))
def test_method_equals_its_numpy_reference(tiny_bert, case):
  (options, reference) = CASES[case]
  method = method_of(case)
  (pooled, values) = graph_pooled(tiny_bert, method)
  (plain, _) = graph_pooled(tiny_bert, None)
  with open(tiny_bert["bert_config_file"]) as f:
    config = json.load(f)
  (ids, mask) = inputs(config["vocab_size"])
  expected = numpy_bert.forward(values, config, ids, mask, reference())
  np.testing.assert_allclose(pooled, expected, atol=1e-5)
  # The random additions change the model far beyond the tolerance (the
  # check has teeth; the tiny random BERT's pooled output moves little).
  assert np.abs(pooled - plain).max() > 20 * 1e-5


@pytest.mark.parametrize("case", ["lora", "lora-all", "ia3"])
def test_merged_weights_give_the_same_model_as_plain_bert(tiny_bert, case):
  method = method_of(case)
  (pooled, values) = graph_pooled(tiny_bert, method)
  own = method.merge({n: a for (n, a) in values.items() if method.adds(n)},
                     values.__getitem__)
  assert own and not any(method.adds(name) for name in own)
  merged = {n: a for (n, a) in values.items() if not method.adds(n)}
  merged.update(own)
  (plain, _) = graph_pooled(tiny_bert, None, values=merged)
  np.testing.assert_allclose(plain, pooled, atol=1e-5)


def test_merge_leaves_switched_off_layers_as_pretrained(tiny_bert):
  method = methods.build("lora", {"lora_rank": 2}, num_layers=2)
  (_, values) = graph_pooled(tiny_bert, method)
  merged = method.with_layers_off([1]).merge(
      {n: a for (n, a) in values.items() if method.adds(n)},
      values.__getitem__)
  name = "bert/encoder/layer_%d/attention/self/query/kernel"
  assert name % 1 not in merged
  assert np.abs(merged[name % 0] - values[name % 0]).max() > 1e-3


@pytest.mark.parametrize("case", ["prefix", "prefix-mlp", "mam", "lora",
                                  "parallel_adapters"])
def test_outputs_do_not_depend_on_the_padding(tiny_bert, case):
  """As the static, batch and bucket padding policies pad one row to other
  widths: prefixed keys must leave every padded key masked."""
  method = method_of(case)
  (narrow, values) = graph_pooled(tiny_bert, method)
  for extra in (1, 7):
    (wide, _) = graph_pooled(tiny_bert, method, values=values,
                             extra_padding=extra)
    np.testing.assert_allclose(wide, narrow, atol=1e-5)


def test_prefixes_trained_through_the_mlp_are_stored_plain(tiny_bert):
  """The bundle form of an MLP-trained prefix is a plain prefix method whose
  prefixes give the same model."""
  method = method_of("prefix-mlp")
  (pooled, values) = graph_pooled(tiny_bert, method)
  trained = {n: a for (n, a) in values.items() if method.trains(n)}
  (stored_method, stored) = method.stored(trained)
  assert stored_method.name == "prefix"
  assert stored_method["prefix_projection"] == 0
  assert not [n for n in stored if "/prefix/dense" in n or
              n.endswith("/prefix/embedding")]
  assert sorted(n for n in stored if stored_method.adds(n)) == sorted(
      "bert/encoder/layer_%d/attention/self/prefix/%s" % (layer, kind)
      for layer in range(2) for kind in ("keys", "values"))
  plain = {n: a for (n, a) in values.items() if not method.adds(n)}
  plain.update(stored)
  (served, _) = graph_pooled(tiny_bert, stored_method, values=plain)
  np.testing.assert_allclose(served, pooled, atol=1e-5)
