# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The tuning methods' rules (adapter_bert/methods/, adapters.py): what each
method adds, what trains, what its bundle stores, its parameter counts in
closed form, and the refusals."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import run_classifier_in_process
from conftest import new_session
from conftest import tiny_bert_config_dict
from conftest import tiny_classifier_variables
from conftest import write_sst2_task
from adapter_bert import bundles
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert.classifier import model_fn
from adapter_bert.methods import base
import adapters
import modeling

LAYERS = 2
NUM_LABELS = 3
ADAPTERS = methods.build("adapters", {"adapter_size": 8}, LAYERS)
FULL = methods.build("full", None, LAYERS)

# ---------------------------------------------------------------------------
# The rule of what trains (moved here from test_adapters.py).
# ---------------------------------------------------------------------------


def _layer_norms():
  names = ["bert/embeddings/LayerNorm/beta", "bert/embeddings/LayerNorm/gamma"]
  for n in range(LAYERS):
    for scope in ("attention/output", "output"):
      for p in ("beta", "gamma"):
        names.append("bert/encoder/layer_%d/%s/LayerNorm/%s" % (n, scope, p))
  return names


def _adapter_variables(scopes=("attention/output", "output")):
  names = []
  for n in range(LAYERS):
    for scope in scopes:
      for p in ("weights1", "biases1", "weights2", "biases2"):
        names.append("bert/encoder/layer_%d/%s/adapters/%s" % (n, scope, p))
  return names


HEAD = ["output_weights", "output_bias"]


def _names(variables):
  return [base.variable_name(v) for v in variables]


def test_adapters_mode_trains_exactly_adapters_layer_norms_and_head():
  method = methods.build("adapters", {"adapter_size": 8}, LAYERS)
  variables = tiny_classifier_variables(method)
  trained = _names(method.trained_variables(variables))
  assert len(trained) == len(set(trained))
  expected = set(_adapter_variables() + _layer_norms() + HEAD)
  assert len(expected) == 16 + 10 + 2
  assert sorted(trained) == sorted(expected)
  frozen = set(_names(variables)) - set(trained)
  # Spelled out: none of these train.
  for name in ("bert/embeddings/word_embeddings",
               "bert/embeddings/position_embeddings",
               "bert/embeddings/token_type_embeddings",
               "bert/pooler/dense/kernel", "bert/pooler/dense/bias",
               "bert/encoder/layer_0/attention/self/query/kernel",
               "bert/encoder/layer_1/attention/output/dense/bias",
               "bert/encoder/layer_1/intermediate/dense/kernel",
               "bert/encoder/layer_1/output/dense/kernel"):
    assert name in frozen
  # The order of the input is kept.
  assert trained == [n for n in _names(variables) if n in expected]


def test_full_mode_trains_everything():
  method = methods.build("full", {"adapter_size": 8,
                                  "adapter_placement": "both"}, LAYERS)
  variables = tiny_classifier_variables(method)
  assert method.trained_variables(variables) == variables
  assert len(variables) == 5 + LAYERS * (16 + 8) + 2 + 2


def test_adapters_mode_without_adapters_trains_layer_norms_and_head():
  method = methods.build("adapters", {"adapter_placement": "none"}, LAYERS)
  assert not method.adds_anything
  variables = tiny_classifier_variables(method)
  assert _names(variables) == _names(tiny_classifier_variables(None))
  trained = _names(method.trained_variables(variables))
  assert sorted(trained) == sorted(_layer_norms() + HEAD)


@pytest.mark.parametrize("placement,scopes", [
    ("attention", ("attention/output",)),
    ("ffn", ("output",)),
    ("none", ()),
])
def test_adapters_mode_follows_placement(placement, scopes):
  method = methods.build("adapters", {"adapter_size": 8,
                                      "adapter_placement": placement}, LAYERS)
  variables = tiny_classifier_variables(method)
  trained = _names(method.trained_variables(variables))
  assert sorted(trained) == sorted(_adapter_variables(scopes) + _layer_norms()
                                   + HEAD)


