"""Scale-out on TensorFlow's own engines: tf.distribute strategies through the
Estimator's RunConfig. Mirrored training over logical CPU devices must train
the model one device trains, at the same global batch."""

import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import train_tiny
from conftest import write_sst2_task


def logged_losses(stderr):
  """{step: loss} from the training log's `step N: loss = X` lines."""
  return {int(m.group(1)): float(m.group(2)) for m in re.finditer(
      r"step (\d+)/\d+ \(\d+%\): loss = ([0-9.]+)", stderr)}


@pytest.fixture(scope="module", params=[False, True],
                ids=["bert_adam", "bias_corrected_adam"])
def one_and_mirrored(request, tmp_path_factory, tiny_bert):
  """The same job on one device and mirrored over 2 logical CPU devices,
  with BERT's optimizer and with Adam's bias correction (whose step count
  each device's update reads)."""
  root = tmp_path_factory.mktemp("distribute")
  data_dir = write_sst2_task(str(root / "data"))
  runs = {}
  for (name, flags) in (("one_device", {}),
                        ("mirrored", {"strategy": "mirrored",
                                      "num_cpu_devices": 2})):
    # "static" padding: each replica's half batch is padded like the whole.
    runs[name] = train_tiny(tiny_bert, data_dir, str(root / name),
                            padding="static", log_every_n_steps=1,
                            num_train_epochs=2.0,
                            adam_bias_correction=request.param, **flags)
  return runs


@pytest.mark.slow
def test_mirrored_gives_the_loss_curve_of_one_device(one_and_mirrored):
  one = logged_losses(one_and_mirrored["one_device"]["log"])
  mirrored = logged_losses(one_and_mirrored["mirrored"]["log"])
  assert len(one) >= 10 and sorted(one) == sorted(mirrored)
  for step in sorted(one):
    assert mirrored[step] == pytest.approx(one[step], abs=2e-4), step
  assert "2 replicas of 4 examples each" in (
      one_and_mirrored["mirrored"]["log"])


@pytest.mark.slow
def test_mirrored_trains_the_variables_of_one_device(one_and_mirrored):
  one = checkpoint_values(tf.train.latest_checkpoint(
      one_and_mirrored["one_device"]["output_dir"]))
  mirrored = checkpoint_values(tf.train.latest_checkpoint(
      one_and_mirrored["mirrored"]["output_dir"]))
  assert sorted(one) == sorted(mirrored)
  assert one["global_step"] == mirrored["global_step"] == 16
  for name in one:
    np.testing.assert_allclose(mirrored[name], one[name], rtol=1e-4,
                               atol=1e-6, err_msg=name)
  # The model moved: equal because both trained alike, not because neither did.
  bundle = os.path.join(one_and_mirrored["one_device"]["output_dir"],
                        "adapter_bundle", "variables")
  assert np.abs(checkpoint_values(bundle)["output_bias"]).max() > 1e-3


@pytest.mark.parametrize("flags,fragments", [
    ({"strategy": "mirrored", "num_cpu_devices": 3},
     ["--train_batch_size=8 is the global batch", "3 replicas"]),
    ({"num_cpu_devices": 2}, ["--num_cpu_devices=2 is for --strategy=mirrored"]),
    ({"strategy": "mirrored", "use_tpu": True},
     ["--strategy=mirrored is for CPUs and GPUs"]),
    ({"strategy": "mirrored"}, ["this machine has no GPU",
                                "--num_cpu_devices=N"]),
    ({"strategy": "multi_worker"}, ["needs TF_CONFIG"]),
])
def test_strategy_flags_that_cannot_work_are_refused(tmp_path, tiny_bert,
                                                     flags, fragments):
  from adapter_bert import classifier
  from conftest import tiny_job_flags
  data_dir = write_sst2_task(str(tmp_path / "data"))
  settings = classifier.Settings(**tiny_job_flags(
      tiny_bert, data_dir, str(tmp_path / "out"), **flags))
  os.environ.pop("TF_CONFIG", None)
  assert_input_error(lambda: classifier.run(settings), *fragments)


def free_ports(count):
  """Ports free on 127.0.0.1 now (held open together so they differ)."""
  import socket
  sockets = [socket.socket() for _ in range(count)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


@pytest.mark.slow
def test_two_workers_train_together_and_leave_one_checkpoint_and_bundle(
    tmp_path, tiny_bert):
  import json
  import subprocess
  import sys
  from conftest import REPO_ROOT
  from conftest import tiny_job_flags
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")  # shared, as a gs:// folder would be
  flags = tiny_job_flags(tiny_bert, data_dir, output_dir,
                         strategy="multi_worker", padding="static")
  command = [sys.executable, os.path.join(REPO_ROOT, "run_classifier.py")] + [
      "--%s=%s" % item for item in flags.items() if item[1] is not None]
  cluster = {"worker": ["127.0.0.1:%d" % p for p in free_ports(2)]}
  workers = []
  for index in range(2):
    env = dict(os.environ, TF_CONFIG=json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}}))
    workers.append(subprocess.Popen(command, env=env, cwd=REPO_ROOT,
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True))
  logs = []
  try:
    for worker in workers:
      logs.append(worker.communicate(timeout=420)[1])
  finally:
    for worker in workers:
      if worker.poll() is None:
        worker.kill()
  for (worker, log) in zip(workers, logs):
    assert worker.returncode == 0, log[-3000:]
  assert "worker 1 of 2 (not the chief): trained" in logs[1]
  # One run's outputs, written by the chief (worker 0) alone.
  state = tf.train.get_checkpoint_state(output_dir)
  assert int(checkpoint_values(state.model_checkpoint_path)["global_step"]) == 8
  assert os.path.exists(os.path.join(output_dir, "adapter_bundle",
                                     "adapter_bundle.json"))
  assert os.path.exists(os.path.join(output_dir, "eval_results.txt"))
  assert not [n for n in os.listdir(output_dir) if n.startswith("tmp_worker")]
