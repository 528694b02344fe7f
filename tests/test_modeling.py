# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Tests of modeling.py on the tiny random BERT of conftest.py.

Every numeric check builds its model in a fresh tf.Graph, restores the
pre-trained weights from the `tiny_bert` checkpoint and runs it in a tf.Session
(`_run_bert`). The restore maps each checkpoint variable to itself
(`_restore_map`): the scope form `{"bert/": "bert/"}` of
tf.train.init_from_checkpoint walks the graph's variables and raises on the
adapters' (absent from a pre-trained checkpoint); run_classifier.py does the
same per-variable mapping.
"""

import json
import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import new_session
from conftest import tiny_bert_config_dict
from adapter_bert.methods import base
import adapters
import modeling

HIDDEN = 32
LAYERS = 2
INTERMEDIATE = 37
VOCAB = tiny_bert_config_dict()["vocab_size"]
MAX_POSITIONS = tiny_bert_config_dict()["max_position_embeddings"]
SEQ = 8
ADAPTER_VARIABLES = ("weights1", "biases1", "weights2", "biases2")

_RNG = np.random.RandomState(1234)
# Two sequences; the second has 3 padded positions (mask 0, id 0).
INPUT_IDS = _RNG.randint(5, VOCAB, size=[2, SEQ]).astype(np.int32)
INPUT_IDS[:, 0] = 2  # [CLS]
INPUT_MASK = np.ones([2, SEQ], np.int32)
INPUT_MASK[1, 5:] = 0
INPUT_IDS[1, 5:] = 0


def _adapters(size=64, activation="gelu", init_scale=1e-3, placement="both"):
  """The adapters method (its hooks build the adapters) with these settings."""
  return adapters.AdaptersMethod.create(
      {"adapter_size": size, "adapter_activation": activation,
       "adapter_init_scale": init_scale, "adapter_placement": placement},
      num_layers=LAYERS)


def _restore_map(init_checkpoint):
  """{name: name} for the graph's variables in the checkpoint.

  Adapters keep their initializers; a model with fewer layers than the
  checkpoint takes the first ones.
  """
  in_checkpoint = dict(tf.train.list_variables(init_checkpoint))
  names = [base.variable_name(v) for v in tf.global_variables()]
  return {name: name for name in names if name in in_checkpoint}


def _run_bert(init_checkpoint=None, hooks=None, is_training=False,
              input_ids=INPUT_IDS, input_mask=INPUT_MASK, config_dict=None,
              extra_fetches=None, setup=None, num_runs=1, seed=7):
  """Builds BertModel in a fresh graph, restores `init_checkpoint`, runs it.

  Args:
    init_checkpoint: Google-layout checkpoint restored under "bert/", or None.
    hooks: a tuning method (its `GraphHooks`), passed to BertModel.
    is_training: passed to BertModel.
    input_ids, input_mask: numpy int32 [batch, seq].
    config_dict: BertConfig dict (default: the tiny config).
    extra_fetches: fn(graph, model) -> dict of more tensors to fetch.
    setup: fn(session, graph), called after the variables are initialised.
    num_runs: session.run calls on the same session.
    seed: graph-level random seed.

  Returns:
    List (one per run) of dicts with "sequence", "pooled", "layers" and the
    extra fetches.
  """
  graph = tf.Graph()
  with graph.as_default():
    tf.set_random_seed(seed)
    config = modeling.BertConfig.from_dict(config_dict or
                                           tiny_bert_config_dict())
    model = modeling.BertModel(
        config, is_training, tf.constant(input_ids),
        input_mask=None if input_mask is None else tf.constant(input_mask),
        hooks=hooks)
    if init_checkpoint:
      tf.train.init_from_checkpoint(init_checkpoint,
                                    _restore_map(init_checkpoint))
    fetches = {"sequence": model.get_sequence_output(),
               "pooled": model.get_pooled_output(),
               "layers": model.get_all_encoder_layers()}
    if extra_fetches:
      fetches.update(extra_fetches(graph, model))
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      if setup:
        setup(session, graph)
      return [session.run(fetches) for _ in range(num_runs)]


def _variable_shapes(hooks=None, config_dict=None):
  """{name: shape} of the global variables BertModel creates."""
  with tf.Graph().as_default():
    config = modeling.BertConfig.from_dict(config_dict or
                                           tiny_bert_config_dict())
    modeling.BertModel(config, False, tf.zeros([2, SEQ], tf.int32),
                       hooks=hooks)
    return {base.variable_name(v): v.shape.as_list()
            for v in tf.global_variables()}


def _assert_close_relative(actual, expected, rtol):
  """max|a - b| <= rtol * max|b|."""
  scale = np.max(np.abs(expected))
  assert scale > 0
  diff = np.max(np.abs(actual - expected))
  assert diff <= rtol * scale, "max diff %g > %g * %g" % (diff, rtol, scale)


# ---------------------------------------------------------------------------
# Shapes.
# ---------------------------------------------------------------------------


def test_output_shapes(tiny_bert):
  (out,) = _run_bert(tiny_bert["init_checkpoint"])
  assert out["sequence"].shape == (2, SEQ, HIDDEN)
  assert out["pooled"].shape == (2, HIDDEN)
  assert len(out["layers"]) == LAYERS
  for layer in out["layers"]:
    assert layer.shape == (2, SEQ, HIDDEN)
  # The sequence output is the last layer; the pooler is a tanh.
  np.testing.assert_array_equal(out["sequence"], out["layers"][-1])
  assert np.all(np.abs(out["pooled"]) <= 1.0)


def test_dynamic_batch(tiny_bert):
  with tf.Graph().as_default():
    input_ids = tf.placeholder(tf.int32, [None, SEQ])
    input_mask = tf.placeholder(tf.int32, [None, SEQ])
    model = modeling.BertModel(
        modeling.BertConfig.from_dict(tiny_bert_config_dict()), False,
        input_ids, input_mask=input_mask,
        hooks=_adapters(size=8))
    tf.train.init_from_checkpoint(
        tiny_bert["init_checkpoint"],
        _restore_map(tiny_bert["init_checkpoint"]))
    assert model.get_sequence_output().shape.as_list() == [None, SEQ, HIDDEN]
    assert model.get_pooled_output().shape.as_list() == [None, HIDDEN]
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      outputs = {}
      for batch in (3, 1):
        ids = np.tile(INPUT_IDS[:1], [batch, 1])
        mask = np.ones_like(ids)
        seq, pooled, layers = session.run(
            [model.get_sequence_output(), model.get_pooled_output(),
             model.get_all_encoder_layers()],
            {input_ids: ids, input_mask: mask})
        assert seq.shape == (batch, SEQ, HIDDEN)
        assert pooled.shape == (batch, HIDDEN)
        assert [l.shape for l in layers] == [(batch, SEQ, HIDDEN)] * LAYERS
        outputs[batch] = seq
  # The same sentence gives the same output whatever the batch size.
  np.testing.assert_allclose(outputs[3][0], outputs[1][0], atol=1e-5)
  np.testing.assert_allclose(outputs[3][2], outputs[1][0], atol=1e-5)


def test_sequence_longer_than_positions_raises():
  ids = np.zeros([1, MAX_POSITIONS + 1], np.int32)
  with pytest.raises(ValueError, match="max_position_embeddings"):
    _run_bert(input_ids=ids, input_mask=None)


# ---------------------------------------------------------------------------
# Checkpoint names: exactly Google's.
# ---------------------------------------------------------------------------


def _google_bert_variables(hidden, layers, intermediate, vocab, positions,
                           type_vocab):
  """Google's released BERT variable names and shapes, written out by hand."""
  h, i = hidden, intermediate
  expected = {
      "bert/embeddings/word_embeddings": [vocab, h],
      "bert/embeddings/token_type_embeddings": [type_vocab, h],
      "bert/embeddings/position_embeddings": [positions, h],
      "bert/embeddings/LayerNorm/beta": [h],
      "bert/embeddings/LayerNorm/gamma": [h],
      "bert/pooler/dense/kernel": [h, h],
      "bert/pooler/dense/bias": [h],
  }
  for n in range(layers):
    prefix = "bert/encoder/layer_%d/" % n
    expected.update({
        prefix + "attention/self/query/kernel": [h, h],
        prefix + "attention/self/query/bias": [h],
        prefix + "attention/self/key/kernel": [h, h],
        prefix + "attention/self/key/bias": [h],
        prefix + "attention/self/value/kernel": [h, h],
        prefix + "attention/self/value/bias": [h],
        prefix + "attention/output/dense/kernel": [h, h],
        prefix + "attention/output/dense/bias": [h],
        prefix + "attention/output/LayerNorm/beta": [h],
        prefix + "attention/output/LayerNorm/gamma": [h],
        prefix + "intermediate/dense/kernel": [h, i],  # [in, out]
        prefix + "intermediate/dense/bias": [i],
        prefix + "output/dense/kernel": [i, h],  # [in, out]
        prefix + "output/dense/bias": [h],
        prefix + "output/LayerNorm/beta": [h],
        prefix + "output/LayerNorm/gamma": [h],
    })
  return expected