def test_unknown_tuning_mode_raises():
  with pytest.raises(ValueError, match="tuning_mode"):
    methods.build("adapter")
  with pytest.raises(ValueError, match="tuning_mode"):
    methods.get("bias_only")


def test_names_with_and_without_suffix_agree():
  variables = tiny_classifier_variables(ADAPTERS)
  for method in (ADAPTERS, FULL):
    for v in variables:
      assert v.name.endswith(":0")
      by_variable = method.trains(v)
      assert method.trains(v.name) == by_variable
      assert method.trains(v.name[:-2]) == by_variable
  assert ADAPTERS.trains("output_bias:0")
  assert not ADAPTERS.trains("bert/pooler/dense/bias:0")


@pytest.mark.parametrize("name,trained", [
    ("output_weights", True),
    ("output_bias", True),
    ("bert/encoder/layer_3/output/adapters/weights2", True),
    ("bert/embeddings/LayerNorm/gamma", True),
    # Near misses of the head's names stay frozen.
    ("cls/predictions/output_bias", False),
    ("output_weights_extra", False),
    ("bert/encoder/layer_3/output/dense/bias", False),
    ("bert/embeddings/word_embeddings", False),
])
def test_is_trained_by_name(name, trained):
  assert ADAPTERS.trains(name) == trained
  assert FULL.trains(name)


# ---------------------------------------------------------------------------
# Each method object: its defaults, exact trained names, bundle, counts.
# ---------------------------------------------------------------------------


def _tiny_config():
  return modeling.BertConfig.from_dict(tiny_bert_config_dict())


def _model_shapes(method, num_labels=NUM_LABELS):
  return model_fn.describe_model(_tiny_config(), method, num_labels, 16)


def _backbone_groups(config_dict):
  """Closed-form sizes of BERT's groups (LayerNorms apart)."""
  d, i = config_dict["hidden_size"], config_dict["intermediate_size"]
  layers = config_dict["num_hidden_layers"]
  return {
      "embeddings": (config_dict["vocab_size"] + config_dict["type_vocab_size"]
                     + config_dict["max_position_embeddings"]) * d,
      "attention": layers * 4 * (d * d + d),
      "feed-forward": layers * (d * i + i + i * d + d),
      "pooler": d * d + d,
  }


def test_registry_holds_every_method_once():
  assert methods.names() == ["adapters", "full", "head", "layernorm",
                             "top_layers", "bitfit", "lora", "ia3", "prefix",
                             "parallel_adapters", "pfeiffer", "mam"]
  assert list(methods.registry()) == methods.names()
  for (name, cls) in methods.registry().items():
    assert cls.name == name and cls.description
    assert methods.get(name) is cls
  assert not methods.get("adapters").whole_model
  assert methods.get("full").whole_model


def test_full_builds_no_adapters_unless_asked():
  full = methods.build("full")
  assert full["adapter_placement"] == "none" and not full.adds_anything
  assert not any("/adapters/" in n for n in _model_shapes(full))
  default = methods.build("adapters")
  assert default["adapter_placement"] == "both" and default.adds_anything
  off = methods.build("adapters", {"adapter_placement": "none"})
  assert not off.adds_anything
  assert not any("/adapters/" in n for n in _model_shapes(off))
  asked = methods.build("full", {"adapter_size": 4, "adapter_placement": "ffn"})
  assert asked.adds_anything
  assert asked["adapter_placement"] == "ffn"
  assert asked["adapter_size"] == 4
  assert asked.trains("bert/encoder/layer_0/output/adapters/weights1")


def test_bad_adapter_setting_names_its_flag():
  with pytest.raises(ValueError, match="--adapter_size"):
    methods.build("adapters", {"adapter_size": 0})
  with pytest.raises(ValueError, match="--adapter_activation"):
    methods.build("adapters", {"adapter_activation": "sigmoidish"})


