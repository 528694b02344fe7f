"""--precision: the encoder computes in bfloat16 or float16 while variables,
LayerNorm, softmax and the loss stay float32; checkpoints and bundles are
float32, so a bundle serves under any precision; float16 trains under
TensorFlow's dynamic loss scale, which skips a step whose gradients overflow."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import checkpoint_values
from conftest import feature_batch
from conftest import new_session
from conftest import read_eval_results
from conftest import run_classifier_cli
from conftest import train_tiny
from conftest import write_sst2_task
from adapter_bert import methods
from adapter_bert.classifier import model_fn as model_fn_lib
import modeling
import optimization

MIXED = ["mixed_bfloat16", "mixed_float16"]
HALF_DTYPES = (tf.bfloat16, tf.float16)


def train_graph(tiny_bert, precision, use_tpu=False):
  """The tiny model's TRAIN graph under `precision`; returns (graph, spec)."""
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  method = methods.build("adapters", {"adapter_size": 8}, num_layers=2)
  model_fn = model_fn_lib.model_fn_builder(
      model_fn_lib.Model(config, 2, method, precision),
      [tiny_bert["init_checkpoint"]], use_tpu=use_tpu,
      training=model_fn_lib.Training(learning_rate=1e-3, num_train_steps=10,
                                     num_warmup_steps=1, max_loss=1e4,
                                     batch_size=8))
  graph = tf.Graph()
  with graph.as_default():
    tf.train.get_or_create_global_step()
    spec = model_fn(feature_batch(8, 16), None, tf.estimator.ModeKeys.TRAIN,
                    {"batch_size": 8, "use_tpu": use_tpu})
  return graph, spec


def forward_ops(graph, scope=""):
  return [op for op in graph.get_operations()
          if op.name.startswith(scope) and "gradients" not in op.name]


def output_dtypes(ops, *types):
  return {op.outputs[0].dtype for op in ops if op.type in types}


@pytest.mark.parametrize("precision", MIXED)
def test_encoder_computes_in_half_precision_around_float32_islands(
    tiny_bert, precision):
  (graph, spec) = train_graph(tiny_bert, precision)
  compute_dtype = model_fn_lib.PRECISIONS[precision][0]
  encoder = forward_ops(graph, "bert/encoder/")
  assert output_dtypes(encoder, "MatMul", "BatchMatMulV2") == {compute_dtype}
  # The adapters compute in it too.
  adapter_ops = [op for op in encoder if "/adapters/" in op.name]
  assert output_dtypes(adapter_ops, "MatMul") == {compute_dtype}
  # Softmax (attention and head) and every LayerNorm's moments: float32.
  assert output_dtypes(forward_ops(graph), "Softmax") == {tf.float32}
  moments = [op for op in encoder if "LayerNorm/moments" in op.name]
  assert moments and output_dtypes(moments, "Mean") == {tf.float32}
  # The embeddings are summed and normalised in float32.
  embeddings = forward_ops(graph, "bert/embeddings/")
  assert not output_dtypes(embeddings, "AddV2", "Mul") & set(HALF_DTYPES)
  assert spec.loss.dtype == tf.float32
  with graph.as_default():
    float_variables = [v for v in tf.global_variables()
                       if v.dtype.base_dtype.is_floating]
  assert {v.dtype.base_dtype for v in float_variables} == {tf.float32}


def test_float32_graph_holds_no_half_precision_tensor(tiny_bert):
  (graph, _) = train_graph(tiny_bert, "float32")
  dtypes = {t.dtype.base_dtype for op in graph.get_operations()
            for t in op.outputs}
  assert not dtypes & set(HALF_DTYPES)
  assert "current_loss_scale" not in {op.name for op in
                                      graph.get_operations()}


@pytest.mark.parametrize("precision,has_loss_scale", [
    ("mixed_float16", True), ("mixed_bfloat16", False)])
def test_only_float16_builds_a_dynamic_loss_scale(tiny_bert, precision,
                                                  has_loss_scale):
  (graph, _) = train_graph(tiny_bert, precision)
  with graph.as_default():
    names = {v.op.name: v for v in tf.global_variables()}
    assert ("current_loss_scale" in names) == has_loss_scale
    if has_loss_scale:
      with new_session() as session:
        session.run(tf.global_variables_initializer())
        assert session.run(names["current_loss_scale"]) == 2.0 ** 15


def loss_scaled_step(initial_scale, poison_loss=False):
  """One AdamW step of a float16 matmul under a dynamic loss scale.

  Returns:
    {weights, loss_scale, good_steps, global_step} after the step.
  """
  with tf.Graph().as_default():
    global_step = tf.train.get_or_create_global_step()
    weights = tf.get_variable("weights", [4, 4],
                              initializer=tf.ones_initializer())
    inputs = tf.ones([2, 4], tf.float16)
    outputs = tf.cast(tf.matmul(inputs, tf.cast(weights, tf.float16)),
                      tf.float32)
    loss = tf.reduce_mean(tf.square(outputs))
    if poison_loss:
      loss *= float("nan")
    train_op = optimization.create_optimizer(
        loss, 0.1, 10, 0, False, [weights],
        guards=optimization.StepGuards(max_loss=1e4,
                                       loss_scale=initial_scale))
    variables = {v.op.name: v for v in tf.global_variables()}
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      session.run(train_op)
      return session.run({"weights": weights, "global_step": global_step,
                          "loss_scale": variables["current_loss_scale"],
                          "good_steps": variables["good_steps"]})