def test_variable_names_and_shapes_are_googles():
  actual = _variable_shapes()
  expected = _google_bert_variables(HIDDEN, LAYERS, INTERMEDIATE, VOCAB,
                                    MAX_POSITIONS, 2)
  assert sorted(set(actual) - set(expected)) == []
  assert sorted(set(expected) - set(actual)) == []
  assert actual == expected


def test_variable_names_for_another_config():
  # Kernels are [in, out]: a non-square intermediate catches a transpose.
  config = tiny_bert_config_dict(num_hidden_layers=3, intermediate_size=19,
                                 type_vocab_size=3, max_position_embeddings=16)
  assert _variable_shapes(config_dict=config) == _google_bert_variables(
      HIDDEN, 3, 19, VOCAB, 16, 3)


def test_checkpoint_has_exactly_the_model_variables(tiny_bert):
  in_checkpoint = dict(tf.train.list_variables(tiny_bert["init_checkpoint"]))
  assert in_checkpoint == _variable_shapes()


# ---------------------------------------------------------------------------
# Adapters: near-identity at initialisation, placement.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_outputs(tiny_bert):
  """The pre-trained tiny model without adapters."""
  return _run_bert(tiny_bert["init_checkpoint"])[0]


@pytest.mark.parametrize("size", [64, 8])
def test_adapters_start_near_identity(tiny_bert, plain_outputs, size):
  (out,) = _run_bert(tiny_bert["init_checkpoint"],
                     _adapters(size=size))
  _assert_close_relative(out["sequence"], plain_outputs["sequence"], 1e-3)
  _assert_close_relative(out["pooled"], plain_outputs["pooled"], 1e-3)


