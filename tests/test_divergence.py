"""The divergence guard: a NaN, Inf or exploding loss stops training before
it changes anything, and a checkpoint or bundle holding NaN/Inf is never
resumed, evaluated, exported or served."""

import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import run_classifier_in_process
from conftest import write_sst2_task
from adapter_bert import bundles


def assert_every_checkpoint_finite(output_dir):
  state = tf.train.get_checkpoint_state(output_dir)
  for prefix in (state.all_model_checkpoint_paths if state else []):
    for (name, value) in checkpoint_values(prefix).items():
      assert np.all(np.isfinite(value)), (prefix, name)


def assert_nothing_evaluated_or_exported(output_dir):
  assert not os.path.exists(os.path.join(output_dir, "eval_results.txt"))
  assert not os.path.exists(os.path.join(output_dir, "adapter_bundle"))


@pytest.mark.slow
def test_a_loss_above_max_loss_stops_at_that_step(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  # The first loss is about ln 2 = 0.69, far above 1e-3.
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        max_loss=1e-3),
      "training diverged at step 0: loss 0.6", "--max_loss=0.001",
      "the last good checkpoint is " + os.path.join(output_dir,
                                                    "model.ckpt-0"),
      "--learning_rate")
  assert_nothing_evaluated_or_exported(output_dir)
  # The step that failed changed nothing: the saved state is the start.
  assert_every_checkpoint_finite(output_dir)
  assert int(checkpoint_values(tf.train.latest_checkpoint(output_dir))[
      "global_step"]) == 0


@pytest.mark.slow
def test_a_huge_learning_rate_is_stopped_before_any_nan_is_saved(tmp_path,
                                                               tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        learning_rate=1e3,
                                        num_train_epochs=20.0,
                                        save_checkpoints_steps=1),
      "training diverged at step", "--learning_rate (now 1000)")
  assert_nothing_evaluated_or_exported(output_dir)
  assert_every_checkpoint_finite(output_dir)


@pytest.mark.parametrize("flag,value", [
    ("learning_rate", float("nan")), ("learning_rate", float("inf")),
    ("max_loss", float("nan")), ("max_loss", -1.0),
    ("num_train_epochs", float("nan")), ("num_train_epochs", float("inf")),
])
def test_non_finite_numbers_are_refused(tmp_path, tiny_bert, flag, value):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir,
                                        str(tmp_path / "out"),
                                        **{flag: value}),
      "--%s must be a positive finite number" % flag)
  assert not os.path.exists(str(tmp_path / "out"))


def _poison_latest_checkpoint(output_dir):
  """Writes NaN into one adapter weight of the latest checkpoint."""
  prefix = tf.train.latest_checkpoint(output_dir)
  values = checkpoint_values(prefix)
  name = sorted(n for n in values if n.endswith("adapters/weights1"))[0]
  values[name] = np.full_like(values[name], np.nan)
  bundles.write_checkpoint(values, prefix)
  return name


@pytest.mark.slow
def test_a_checkpoint_with_nan_is_never_resumed_evaluated_or_exported(
    tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_eval=False)
  name = _poison_latest_checkpoint(output_dir)
  for settings in ({"do_train": False},                      # evaluate
                   {"num_train_epochs": 2.0},                # resume
                   {"do_train": False, "do_eval": False,     # export
                    "export_from_checkpoint": output_dir,
                    "export_adapter_bundle": str(tmp_path / "bundle")}):
    assert_input_error(
        lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                          **settings),
        "holds NaN or Inf", name, "diverged run")
  assert not os.path.exists(os.path.join(output_dir, "eval_results.txt"))
  assert not os.path.exists(str(tmp_path / "bundle"))


@pytest.mark.slow
def test_a_bundle_with_nan_is_never_served(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_eval=False)
  bundle_dir = os.path.join(output_dir, "adapter_bundle")
  prefix = os.path.join(bundle_dir, bundles.VARIABLES_PREFIX)
  values = checkpoint_values(prefix)
  values["output_bias"] = np.array([np.inf, 0.0], dtype=np.float32)
  bundles.write_checkpoint(values, prefix)
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir,
                                        str(tmp_path / "serve"),
                                        do_train=False,
                                        adapter_bundle=bundle_dir),
      "holds NaN or Inf", "output_bias", "serve garbage")
