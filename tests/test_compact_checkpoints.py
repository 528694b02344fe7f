"""Compact training checkpoints: every tuning method but `full` saves only the
trained variables, their Adam slots and the step; the frozen backbone comes
from --init_checkpoint at every start, checked by its fingerprint."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import REPO_ROOT
from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import tiny_bert_config_dict
from conftest import tiny_job_flags
from conftest import write_sst2_task
from conftest import write_tiny_bert
from adapter_bert import bundles
from adapter_bert import methods
from adapter_bert import run_folder
from adapter_bert.classifier import checkpoints
from adapter_bert.classifier import model_fn
import modeling


def _method(mode, **options):
  """The method as the tiny jobs build it: adapter size 8 where it takes one."""
  if methods.get(mode).option("adapter_size") is not None:
    options.setdefault("adapter_size", 8)
  return methods.build(mode, options, num_layers=2)


def _model_names(method):
  config = modeling.BertConfig.from_dict(tiny_bert_config_dict())
  return list(model_fn.describe_model(config, method, 2, 16))


def _checkpoint_bytes(prefix):
  folder = os.path.dirname(prefix)
  stem = os.path.basename(prefix)
  return sum(os.path.getsize(os.path.join(folder, f)) for f in
             os.listdir(folder) if f.startswith(stem + ".data-") or
             f == stem + ".index")


@pytest.mark.slow
@pytest.mark.parametrize("mode,options", [
    ("adapters", {}), ("head", {}), ("layernorm", {}), ("bitfit", {}),
    ("top_layers", {"tune_top_layers": 1}),
    ("adapters", {"train_layernorm": False}),
])
def test_checkpoint_holds_exactly_the_trained_state(tmp_path, tiny_bert,
                                                    mode, options):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, tuning_mode=mode,
                            do_eval=False, **options)
  method = _method(mode, **options)
  trained = [n for n in _model_names(method) if method.trains(n)]
  expected = set(trained) | {"global_step"}
  expected |= {n + slot for n in trained for slot in ("/adam_m", "/adam_v")}
  saved = checkpoint_values(tf.train.latest_checkpoint(output_dir))
  assert set(saved) == expected
  # Nothing frozen is in it: the backbone is read from --init_checkpoint.
  initial = checkpoint_values(tiny_bert["init_checkpoint"])
  assert all(name not in saved for name in initial if not method.trains(name))


@pytest.mark.slow
def test_compact_checkpoint_is_a_small_fraction_of_a_full_one(tmp_path,
                                                              tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  sizes = {}
  counts = {}
  for mode in ("adapters", "full"):
    output_dir = str(tmp_path / mode)
    run_classifier_in_process(tiny_bert, data_dir, output_dir,
                              tuning_mode=mode, do_eval=False)
    prefix = tf.train.latest_checkpoint(output_dir)
    sizes[mode] = _checkpoint_bytes(prefix)
    counts[mode] = sum(v.size for (n, v) in checkpoint_values(prefix).items()
                       if not n.endswith(("/adam_m", "/adam_v")) and
                       n != "global_step")
  method = _method("adapters")
  trained = sum(
      int(np.prod(shape)) for (name, shape) in model_fn.describe_model(
          modeling.BertConfig.from_dict(tiny_bert_config_dict()),
          method, 2, 16).items() if method.trains(name))
  assert counts["adapters"] == trained
  # Each trained float is stored three times (value, Adam m and v).
  assert sizes["adapters"] >= 3 * 4 * trained
  assert sizes["full"] >= 3 * 4 * counts["full"]
  # Even on the tiny model, where adapters are a large share, well below.
  assert sizes["adapters"] < 0.35 * sizes["full"], sizes


@pytest.mark.slow
def test_rerun_of_a_finished_run_restores_the_same_model(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  first = run_classifier_in_process(tiny_bert, data_dir, output_dir)
  assert os.path.exists(os.path.join(output_dir, checkpoints.BACKBONE_RECORD))
  again = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                    do_train=False)
  assert again == first


@pytest.mark.slow
def test_resume_on_another_backbone_is_refused(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_eval=False)
  other = write_tiny_bert(str(tmp_path / "other_bert"), seed=7)
  for do_train in (True, False):
    # The run manifest names the difference first...
    assert_input_error(
        lambda: run_classifier_in_process(
            tiny_bert, data_dir, output_dir, do_train=do_train,
            init_checkpoint=other["init_checkpoint"]),
        "--output_dir=%s holds a run made with other settings" % output_dir,
        "--init_checkpoint's weights")
  # ...and without one (a folder from before manifests) the backbone record
  # still refuses it.
  os.remove(os.path.join(output_dir, run_folder.MANIFEST))
  for do_train in (True, False):
    assert_input_error(
        lambda: run_classifier_in_process(
            tiny_bert, data_dir, output_dir, do_train=do_train,
            init_checkpoint=other["init_checkpoint"]),
        "--init_checkpoint=%s is not the backbone" % other["init_checkpoint"],
        "--output_dir=%s" % output_dir)


@pytest.mark.slow
def test_compact_checkpoints_need_the_backbone(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_eval=False)
  # A folder from before run manifests: the compact checks alone.
  os.remove(os.path.join(output_dir, run_folder.MANIFEST))
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        do_train=False, init_checkpoint=""),
      "holds compact checkpoints", "give --init_checkpoint")
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        do_train=False, tuning_mode="full"),
      "holds compact checkpoints", "--tuning_mode=full saves whole models")


@pytest.mark.slow
def test_export_from_a_compact_checkpoint(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  trained = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                      do_eval=True)
  bundle_dir = str(tmp_path / "bundle")
  run_classifier_in_process(
      tiny_bert, data_dir, str(tmp_path / "export"), do_train=False,
      do_eval=False, export_from_checkpoint=output_dir,
      export_adapter_bundle=bundle_dir)
  bundle = bundles.read_bundle(bundle_dir)
  bundles.check_backbone(bundle, tiny_bert["init_checkpoint"])
  served = run_classifier_in_process(
      tiny_bert, data_dir, str(tmp_path / "serve"), do_train=False,
      adapter_bundle=bundle_dir)
  assert served == trained
  # On another backbone the export is refused: its fingerprint is not the
  # one the checkpoints were trained on.
  other = write_tiny_bert(str(tmp_path / "other_bert"), seed=7)

  def export_on_other_backbone():
    run_classifier_in_process(
        tiny_bert, data_dir, str(tmp_path / "export2"), do_train=False,
        do_eval=False, export_from_checkpoint=output_dir,
        export_adapter_bundle=str(tmp_path / "bundle2"),
        init_checkpoint=other["init_checkpoint"])

  assert_input_error(
      export_on_other_backbone,
      "--export_from_checkpoint=%s holds a run made with other settings" %
      output_dir, "--init_checkpoint's weights")
  # Without the run manifest, the backbone record refuses it.
  os.remove(os.path.join(output_dir, run_folder.MANIFEST))
  assert_input_error(export_on_other_backbone, "is not the backbone")
  assert not os.path.exists(str(tmp_path / "bundle2"))


def _cli_command(tiny_bert, data_dir, output_dir, **flags):
  args = tiny_job_flags(tiny_bert, data_dir, output_dir, **flags)
  return [sys.executable, os.path.join(REPO_ROOT, "run_classifier.py")] + [
      "--%s=%s" % item for item in args.items() if item[1] is not None]


@pytest.mark.slow
def test_kill_then_resume_ends_exactly_as_an_uninterrupted_run(tmp_path,
                                                              tiny_bert):
  """SIGKILL after a checkpoint; the rerun resumes from it, on the checked
  backbone, and ends at the step, the weights and the metrics of a run that
  was never interrupted: the data order skips the consumed batches and every
  dropout mask is a function of (seed, site, step)."""
  data_dir = write_sst2_task(str(tmp_path / "data"), num_train=256)
  output_dir = str(tmp_path / "out")
  # 256 / 8 * 6 = 192 steps, a checkpoint every 16.
  flags = {"num_train_epochs": 6.0, "save_checkpoints_steps": 16,
           "log_every_n_steps": 1000}
  command = _cli_command(tiny_bert, data_dir, output_dir, **flags)
  log_path = str(tmp_path / "first.log")
  with open(log_path, "w") as log:
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               cwd=REPO_ROOT)
  deadline = time.time() + 300
  killed_at = None
  try:
    while time.time() < deadline and process.poll() is None:
      latest = tf.train.latest_checkpoint(output_dir)
      step = int(latest.rsplit("-", 1)[1]) if latest else 0
      # Its training time is recorded at each checkpoint, not only at the
      # end: a run killed outright keeps the time of the steps it saved.
      if step >= 16 and run_folder.training_seconds(output_dir):
        process.send_signal(signal.SIGKILL)
        killed_at = step
        break
      time.sleep(0.05)
  finally:
    if process.poll() is None:
      process.kill()
    process.wait()
  assert killed_at is not None, open(log_path).read()[-3000:]
  assert killed_at < 192, "training ended before the kill"
  assert not os.path.exists(os.path.join(output_dir, "eval_results.txt"))
  killed_part = run_folder.training_seconds(output_dir)

  # --verbose: TensorFlow's own "Restoring parameters" line is shown.
  result = subprocess.run(command + ["--verbose"], capture_output=True,
                          text=True, cwd=REPO_ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Compact checkpoints in %s: backbone" % output_dir in result.stderr
  assert "Resuming at step %d of 192" % killed_at in result.stderr
  assert "Restoring parameters from" in result.stderr
  assert read_eval_results(output_dir)["global_step"] == 192
  final = checkpoint_values(tf.train.latest_checkpoint(output_dir))
  assert int(final["global_step"]) == 192
  assert all(np.all(np.isfinite(v)) for v in final.values())
  with open(run_folder.training_time_path(output_dir)) as f:
    times = json.load(f)
  assert times["invocations"] == 2
  assert times["train_seconds"] > killed_part > 0
  record = json.load(open(os.path.join(output_dir,
                                       checkpoints.BACKBONE_RECORD)))
  assert record["init_checkpoint"] == tiny_bert["init_checkpoint"]
  bundle = bundles.read_bundle(os.path.join(output_dir, "adapter_bundle"))
  assert bundle.global_step == 192
  assert bundle.metadata["backbone_fingerprint"] == record["fingerprint"]

  uninterrupted_dir = str(tmp_path / "uninterrupted")
  result = subprocess.run(
      _cli_command(tiny_bert, data_dir, uninterrupted_dir, **flags),
      capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  expected = checkpoint_values(tf.train.latest_checkpoint(uninterrupted_dir))
  assert sorted(final) == sorted(expected)
  for name in final:
    np.testing.assert_array_equal(final[name], expected[name], err_msg=name)
  assert (read_eval_results(output_dir) ==
          read_eval_results(uninterrupted_dir))


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_save_then_exit_with_one_line(tmp_path, tiny_bert,
                                                         signal_number):
  """What a preemptible machine sends before it goes: the run saves the step
  it reached, says so in one line, exits non-zero, and resumes from there."""
  data_dir = write_sst2_task(str(tmp_path / "data"), num_train=256)
  output_dir = str(tmp_path / "out")
  # 960 steps (long enough that the signal lands mid-way on a fast
  # machine); the periodic checkpoints are 100 steps apart.
  flags = {"num_train_epochs": 30.0, "save_checkpoints_steps": 100,
           "log_every_n_steps": 1000}
  command = _cli_command(tiny_bert, data_dir, output_dir, **flags)
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
  deadline = time.time() + 300
  # Wait for training to be under way: the step-0 checkpoint is written.
  while time.time() < deadline and process.poll() is None:
    if tf.train.latest_checkpoint(output_dir):
      time.sleep(1.0)
      break
    time.sleep(0.05)
  process.send_signal(signal_number)
  try:
    (_, stderr) = process.communicate(timeout=300)
  finally:
    if process.poll() is None:
      process.kill()
  name = signal.Signals(signal_number).name
  assert process.returncode != 0, stderr[-3000:]
  errors_lines = [l for l in stderr.splitlines()
                  if l.startswith("run_classifier.py: error:")]
  assert len(errors_lines) == 1, stderr[-3000:]
  assert "Traceback" not in stderr
  match = re.search(r"stopped by %s at step (\d+) of 960; saved (\S+); run "
                    r"the same command again to resume" % name,
                    errors_lines[0])
  assert match, errors_lines[0]
  step = int(match.group(1))
  assert 0 < step < 960
  # The step it reached was saved, not only the last periodic checkpoint.
  assert match.group(2) == os.path.join(output_dir, "model.ckpt-%d" % step)
  assert int(checkpoint_values(match.group(2))["global_step"]) == step
  assert not os.path.exists(os.path.join(output_dir, "eval_results.txt"))
  stopped_part = run_folder.training_seconds(output_dir)
  assert stopped_part > 0  # the stopped invocation's training counts

  result = subprocess.run(command, capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Resuming at step %d of 960" % step in result.stderr
  assert read_eval_results(output_dir)["global_step"] == 960
  # The run's training time is both invocations' (not the last one's).
  with open(run_folder.training_time_path(output_dir)) as f:
    record = json.load(f)
  assert record["invocations"] == 2
  assert record["train_seconds"] > stopped_part


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_before_training_is_one_line_and_leaves_no_partial_file(
    tmp_path, tiny_bert, signal_number):
  # Enough rows that feature conversion is under way when the signal lands.
  data_dir = write_sst2_task(str(tmp_path / "data"), num_train=30000)
  output_dir = str(tmp_path / "out")
  command = _cli_command(tiny_bert, data_dir, output_dir)
  process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
  seen = []
  try:
    for line in process.stderr:
      seen.append(line)
      if "30,000 rows" in line:  # conversion begins
        break
    process.send_signal(signal_number)
    (rest, _) = (process.stderr.read(), process.wait(timeout=300))
  finally:
    if process.poll() is None:
      process.kill()
  stderr = "".join(seen) + rest
  name = signal.Signals(signal_number).name
  assert process.returncode != 0, stderr[-3000:]
  error_lines = [l for l in stderr.splitlines()
                 if l.startswith("run_classifier.py: error:")]
  assert error_lines == ["run_classifier.py: error: stopped by %s; every file "
                         "already written is complete and nothing "
                         "half-written is left; run the same command again "
                         "to continue" % name], stderr[-3000:]
  assert "Traceback" not in stderr
  left = os.listdir(output_dir)
  assert not [n for n in left if ".tmp-" in n or n.endswith(".tf_record")], left
  assert not tf.train.latest_checkpoint(output_dir)