def test_adapters_with_zero_init_are_exact_identity(tiny_bert, plain_outputs):
  (out,) = _run_bert(tiny_bert["init_checkpoint"],
                     _adapters(size=8, init_scale=0.0))
  np.testing.assert_array_equal(out["sequence"], plain_outputs["sequence"])
  np.testing.assert_array_equal(out["pooled"], plain_outputs["pooled"])


def test_adapters_with_large_init_change_outputs(tiny_bert, plain_outputs):
  (out,) = _run_bert(tiny_bert["init_checkpoint"],
                     _adapters(size=8, init_scale=1.0))
  seq_diff = np.max(np.abs(out["sequence"] - plain_outputs["sequence"]))
  # 20 times the tolerance of the near-identity test above.
  assert seq_diff > 0.02 * np.max(np.abs(plain_outputs["sequence"]))
  assert np.max(np.abs(out["pooled"] - plain_outputs["pooled"])) > 1e-3


def _adapter_names(layers, sublayers):
  names = {}
  for n in range(layers):
    for sublayer in sublayers:
      scope = {"attention": "attention/output", "ffn": "output"}[sublayer]
      prefix = "bert/encoder/layer_%d/%s/adapters/" % (n, scope)
      names.update({prefix + "weights1": [HIDDEN, 8],
                    prefix + "biases1": [1, 8],
                    prefix + "weights2": [8, HIDDEN],
                    prefix + "biases2": [1, HIDDEN]})
  return names