@pytest.mark.parametrize("size", [1, 8, 64])
@pytest.mark.parametrize("placement,num_per_layer", [
    ("both", 2), ("attention", 1), ("ffn", 1)])
def test_adapters_parameter_counts_in_closed_form(size, placement,
                                                  num_per_layer):
  method = methods.build("adapters", {"adapter_size": size,
                                      "adapter_placement": placement})
  (trained, frozen) = base.parameter_counts(_model_shapes(method), method)
  config = tiny_bert_config_dict()
  d, m = config["hidden_size"], size
  # One adapter: W_down [d, m] + b_down [m] + W_up [m, d] + b_up [d].
  assert trained == {
      "adapters": LAYERS * num_per_layer * (2 * m * d + d + m),
      "LayerNorm": (1 + 2 * LAYERS) * 2 * d,
      "head": NUM_LABELS * d + NUM_LABELS,
  }
  assert list(trained) == ["adapters", "LayerNorm", "head"]
  assert frozen == _backbone_groups(config)


def test_full_parameter_counts_in_closed_form():
  config = tiny_bert_config_dict()
  d = config["hidden_size"]
  method = methods.build("full")
  (trained, frozen) = base.parameter_counts(_model_shapes(method), method)
  expected = dict(_backbone_groups(config), LayerNorm=(1 + 2 * LAYERS) * 2 * d,
                  head=NUM_LABELS * d + NUM_LABELS)
  assert trained == expected and frozen == {}
  with_adapters = methods.build("full", {"adapter_size": 8,
                                         "adapter_placement": "both"})
  (trained, frozen) = base.parameter_counts(_model_shapes(with_adapters),
                                            with_adapters)
  assert trained["adapters"] == LAYERS * 2 * (2 * 8 * d + d + 8)
  assert frozen == {}


def test_parameter_summary_names_every_group():
  method = methods.build("adapters", {"adapter_size": 8})
  line = model_fn.parameter_summary(_model_shapes(method), method)
  assert line.startswith("Parameters: ")
  assert "tuning_mode=adapters [adapters " in line
  for group in ("LayerNorm", "head", "embeddings", "attention",
                "feed-forward", "pooler"):
    assert re.search(r"[ \[]%s [\d,]+" % group, line), group
  full = methods.build("full")
  assert "frozen [none]" in model_fn.parameter_summary(_model_shapes(full),
                                                       full)


def _save_trained_checkpoint(folder, method, num_labels=2):
  """The tiny classifier with `method`'s optimizer, saved like training does."""
  import optimization
  with tf.Graph().as_default():
    input_ids = tf.zeros([2, 8], dtype=tf.int32)
    outputs = model_fn.create_model(
        _tiny_config(), True, {"input_ids": input_ids,
                               "input_mask": tf.ones_like(input_ids),
                               "segment_ids": input_ids,
                               "label_ids": tf.zeros([2], tf.int32)},
        num_labels, method)
    optimization.create_optimizer(
        outputs["loss"], 1e-3, 10, 1, False,
        method.trained_variables(tf.trainable_variables()))
    saver = tf.train.Saver()
    with new_session() as s:
      s.run(tf.global_variables_initializer())
      s.run(tf.train.get_global_step().assign(7))
      return saver.save(s, os.path.join(folder, "model.ckpt"), global_step=7)