def test_float16_overflow_skips_the_step_and_halves_the_scale():
  # loss * 2**60 is finite in float32, but its gradient overflows float16.
  # The divergence guard (max_loss is set) lets it through: under a loss
  # scale, non-finite gradients are the scale's business, not a divergence.
  after = loss_scaled_step(2.0 ** 60)
  np.testing.assert_array_equal(after["weights"], np.ones([4, 4]))
  assert after["loss_scale"] == 2.0 ** 59
  assert after["good_steps"] == 0
  # The step counts: its batch was consumed, so a resume stays exact.
  assert after["global_step"] == 1


def test_float16_finite_step_applies_and_counts_a_good_step():
  after = loss_scaled_step(2.0 ** 4)
  assert np.all(after["weights"] < 1.0)  # AdamW stepped down the gradient
  assert after["loss_scale"] == 2.0 ** 4
  assert after["good_steps"] == 1
  assert after["global_step"] == 1


def test_float16_non_finite_loss_still_stops_the_run():
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=optimization.DIVERGED_MARKER):
    loss_scaled_step(2.0 ** 4, poison_loss=True)


def test_tpu_train_spec_builds_in_bfloat16(tiny_bert):
  (graph, spec) = train_graph(tiny_bert, "mixed_bfloat16", use_tpu=True)
  assert isinstance(spec, tf.estimator.tpu.TPUEstimatorSpec)
  op_types = {op.type for op in graph.get_operations()}
  assert "CrossReplicaSum" in op_types
  encoder = forward_ops(graph, "bert/encoder/")
  assert output_dtypes(encoder, "MatMul", "BatchMatMulV2") == {tf.bfloat16}
  with graph.as_default():
    assert "current_loss_scale" not in {v.op.name for v in
                                        tf.global_variables()}


# ---------------------------------------------------------------- whole jobs


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert):
  """The same job trained under each precision (and float16 mirrored)."""
  root = tmp_path_factory.mktemp("precision")
  data_dir = write_sst2_task(str(root / "data"))
  runs = {"data_dir": data_dir}
  for (name, flags) in (
      ("float32", {}),
      ("mixed_bfloat16", {"precision": "mixed_bfloat16"}),
      ("mixed_float16", {"precision": "mixed_float16"}),
      ("mixed_float16_mirrored", {"precision": "mixed_float16",
                                  "strategy": "mirrored",
                                  "num_cpu_devices": 2})):
    runs[name] = train_tiny(tiny_bert, data_dir, str(root / name),
                            padding="static", num_train_epochs=2.0,
                            log_every_n_steps=1, **flags)
    runs[name]["eval"] = read_eval_results(runs[name]["output_dir"])
  return runs


def latest_values(output_dir):
  return checkpoint_values(tf.train.latest_checkpoint(output_dir))


@pytest.mark.slow
@pytest.mark.parametrize("precision", MIXED)
def test_mixed_precision_trains_float32_checkpoints_and_bundles(
    trained, tiny_bert, precision):
  output_dir = trained[precision]["output_dir"]
  for path in (tf.train.latest_checkpoint(output_dir),
               os.path.join(output_dir, "adapter_bundle", "variables")):
    dtypes = tf.train.load_checkpoint(path).get_variable_to_dtype_map()
    assert {d for (n, d) in dtypes.items() if d.is_floating} == {tf.float32}
  # It trained: the head moved from its zero start, as under float32.
  values = latest_values(output_dir)
  reference = latest_values(trained["float32"]["output_dir"])
  assert values["global_step"] == reference["global_step"] == 16
  assert np.abs(values["output_bias"]).max() > 1e-3
  # Same start, data and dropout: only the arithmetic differs.
  np.testing.assert_allclose(values["output_bias"], reference["output_bias"],
                             atol=3e-3)
  assert trained[precision]["eval"]["eval_loss"] == pytest.approx(
      trained["float32"]["eval"]["eval_loss"], abs=5e-3)
  assert ("--precision=%s" % precision) in trained[precision]["log"]