@pytest.mark.parametrize("placement,sublayers", [
    ("both", ("attention", "ffn")),
    ("attention", ("attention",)),
    ("ffn", ("ffn",)),
    ("none", ()),
])
def test_adapter_placement_variables(placement, sublayers):
  shapes = _variable_shapes(_adapters(size=8,
                                                   placement=placement))
  adapter_shapes = {k: v for (k, v) in shapes.items() if "/adapters/" in k}
  assert adapter_shapes == _adapter_names(LAYERS, sublayers)
  # The BERT variables are untouched by the adapters.
  others = {k: v for (k, v) in shapes.items() if "/adapters/" not in k}
  assert others == _variable_shapes()


def test_no_hooks_create_no_adapter_variables():
  assert not [k for k in _variable_shapes(None) if "adapters" in k]
  assert _variable_shapes(modeling.GraphHooks()) == _variable_shapes(None)


def test_adapter_sits_after_dropout_before_residual_and_layer_norm(tiny_bert):
  """Each adapter maps x -> 2x + c: the LayerNorm must see drop(d)*2 + c + res.

  A 1-layer model with hidden dropout 0.5 (is_training=True). With the linear
  adapter x + (x @ I + 0) @ I + c = 2x + c, the input of each sub-layer's
  LayerNorm must be 2 * dropout(dense_out) + c + residual, where dropout zeroes
  an element or doubles it. An adapter before the dropout (dropped elements
  would lose c), after the residual add (the residual would be doubled) or
  after the LayerNorm fails this.
  """
  config = tiny_bert_config_dict(num_hidden_layers=1, hidden_dropout_prob=0.5,
                                 attention_probs_dropout_prob=0.0)
  method = _adapters(size=HIDDEN, activation="linear")
  rng = np.random.RandomState(3)
  constants = {"attention/output": rng.uniform(1.0, 2.0, [1, HIDDEN]),
               "output": rng.uniform(-2.0, -1.0, [1, HIDDEN])}

  def setup(session, graph):
    del graph
    variables = {base.variable_name(v): v for v in tf.global_variables()}
    for scope, c in constants.items():
      prefix = "bert/encoder/layer_0/%s/adapters/" % scope
      variables[prefix + "weights1"].load(np.eye(HIDDEN), session)
      variables[prefix + "biases1"].load(np.zeros([1, HIDDEN]), session)
      variables[prefix + "weights2"].load(np.eye(HIDDEN), session)
      variables[prefix + "biases2"].load(c, session)

  def fetches(graph, model):
    op = graph.get_operation_by_name
    prefix = "bert/encoder/layer_0/"
    return {
        "embeddings": tf.reshape(model.get_embedding_output(), [-1, HIDDEN]),
        "attention/output/dense":
            op(prefix + "attention/output/dense/BiasAdd").outputs[0],
        "attention/output/ln_input":
            op(prefix + "attention/output/LayerNorm/moments/mean").inputs[0],
        "attention/output/ln_output":
            op(prefix + "intermediate/dense/MatMul").inputs[0],
        "output/dense": op(prefix + "output/dense/BiasAdd").outputs[0],
        "output/ln_input":
            op(prefix + "output/LayerNorm/moments/mean").inputs[0],
    }

  (out,) = _run_bert(tiny_bert["init_checkpoint"], method,
                     is_training=True, config_dict=config,
                     extra_fetches=fetches, setup=setup)
  residuals = {"attention/output": out["embeddings"],
               "output": out["attention/output/ln_output"]}
  for scope, c in constants.items():
    dense = out[scope + "/dense"]
    rest = out[scope + "/ln_input"] - residuals[scope] - c
    dropped = np.abs(rest) <= 1e-4
    kept = np.abs(rest - 2.0 * 2.0 * dense) <= 1e-4 * (1 + np.abs(dense))
    assert np.all(dropped | kept), scope
    # Dropout did drop some and keep some, so both branches were checked.
    assert 0.2 < np.mean(dropped & ~kept) < 0.8, scope

  # And the LayerNorm output is the LayerNorm of that input (gamma 1, beta 0
  # in the random checkpoint), so the adapter is before the LayerNorm.
  x = out["attention/output/ln_input"].astype(np.float64)
  mean = x.mean(-1, keepdims=True)
  var = x.var(-1, keepdims=True)
  np.testing.assert_allclose(out["attention/output/ln_output"],
                             (x - mean) / np.sqrt(var + 1e-12), atol=1e-4)


