"""Eval-time adapter ablation (Houlsby et al. 2019, Fig. 6): the adapters of
chosen layers are switched off in a trained model, with no retraining."""


import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import new_session
from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import tiny_bert_config_dict
from conftest import write_sst2_task
from adapter_bert import methods
from adapter_bert.methods import base
import modeling


@pytest.mark.parametrize("spec,layers", [
    ("2-5", [2, 3, 4, 5]), ("0,3", [0, 3]), ("0-1,3", [0, 1, 3]),
    ("5", [5]), (" 1 , 1-2 ", [1, 2]), ("", []), (None, []),
])
def test_layer_lists_parse(spec, layers):
  assert base.parse_layer_list(spec, 6) == layers
  if layers:
    assert base.parse_layer_list(base.format_layer_list(layers),
                                 6) == layers


@pytest.mark.parametrize("spec,fragment", [
    ("5-2", "outside layers 0-5"), ("6", "outside layers 0-5"),
    ("a", "not a layer"), ("1-", "not a layer"), ("-1", "not a layer"),
])
def test_bad_layer_lists_are_refused(spec, fragment):
  with pytest.raises(ValueError, match=fragment):
    base.parse_layer_list(spec, 6)


def test_format_layer_list_uses_spans():
  assert base.format_layer_list([0, 1, 2, 3, 5, 7, 8]) == "0-3,5,7-8"


def pooled_output(tiny_bert, method, ablated=()):
  """The tiny BERT's pooled output with `method`'s hooks (None: plain BERT),
  switched off in the `ablated` layers; adapters (if any) get fixed large
  values."""
  config = modeling.BertConfig.from_dict(tiny_bert_config_dict())
  rng = np.random.RandomState(0)
  input_ids = rng.randint(5, 30, size=[3, 9]).astype(np.int32)
  with tf.Graph().as_default():
    hooks = method.with_layers_off(ablated) if method is not None else None
    model = modeling.BertModel(config, False, tf.constant(input_ids),
                               hooks=hooks)
    backbone = [v for v in tf.global_variables() if "adapters" not in v.name]
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver(backbone).restore(session, tiny_bert["init_checkpoint"])
      for (i, v) in enumerate(v for v in tf.global_variables()
                              if "adapters" in v.name):
        v.load(np.random.RandomState(i).normal(0, 0.3, v.shape.as_list()),
               session)
      return session.run(model.get_pooled_output())


def test_ablating_no_layer_changes_nothing_and_every_layer_gives_plain_bert(
    tiny_bert):
  config = methods.build("adapters", {"adapter_size": 8}, num_layers=2)
  adapted = pooled_output(tiny_bert, config)
  plain = pooled_output(tiny_bert, None)
  # The adapters matter here, so the comparisons below can fail.
  assert np.max(np.abs(adapted - plain)) > 1e-2
  np.testing.assert_array_equal(pooled_output(tiny_bert, config, ()), adapted)
  np.testing.assert_allclose(pooled_output(tiny_bert, config, (0, 1)), plain,
                             atol=1e-6, rtol=0)
  one = pooled_output(tiny_bert, config, (1,))
  assert np.max(np.abs(one - adapted)) > 1e-3
  assert np.max(np.abs(one - plain)) > 1e-3
  # Switching layers off makes a copy: the method itself stays whole.
  assert config.layers_off == frozenset()
  np.testing.assert_array_equal(pooled_output(tiny_bert, config), adapted)


@pytest.mark.slow
def test_eval_with_ablated_adapters_writes_its_own_results(tmp_path,
                                                           tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir,
                            adapter_init_scale=0.3)
  trained = read_eval_results(output_dir)
  results = {}
  for spec in ("0", "0-1"):
    run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=False,
                              ablate_adapters=spec, adapter_init_scale=0.3)
    results[spec] = read_eval_results(
        output_dir, "eval_results_ablated_%s.txt" % spec)
  # eval_results.txt is the trained model's and stays as it was.
  assert read_eval_results(output_dir) == trained
  assert results["0-1"]["global_step"] == trained["global_step"]
  assert len({trained["eval_loss"], results["0"]["eval_loss"],
              results["0-1"]["eval_loss"]}) == 3


@pytest.mark.parametrize("settings,fragments", [
    ({"ablate_adapters": "0", "do_train": True}, ["--ablate_adapters=0",
                                                  "--do_eval"]),
    ({"ablate_adapters": "2", "do_train": False}, ["--ablate_adapters=2",
                                                   "outside layers 0-1"]),
    ({"ablate_adapters": "0", "do_train": False, "tuning_mode": "layernorm"},
     ["--ablate_adapters=0", "builds no adapters"]),
])
def test_bad_ablations_are_one_line_errors(tmp_path, tiny_bert, settings,
                                           fragments):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir,
                                        str(tmp_path / "out"), **settings),
      *fragments)
