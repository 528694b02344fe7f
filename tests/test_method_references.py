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

CASES = {
    "lora": ({"lora_rank": 3, "lora_alpha": 6.0},
             lambda: numpy_bert.Lora(("query", "value"), 2.0)),
    "lora-all": ({"lora_rank": 2, "lora_targets": ALL_PROJECTIONS},
                 lambda: numpy_bert.Lora(modeling.PROJECTIONS, 4.0)),
    "ia3": ({}, numpy_bert.Ia3),
}


def inputs(vocab_size):
  rng = np.random.RandomState(7)
  ids = rng.randint(5, vocab_size, size=[BATCH, SEQ]).astype(np.int32)
  mask = np.ones([BATCH, SEQ], np.int32)
  mask[1, 6:] = 0  # padding: a masked key must change nothing
  mask[2, 3:] = 0
  return ids, mask


def graph_pooled(tiny_bert, method, values=None, seed=11):
  """The graph's pooled output with `method`; its added variables set to
  random values (seeded) unless `values` gives every variable.

  Returns:
    (pooled output, {variable name: value} of every variable).
  """
  with open(tiny_bert["bert_config_file"]) as f:
    config = modeling.BertConfig.from_dict(json.load(f))
  (ids, mask) = inputs(config.vocab_size)
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
      return session.run(model.get_pooled_output()), session.run(variables)


@pytest.mark.parametrize("case", sorted(CASES))
def test_method_equals_its_numpy_reference(tiny_bert, case):
  (options, reference) = CASES[case]
  method = methods.build(case.split("-")[0], options, num_layers=2)
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
  (options, _) = CASES[case]
  method = methods.build(case.split("-")[0], options, num_layers=2)
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