# ---------------------------------------------------------------------------
# Padding, dropout.
# ---------------------------------------------------------------------------


def test_padding_does_not_change_real_positions(tiny_bert):
  other_ids = INPUT_IDS.copy()
  other_ids[1, 5:] = [7, 11, 13]  # different ids at the padded positions
  method = _adapters(size=8, init_scale=0.1)
  (a,) = _run_bert(tiny_bert["init_checkpoint"], method)
  (b,) = _run_bert(tiny_bert["init_checkpoint"], method, input_ids=other_ids)
  real = INPUT_MASK.astype(bool)
  assert np.max(np.abs(a["sequence"][real] - b["sequence"][real])) < 1e-5
  assert np.max(np.abs(a["pooled"] - b["pooled"])) < 1e-5
  # The padded positions themselves did change (the check can fail).
  assert np.max(np.abs(a["sequence"][~real] - b["sequence"][~real])) > 1e-3


def test_unmasked_change_does_change_real_positions(tiny_bert):
  # The counterpart of the padding test: with mask 1 the same edit matters.
  other_ids = INPUT_IDS.copy()
  other_ids[1, 5:] = [7, 11, 13]
  mask = np.ones_like(INPUT_MASK)
  (a,) = _run_bert(tiny_bert["init_checkpoint"], input_mask=mask)
  (b,) = _run_bert(tiny_bert["init_checkpoint"], input_ids=other_ids,
                   input_mask=mask)
  assert np.max(np.abs(a["sequence"][1, :5] - b["sequence"][1, :5])) > 1e-3


def test_inference_is_deterministic(tiny_bert):
  runs = _run_bert(tiny_bert["init_checkpoint"],
                   _adapters(size=8), is_training=False,
                   num_runs=2)
  np.testing.assert_array_equal(runs[0]["sequence"], runs[1]["sequence"])
  np.testing.assert_array_equal(runs[0]["pooled"], runs[1]["pooled"])


def test_training_applies_dropout(tiny_bert):
  runs = _run_bert(tiny_bert["init_checkpoint"],
                   _adapters(size=8), is_training=True,
                   num_runs=2)
  assert np.max(np.abs(runs[0]["sequence"] - runs[1]["sequence"])) > 1e-3


# ---------------------------------------------------------------------------
# BertConfig.
# ---------------------------------------------------------------------------


def test_config_json_round_trip(tmp_path):
  original = tiny_bert_config_dict(hidden_act="gelu_exact")
  path = str(tmp_path / "bert_config.json")
  with open(path, "w") as f:
    json.dump(original, f)
  config = modeling.BertConfig.from_json_file(path)
  for key, value in original.items():
    assert getattr(config, key) == value
  assert config.layer_norm_eps == 1e-12  # Google's default when absent
  text = config.to_json_string()
  assert json.loads(text) == dict(original, layer_norm_eps=1e-12)
  path2 = str(tmp_path / "bert_config2.json")
  with open(path2, "w") as f:
    f.write(text)
  assert modeling.BertConfig.from_json_file(path2).to_dict() == config.to_dict()


