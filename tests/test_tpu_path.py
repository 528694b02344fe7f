"""The Cloud TPU path, as far as a machine without a TPU can take it: the
model_fn builds TPU specs (CrossShardOptimizer, no host-side ops in the step),
and a TPUEstimator with use_tpu=True is constructed from the flags."""

import pytest
import tensorflow.compat.v1 as tf
from tensorflow.python.ops import summary_ops_v2  # TPUEstimator's own use

from conftest import feature_batch
from conftest import new_session
from conftest import scalar_events
from conftest import tiny_job_flags
from conftest import write_sst2_task
from adapter_bert import classifier
from adapter_bert import methods
from adapter_bert.classifier import devices
from adapter_bert.classifier import inputs
from adapter_bert.classifier import model_fn as model_fn_lib
import modeling


def tpu_model_fn(tiny_bert):
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  method = methods.build("adapters", {"adapter_size": 8}, num_layers=2)
  return model_fn_lib.model_fn_builder(
      model_fn_lib.Model(config, 2, method), [tiny_bert["init_checkpoint"]],
      use_tpu=True,
      training=model_fn_lib.Training(learning_rate=1e-3, num_train_steps=10,
                                     num_warmup_steps=1, max_loss=1e4,
                                     batch_size=8))


def test_train_spec_builds_for_tpu(tiny_bert):
  model_fn = tpu_model_fn(tiny_bert)
  with tf.Graph().as_default() as graph:
    tf.train.get_or_create_global_step()
    spec = model_fn(feature_batch(8, 16), None, tf.estimator.ModeKeys.TRAIN,
                    {"batch_size": 8, "use_tpu": True})
    assert isinstance(spec, tf.estimator.tpu.TPUEstimatorSpec)
    assert not spec.training_hooks  # TPUEstimator logs its own rates
    op_types = {op.type for op in graph.get_operations()}
    # CrossShardOptimizer sums gradients over the TPU cores...
    assert "CrossReplicaSum" in op_types
    # ...and the divergence guard (an Assert, which XLA lacks) is not built.
    assert not [op for op in graph.get_operations()
                if "divergence_guard" in op.name]
    # Adam's slots exist only for what trains.
    slots = [v.name for v in tf.global_variables() if "/adam_m" in v.name]
    assert slots and all("adapters" in n or "LayerNorm" in n or
                         n.startswith("output_") for n in slots), slots


def test_host_call_carries_loss_and_learning_rate_to_tensorboard(tiny_bert,
                                                                  tmp_path):
  model_fn = tpu_model_fn(tiny_bert)
  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()
    spec = model_fn(feature_batch(8, 16), None, tf.estimator.ModeKeys.TRAIN,
                    {"batch_size": 8, "use_tpu": True},
                    config=tf.estimator.tpu.RunConfig(
                        model_dir=str(tmp_path / "model")))
    (host_fn, tensors) = spec.host_call
    # Every tensor has the leading axis the outfeed needs.
    assert [t.shape.as_list() for t in tensors] == [[1]] * 3
  # The host side, run here on the values a TPU step would send out.
  with tf.Graph().as_default():
    summary_ops = host_fn(tf.constant([7], tf.int64), tf.constant([1e-3]),
                          tf.constant([0.25]))
    with new_session() as session:
      # What TPUEstimator's host-call hook runs before the first step.
      session.run(summary_ops_v2.summary_writer_initializer_op())
      session.run(summary_ops)
    # Closing the session destroyed the writer, which flushed it.
  assert scalar_events(str(tmp_path / "model")) == {
      "train/learning_rate": [(7, pytest.approx(1e-3))],
      "train/loss": [(7, 0.25)]}


def test_predict_spec_builds_for_tpu(tiny_bert):
  model_fn = tpu_model_fn(tiny_bert)
  with tf.Graph().as_default():
    spec = model_fn(feature_batch(8, 16), None,
                    tf.estimator.ModeKeys.PREDICT,
                    {"batch_size": 8, "use_tpu": True})
    assert sorted(spec.predictions) == [
        "example_index", "is_real_example", "per_example_loss",
        "predictions", "probabilities"]
    assert all(t.shape[0] == 8 for t in spec.predictions.values())


def test_tpu_estimator_is_constructed_from_the_flags(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  settings = classifier.Settings(**tiny_job_flags(
      tiny_bert, data_dir, str(tmp_path / "out"), use_tpu=True,
      master="grpc://127.0.0.1:1", num_tpu_cores=8, iterations_per_loop=50))
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  method = methods.build("adapters", {"adapter_size": 8}, num_layers=2)
  estimator = devices.make_estimator(
      settings, model_fn_lib.Model(config, 2, method), str(tmp_path / "out"),
      [tiny_bert["init_checkpoint"]], num_train_steps=10, num_warmup_steps=1)
  assert isinstance(estimator, tf.estimator.tpu.TPUEstimator)
  assert estimator.config.master == "grpc://127.0.0.1:1"
  assert estimator.config.tpu_config.iterations_per_loop == 50
  assert estimator.config.tpu_config.num_shards == 8
  assert (estimator.config.tpu_config.per_host_input_for_training ==
          tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2)
  # Static shapes on TPU: the automatic padding policy is "static".
  assert inputs.resolve_padding(settings.padding, True) == "static"