@pytest.mark.parametrize("mode,placement,scopes", [
    ("adapters", "both", ("attention/output", "output")),
    ("adapters", "attention", ("attention/output",)),
    ("adapters", "none", ()),
    ("full", None, ()),
    ("full", "both", ("attention/output", "output")),
])
def test_exact_trained_names_and_bundle_contents(tmp_path, mode, placement,
                                                 scopes):
  method = methods.build(mode, {"adapter_size": 8,
                                "adapter_placement": placement})
  all_names = list(_model_shapes(method, num_labels=2))
  if mode == "adapters":
    expected = sorted(_adapter_variables(scopes) + _layer_norms() + HEAD)
  else:
    expected = sorted(all_names)
    assert len([n for n in all_names if "/adapters/" in n]) == (
        len(_adapter_variables(scopes)))
  assert sorted(method.trained_variables(all_names)) == expected
  method.check(all_names)  # a consistent method passes its own check

  checkpoint = _save_trained_checkpoint(str(tmp_path / "train"), method)
  bundle_dir = str(tmp_path / "bundle")
  info = bundles.export_bundle(checkpoint, bundle_dir, method,
                               glue.get_task("SST-2"), _tiny_config(),
                               bundles.FeatureSettings(16, True))
  stored = checkpoint_values(os.path.join(bundle_dir,
                                          bundles.VARIABLES_PREFIX))
  # Exactly the trained variables: no frozen weight, no Adam slot, no step.
  assert sorted(stored) == expected
  with open(os.path.join(bundle_dir, bundles.BUNDLE_JSON)) as f:
    metadata = json.load(f)
  assert metadata["tuning_mode"] == mode
  assert metadata["global_step"] == 7
  assert sorted(metadata["backbone_variables"]) == sorted(
      set(all_names) - set(expected))
  # Version 4 on: every option of the method, resolved; no "adapter" entry.
  # Version 5: the vocabulary's hash (none given here: null).
  assert metadata["version"] == bundles.BUNDLE_VERSION == 5
  assert metadata["vocab_sha256"] is None
  assert "adapter" not in metadata
  assert metadata["options"] == method.settings
  assert metadata["options"]["adapter_placement"] == (placement or "none")
  assert info["num_parameters"] == sum(v.size for v in stored.values())
  if method.whole_model:
    with pytest.raises(ValueError, match="whole fine-tuned model"):
      bundles.read_bundle(bundle_dir)
  else:
    again = bundles.read_bundle(bundle_dir).tuning_method()
    assert type(again) is type(method)
    assert again.settings == metadata["options"] == method.settings
    assert again.adds_anything == bool(scopes)
    assert sorted(again.trained_variables(all_names)) == expected


# ---------------------------------------------------------------------------
# The refusal: added variables that would not train.
# ---------------------------------------------------------------------------


class _HeadOnly(adapters.AdapterLayers, base.TuningMethod):
  """A method that builds adapters but trains only the head."""
  name = "head_only_for_test"
  description = "only the classifier head trains"
  options = adapters.ADAPTER_OPTIONS + (base.TRAIN_POOLER,)

  def trains(self, name):
    return base.is_head(name)


def test_check_refuses_added_variables_that_would_stay_frozen():
  with_adapters = _HeadOnly.create({"adapter_size": 8})
  names = list(_model_shapes(with_adapters))
  with pytest.raises(ValueError) as excinfo:
    with_adapters.check(names)
  message = str(excinfo.value)
  assert "\n" not in message
  assert "--tuning_mode=head_only_for_test" in message
  assert "recorded as backbone weights" in message
  assert "/adapters/" in message
  without = _HeadOnly.create({"adapter_placement": "none"})
  without.check(list(_model_shapes(without)))


def test_run_refuses_the_combination_before_writing_anything(
    tmp_path, tiny_bert, monkeypatch):
  monkeypatch.setitem(methods.registry(), _HeadOnly.name, _HeadOnly)
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, output_dir, tuning_mode=_HeadOnly.name,
          adapter_placement="both"),
      "--tuning_mode=head_only_for_test", "recorded as backbone weights")
  assert not os.path.exists(output_dir)


def test_backbone_of_a_method_is_everything_it_does_not_add():
  method = methods.build("adapters", {"adapter_size": 8})
  names = list(_model_shapes(method))
  new = [n for n in names if method.is_new(n)]
  assert sorted(new) == sorted(_adapter_variables() + HEAD)
  assert not any(method.is_new(n) for n in names if n.startswith("bert/")
                 and "/adapters/" not in n)
  # Values are not what decides: a bundle of the backbone would be the same.
  assert np.all([method.adds(n) == ("/adapters/" in n) for n in names])