def _write(tmp_path, name, content):
  path = str(tmp_path / name)
  with open(path, "wb") as f:
    f.write(content if isinstance(content, bytes) else content.encode("utf-8"))
  return path


@pytest.mark.parametrize("name,content,detail", [
    ("missing.json", None, None),
    ("invalid.json", '{"vocab_size": 30,', "JSON"),
    ("heads.json", json.dumps(tiny_bert_config_dict(hidden_size=30)),
     "num_attention_heads"),
    ("act.json", json.dumps(tiny_bert_config_dict(hidden_act="swishy")),
     "swishy"),
    ("list.json", "[1, 2]", "object"),
    ("no_vocab.json", json.dumps({"hidden_size": 32}), "vocab_size"),
    ("float_layers.json",
     json.dumps(tiny_bert_config_dict(num_hidden_layers=2.5)),
     "num_hidden_layers"),
    ("dropout.json",
     json.dumps(tiny_bert_config_dict(hidden_dropout_prob=1.5)),
     "'hidden_dropout_prob' must be a number in [0, 1), got 1.5"),
    ("attention_dropout.json",
     json.dumps(tiny_bert_config_dict(attention_probs_dropout_prob="0.1")),
     "'attention_probs_dropout_prob' must be a number in [0, 1)"),
    ("eps.json", json.dumps(tiny_bert_config_dict(layer_norm_eps=0)),
     "'layer_norm_eps' must be a positive number"),
])
def test_config_errors_name_the_file(tmp_path, name, content, detail):
  path = (str(tmp_path / name) if content is None
          else _write(tmp_path, name, content))
  with pytest.raises(ValueError) as info:
    modeling.BertConfig.from_json_file(path)
  message = str(info.value)
  assert path in message
  assert "\n" not in message
  if detail:
    assert detail in message


def test_config_error_for_a_binary_file_names_the_file(tmp_path):
  """A non-UTF-8 file (e.g. a checkpoint given as the config) names the file.

  FAILS at the time of writing: from_json_file catches only OpError/OSError
  around reader.read(), so the UnicodeDecodeError (a ValueError) escapes
  without the file name: "'utf-8' codec can't decode byte 0xff ...".
  """
  path = _write(tmp_path, "bert_model.ckpt.data-00000-of-00001",
                b"\xff\xfe\x00\x01binary")
  with pytest.raises(ValueError) as info:
    modeling.BertConfig.from_json_file(path)
  assert path in str(info.value)
  assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# Activations.
# ---------------------------------------------------------------------------

POINTS = np.array([-3.0, -1.5, -0.5, 0.0, 0.3, 1.0, 2.5], np.float32)


def _evaluate(fn, x):
  with tf.Graph().as_default(), new_session() as session:
    return session.run(fn(tf.constant(x)))


def test_gelu_is_the_tanh_approximation():
  x = POINTS.astype(np.float64)
  expected = 0.5 * x * (1.0 + np.tanh(
      math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
  np.testing.assert_allclose(_evaluate(modeling.gelu, POINTS), expected,
                             rtol=1e-5, atol=1e-6)


def test_gelu_exact_is_the_erf_form():
  expected = [0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))
              for x in POINTS.astype(np.float64)]
  np.testing.assert_allclose(_evaluate(modeling.gelu_exact, POINTS), expected,
                             rtol=1e-5, atol=1e-6)
  # The two differ (by ~1.5e-4 at x = 1): the tests above can tell them apart.
  assert abs(_evaluate(modeling.gelu, np.float32(1.0)) -
             _evaluate(modeling.gelu_exact, np.float32(1.0))) > 1e-4


def test_get_activation():
  assert modeling.get_activation("gelu") is modeling.gelu
  assert modeling.get_activation("GELU_exact") is modeling.gelu_exact
  assert modeling.get_activation("relu") is tf.nn.relu
  assert modeling.get_activation("linear") is None
  assert modeling.get_activation(tf.tanh) is tf.tanh
  with pytest.raises(ValueError, match="nope"):
    modeling.get_activation("nope")