@pytest.mark.slow
def test_float16_mirrored_follows_float16_on_one_device(trained):
  one = latest_values(trained["mixed_float16"]["output_dir"])
  mirrored = latest_values(trained["mixed_float16_mirrored"]["output_dir"])
  assert sorted(one) == sorted(mirrored)
  # The loss scale's state is checkpointed, alike on both.
  assert one["current_loss_scale"] == mirrored["current_loss_scale"]
  assert one["good_steps"] == mirrored["good_steps"] == 16
  # float16 sums half batches in another order than the whole batch: equal
  # to about 1% of how far training moved the weights (lr 1e-2, 16 steps).
  for name in one:
    np.testing.assert_allclose(mirrored[name], one[name], rtol=1e-2,
                               atol=1e-3, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("trained_in,served_in", [
    ("mixed_bfloat16", "float32"), ("float32", "mixed_bfloat16")])
def test_a_bundle_serves_under_another_precision(trained, tiny_bert, tmp_path,
                                                 trained_in, served_in):
  bundle = os.path.join(trained[trained_in]["output_dir"], "adapter_bundle")
  result = run_classifier_cli(
      tiny_bert, trained["data_dir"], str(tmp_path / "served"),
      do_train=False, adapter_bundle=bundle, precision=served_in)
  assert result.returncode == 0, result.stderr[-3000:]
  served = read_eval_results(str(tmp_path / "served"))
  own = trained[trained_in]["eval"]
  assert served["eval_accuracy"] == pytest.approx(own["eval_accuracy"],
                                                  abs=1 / 13 + 1e-6)
  assert served["eval_loss"] == pytest.approx(own["eval_loss"], abs=5e-3)


@pytest.mark.slow
def test_resuming_under_another_precision_is_refused(trained, tiny_bert):
  result = run_classifier_cli(
      tiny_bert, trained["data_dir"], trained["float32"]["output_dir"],
      padding="static", num_train_epochs=2.0, precision="mixed_bfloat16")
  assert result.returncode != 0
  assert "precision float32 (now mixed_bfloat16)" in result.stderr


@pytest.mark.slow
def test_float16_on_tpu_is_refused(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  result = run_classifier_cli(tiny_bert, data_dir, str(tmp_path / "out"),
                              use_tpu=True, precision="mixed_float16")
  assert result.returncode != 0
  assert "--precision=mixed_float16 is for GPUs" in result.stderr
  assert not os.path.exists(str(tmp_path / "out"))


# ---------------------------------------------------------------- auto


def write_cpuinfo(tmp_path, flags):
  path = tmp_path / "cpuinfo"
  path.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 %s\n"
                  "processor\t: 1\nflags\t\t: fpu sse2 avx2 %s\n" %
                  (flags, flags))
  return str(path)


@pytest.mark.parametrize("flags,use_tpu,native", [
    ("avx512f avx512_bf16", False, True),
    ("amx_tile amx_bf16", False, True),
    ("avx512f avx512_vnni", False, False),
    ("avx512f", True, True),
])
def test_native_bfloat16_is_read_off_the_hardware(tmp_path, flags, use_tpu,
                                                  native):
  from adapter_bert.classifier import devices
  (found, why) = devices.native_bfloat16(use_tpu,
                                         write_cpuinfo(tmp_path, flags))
  assert found == native
  assert (why == "a Cloud TPU") == use_tpu
  assert devices.native_bfloat16(False, str(tmp_path / "absent"))[0] is False


@pytest.mark.parametrize("flags,expected", [
    ("avx512_bf16", "mixed_bfloat16"), ("avx2", "float32")])
def test_auto_is_bfloat16_where_native_and_a_resumed_run_keeps_its_own(
    tmp_path, flags, expected):
  from adapter_bert import run_folder
  from adapter_bert.classifier import settings as settings_lib
  cpuinfo = write_cpuinfo(tmp_path, flags)
  settings = settings_lib.Settings(precision="auto", do_train=True,
                                   output_dir=str(tmp_path / "run"))
  assert settings_lib.with_resolved_precision(
      settings, cpuinfo).precision == expected
  explicit = settings_lib.Settings(precision="float32")
  assert settings_lib.with_resolved_precision(explicit, cpuinfo) == explicit
  # A run that started in the other precision resumes in it.
  other = "float32" if expected == "mixed_bfloat16" else "mixed_bfloat16"
  os.makedirs(settings.output_dir)
  with open(run_folder.manifest_path(settings.output_dir), "w") as f:
    f.write('{"format": "%s", "version": %d, "settings": {"precision": '
            '"%s"}}' % (run_folder.MANIFEST_FORMAT,
                        run_folder.MANIFEST_VERSION, other))
  assert settings_lib.with_resolved_precision(
      settings, cpuinfo).precision == other


@pytest.mark.slow
def test_run_json_records_what_auto_chose(tmp_path, tiny_bert):
  from adapter_bert import run_folder
  from adapter_bert.classifier import devices
  data_dir = write_sst2_task(str(tmp_path / "data"))
  run = train_tiny(tiny_bert, data_dir, str(tmp_path / "out"),
                   precision="auto")
  chosen = run_folder.read_manifest(run["output_dir"])["settings"]["precision"]
  assert chosen == ("mixed_bfloat16" if devices.native_bfloat16(False)[0]
                    else "float32")