# ---------------------------------------------------------------------------
# The baselines: head, layernorm, top_layers, bitfit, adapters without
# LayerNorms; the pooler option.
# ---------------------------------------------------------------------------

POOLER = ["bert/pooler/dense/kernel", "bert/pooler/dense/bias"]


def _layer_variables(layer):
  prefix = "bert/encoder/layer_%d/" % layer
  names = []
  for dense in ("attention/self/query", "attention/self/key",
                "attention/self/value", "attention/output/dense",
                "intermediate/dense", "output/dense"):
    names += [prefix + dense + "/kernel", prefix + dense + "/bias"]
  for scope in ("attention/output", "output"):
    names += [prefix + scope + "/LayerNorm/beta",
              prefix + scope + "/LayerNorm/gamma"]
  return names


def _biases():
  names = ["bert/embeddings/LayerNorm/beta", "bert/pooler/dense/bias"]
  for n in range(LAYERS):
    names += [v for v in _layer_variables(n)
              if v.endswith("/bias") or v.endswith("/beta")]
  return names


def _build(mode, **options):
  """The method with the tiny adapter size where it takes one."""
  if methods.get(mode).option("adapter_size") is not None:
    options.setdefault("adapter_size", 8)
  return methods.build(mode, options, num_layers=LAYERS)


BASELINES = [
    # (mode, options, expected trained names)
    ("head", {}, HEAD),
    ("head", {"train_pooler": True}, HEAD + POOLER),
    ("layernorm", {}, _layer_norms() + HEAD),
    ("layernorm", {"train_pooler": True}, _layer_norms() + HEAD + POOLER),
    ("top_layers", {"tune_top_layers": 1}, _layer_variables(1) + POOLER + HEAD),
    ("top_layers", {"tune_top_layers": 2},
     _layer_variables(0) + _layer_variables(1) + POOLER + HEAD),
    ("top_layers", {"tune_top_layers": 1, "train_pooler": False},
     _layer_variables(1) + HEAD),
    ("bitfit", {}, _biases() + HEAD),
    ("bitfit", {"train_pooler": True},
     _biases() + HEAD + ["bert/pooler/dense/kernel"]),
    ("adapters", {"train_layernorm": False}, _adapter_variables() + HEAD),
    ("adapters", {"train_pooler": True},
     _adapter_variables() + _layer_norms() + HEAD + POOLER),
]


@pytest.mark.parametrize("mode,options,expected", BASELINES)
def test_each_method_trains_exactly_what_it_names(mode, options, expected):
  method = _build(mode, **options)
  names = list(_model_shapes(method, num_labels=2))
  assert len(set(expected)) == len(expected)
  assert sorted(method.trained_variables(names)) == sorted(expected)
  method.check(names)
  # Only adapters add variables; the baselines build plain BERT + head.
  assert any("/adapters/" in n for n in names) == (mode == "adapters")


def test_baseline_parameter_counts_in_closed_form():
  config = tiny_bert_config_dict()
  d, i = config["hidden_size"], config["intermediate_size"]
  head = NUM_LABELS * d + NUM_LABELS
  pooler = d * d + d
  layer_norms = (1 + 2 * LAYERS) * 2 * d
  one_layer = 4 * (d * d + d) + (d * i + i + i * d + d) + 2 * 2 * d
  # Biases per layer: Q, K, V, attention output (d each), intermediate (i),
  # output (d), two LayerNorm betas (d each).
  layer_biases = 4 * d + i + d + 2 * d

  def trained_total(mode, **options):
    method = _build(mode, **options)
    (trained, _) = base.parameter_counts(_model_shapes(method), method)
    return sum(trained.values())

  assert trained_total("head") == head
  assert trained_total("head", train_pooler=True) == head + pooler
  assert trained_total("layernorm") == layer_norms + head
  assert trained_total("top_layers", tune_top_layers=1) == (
      one_layer + pooler + head)
  assert trained_total("top_layers", tune_top_layers=2) == (
      2 * one_layer + pooler + head)
  assert trained_total("bitfit") == LAYERS * layer_biases + d + d + head
  assert trained_total("adapters", train_layernorm=False) == (
      LAYERS * 2 * (2 * 8 * d + d + 8) + head)


