"""Evaluation and prediction in one graph and one session
(`session_predictor`) against the Estimator's path (`Estimator.predict`,
a graph per call), on a trained tiny model."""

import os

import numpy as np
import pytest

from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import write_sst2_task
from adapter_bert.classifier import job as job_lib
from adapter_bert.methods import base

pytestmark = pytest.mark.slow

SPANS = ["0", "0-1", "1"]


def read_tsv(path):
  with open(path) as f:
    return np.array([[float(x) for x in line.split("\t")] for line in f])


def evaluate(tiny_bert, data_dir, output_dir, **settings):
  """eval_results.txt and test_results.tsv of a trained run folder."""
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=False,
                            do_predict=True, adapter_init_scale=0.3,
                            **settings)
  return (read_eval_results(output_dir),
          read_tsv(os.path.join(output_dir, "test_results.tsv")))


@pytest.mark.parametrize("padding", ["static", "bucket"])
def test_one_session_predicts_what_the_estimator_predicts(
    tmp_path, tiny_bert, monkeypatch, padding):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_eval=False,
                            adapter_init_scale=0.3, padding=padding)
  (results, probabilities) = evaluate(tiny_bert, data_dir, output_dir,
                                      padding=padding)
  monkeypatch.setattr(job_lib, "predicts_in_one_session", lambda s: False)
  (expected, expected_probabilities) = evaluate(tiny_bert, data_dir,
                                                output_dir, padding=padding)
  assert results["global_step"] == expected["global_step"] > 0
  assert results == pytest.approx(expected, abs=1e-6)
  np.testing.assert_allclose(probabilities, expected_probabilities,
                             atol=1e-6)


def test_each_span_in_one_session_equals_each_span_rebuilt(tmp_path,
                                                           tiny_bert,
                                                           monkeypatch):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir,
                            adapter_init_scale=0.3)
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=False,
                            ablate_adapters="each_span",
                            adapter_init_scale=0.3)
  assert [first_last for first_last in base.layer_spans(2)] == [
      (0, 0), (0, 1), (1, 1)]
  in_one = {spec: read_eval_results(
      output_dir, "eval_results_ablated_%s.txt" % spec) for spec in SPANS}
  monkeypatch.setattr(job_lib, "predicts_in_one_session", lambda s: False)
  for spec in SPANS:
    os.remove(os.path.join(output_dir, "eval_results_ablated_%s.txt" % spec))
    run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=False,
                              ablate_adapters=spec, adapter_init_scale=0.3)
    assert in_one[spec] == pytest.approx(read_eval_results(
        output_dir, "eval_results_ablated_%s.txt" % spec), abs=1e-6)
  # The spans differ from each other, so the comparisons can fail.
  assert len({in_one[spec]["eval_loss"] for spec in SPANS}) == 3


def test_a_variable_no_checkpoint_holds_is_refused(tiny_bert):
  """Predictions never come from initial values: the backbone's checkpoint
  alone holds no adapter and no head."""
  from conftest import tiny_bert_config_dict
  from adapter_bert import errors
  from adapter_bert import methods
  from adapter_bert.classifier import model_fn
  from adapter_bert.classifier import session_predictor
  import modeling
  model = model_fn.Model(
      modeling.BertConfig.from_dict(tiny_bert_config_dict()), 2,
      methods.build("adapters", {"adapter_size": 4}, num_layers=2))
  with pytest.raises(errors.InputError,
                     match=r"no checkpoint holds \d+ of the model's "
                           r"variables \(bert/encoder/layer_0/"):
    session_predictor.SessionPredictor(model, [tiny_bert["init_checkpoint"]],
                                       None)


# Adapters (a sub-layer's output) and prefix tuning (whose positions depend
# on whether any layer is on): LoRA and the rest switch as adapters do.
@pytest.mark.parametrize("name,options", [
    ("adapters", {"adapter_size": 4}), ("prefix", {})])
def test_spans_predicted_together_equal_each_span_alone(tmp_path, name,
                                                        options):
  """`predict_spans` resumes passes from layer outputs shared between spans;
  each span's probabilities must equal its own full pass."""
  import tensorflow.compat.v1 as tf
  from conftest import tiny_bert_config_dict
  from conftest import write_tiny_bert
  from adapter_bert import glue
  from adapter_bert import methods
  from adapter_bert.classifier import features
  from adapter_bert.classifier import model_fn
  from adapter_bert.classifier import session_predictor
  import modeling
  import tokenization
  num_layers = 4
  bert = write_tiny_bert(str(tmp_path / "bert"), num_hidden_layers=num_layers)
  config = modeling.BertConfig.from_dict(
      tiny_bert_config_dict(num_hidden_layers=num_layers))
  method = methods.build(name, options, num_layers=num_layers)
  model = model_fn.Model(config, 2, method)
  # The method's variables and the head at random values, so that every
  # span changes the outputs.
  checkpoint = str(tmp_path / "trained" / "model.ckpt")
  with tf.Graph().as_default():
    ids = tf.zeros([1, 4], tf.int32)
    model_fn.create_model(config, False, {"input_ids": ids,
                                          "input_mask": ids,
                                          "segment_ids": ids}, 2,
                          method.for_model(False))
    own = [v for v in tf.global_variables()
           if method.adds(base.variable_name(v)) or
           base.is_head(base.variable_name(v))]
    with tf.Session() as session:
      for v in own:
        v.load(np.random.RandomState(len(v.name)).normal(
            0.3, 0.3, v.shape.as_list()), session)
      tf.train.Saver(own).save(session, checkpoint, write_meta_graph=False)
  data_dir = write_sst2_task(str(tmp_path / "data"), num_dev=21)
  task = glue.get_task("SST-2")
  examples = task.read_examples(data_dir, task.dev[0])
  tokenizer = tokenization.FullTokenizer(bert["vocab_file"], True)
  cache = features.FeatureCache(str(tmp_path / "cache"), task, tokenizer,
                                bert["vocab_file"], True, 16)
  predictor = session_predictor.SessionPredictor(
      model, [checkpoint, bert["init_checkpoint"]], cache, "bucket")
  spans = [()] + [tuple(range(first, last + 1))
                  for (first, last) in base.layer_spans(num_layers)]
  path = task.path(data_dir, task.dev[0])
  together = predictor.predict_spans("dev", examples, path, 8, spans)
  assert list(together) == spans
  probabilities = {}
  for span in spans:
    alone = predictor.predict("dev", examples, path, 8, span)
    got = np.array([row["probabilities"] for row in together[span]])
    want = np.array([row["probabilities"] for row in alone])
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    probabilities[span] = got
  predictor.close()
  # Every span moves the outputs, so the comparisons can fail.
  for span in spans[1:]:
    assert np.max(np.abs(probabilities[span] - probabilities[()])) > 1e-4