@pytest.mark.parametrize("mode,options,fragment", [
    ("full", {"train_pooler": False}, "--train_pooler does not apply"),
    ("full", {"train_layernorm": True}, "--train_layernorm does not apply"),
    ("head", {"train_layernorm": False}, "--train_layernorm does not apply"),
    ("bitfit", {"tune_top_layers": 1}, "--tune_top_layers does not apply"),
    ("adapters", {"tune_top_layers": 1}, "--tune_top_layers does not apply"),
    ("top_layers", {}, "needs --tune_top_layers"),
    ("top_layers", {"tune_top_layers": 3}, "the model has 2 layers"),
    ("top_layers", {"tune_top_layers": 0}, "--tune_top_layers"),
])
def test_methods_refuse_options_that_contradict_them(mode, options, fragment):
  with pytest.raises(ValueError) as excinfo:
    _build(mode, **options)
  assert fragment in str(excinfo.value)
  assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize("mode", ["head", "layernorm", "top_layers",
                                  "bitfit"])
def test_baselines_refuse_adapters_they_would_not_train(mode):
  """A baseline cannot be given adapters: the flag is refused when the
  method is built, naming it, and what it builds holds none."""
  options = {"tune_top_layers": 1} if mode == "top_layers" else {}
  with pytest.raises(ValueError) as excinfo:
    _build(mode, adapter_placement="both", **options)
  assert ("--adapter_placement does not apply to --tuning_mode=%s" % mode
          in str(excinfo.value))
  assert "\n" not in str(excinfo.value)
  method = _build(mode, **options)
  assert not method.adds_anything
  names = list(_model_shapes(method))
  assert not any("/adapters/" in n for n in names)
  method.check(names)


@pytest.mark.parametrize("mode,options", [
    ("top_layers", {"tune_top_layers": 1}),
    ("bitfit", {"train_pooler": True}),
    ("adapters", {"train_layernorm": False}),
])
def test_bundle_records_and_restores_the_method_options(tmp_path, mode,
                                                        options):
  method = _build(mode, **options)
  all_names = list(_model_shapes(method, num_labels=2))
  checkpoint = _save_trained_checkpoint(str(tmp_path / "train"), method)
  bundle_dir = str(tmp_path / "bundle")
  bundles.export_bundle(checkpoint, bundle_dir, method,
                        glue.get_task("SST-2"), _tiny_config(),
                        bundles.FeatureSettings(16, True))
  stored = checkpoint_values(os.path.join(bundle_dir,
                                          bundles.VARIABLES_PREFIX))
  assert sorted(stored) == sorted(method.trained_variables(all_names))
  bundle = bundles.read_bundle(bundle_dir)
  again = bundle.tuning_method()
  assert type(again) is type(method) and again.settings == method.settings
  for (name, value) in options.items():
    assert bundle.settings()[name] == value


@pytest.mark.slow
def test_top_layers_run_changes_only_the_top_layer_pooler_and_head(
    tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir,
                            tuning_mode="top_layers", tune_top_layers=1,
                            do_eval=False)
  before = checkpoint_values(tiny_bert["init_checkpoint"])
  after = checkpoint_values(tf.train.latest_checkpoint(output_dir))
  expected = set(_layer_variables(1) + POOLER)
  for (name, value) in before.items():
    # The checkpoint is compact: only what trains is in it, and it moved.
    assert (name in after) == (name in expected), name
    if name in after:
      assert not np.array_equal(value, after[name]), name
  # A bundle of the top layer, pooler and head was written.
  bundle = bundles.read_bundle(os.path.join(output_dir, "adapter_bundle"))
  assert sorted(bundle.values) == sorted(expected | set(HEAD))
