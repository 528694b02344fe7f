"""Adding a tuning method is one file, its registry line and its matrix row.

The test copies the project, adds a toy method there (a learned scalar gate
on each sub-layer's output) exactly as docs/contributing.md says, checks that
nothing else changed, then runs the method through everything in the copy:
the test matrix (what trains, the closed-form count, the bundle round trip,
MultiTaskPredictor, the SavedModel), scripts/predict_multitask.py and
scripts/sweep.py.
"""

import csv
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from conftest import write_sst2_task

pytestmark = pytest.mark.slow

GATE_FILE = '''# coding=utf-8
"""A toy method: a learned scalar gate on each sub-layer's output."""

import tensorflow.compat.v1 as tf

from adapter_bert.methods import base


class GateMethod(base.TuningMethod):
  """One scalar per sub-layer scales its output; gates and head train."""

  name = "gate"
  description = "a learned scalar gate on each sub-layer output + head train"
  scope = "gate"
  group = "gates"
  marker = "P"

  def sublayer_output(self, layer, name, inputs, outputs):
    with tf.variable_scope(self.scope):
      gate = tf.get_variable("scale", [], initializer=tf.ones_initializer())
    return self.switched(layer, outputs * tf.cast(gate, outputs.dtype),
                         outputs)

  def trains(self, name):
    return self.adds(name) or base.is_head(name) or self.trains_pooler(name)

  def trained_parameters(self, config, num_labels):
    return (2 * config.num_hidden_layers +
            base.head_parameters(config, num_labels) +
            (base.pooler_parameters(config) if self["train_pooler"] else 0))


METHOD = GateMethod
'''

REGISTRY = os.path.join("adapter_bert", "methods", "__init__.py")
MATRIX_FILE = os.path.join("tests", "test_methods.py")
NEW_FILE = os.path.join("adapter_bert", "methods", "gate.py")


def copy_project(target):
  """The project's files (no venv, caches or git) under `target`."""
  ignore = shutil.ignore_patterns(".venv", ".cache", ".git", "__pycache__",
                                  ".pytest_cache", ".hypothesis", "results")
  shutil.copytree(REPO_ROOT, target, ignore=ignore)
  return target


def add_line_after(path, anchor, line):
  with open(path, encoding="utf-8") as f:
    text = f.read()
  assert text.count(anchor) == 1, (path, anchor)
  with open(path, "w", encoding="utf-8") as f:
    f.write(text.replace(anchor, anchor + line))


def tree_contents(root):
  contents = {}
  for (folder, dirs, files) in os.walk(root):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in files:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        contents[os.path.relpath(path, root)] = f.read()
  return contents


def run(copy, *args):
  result = subprocess.run([sys.executable] + list(args), cwd=copy,
                          capture_output=True, text=True, timeout=1500)
  assert result.returncode == 0, (result.stdout[-3000:] +
                                  result.stderr[-3000:])
  return result


def test_a_new_method_is_one_file_its_registry_line_and_its_row(
    tmp_path, tiny_bert):
  copy = copy_project(str(tmp_path / "project"))
  before = tree_contents(copy)
  with open(os.path.join(copy, NEW_FILE), "w", encoding="utf-8") as f:
    f.write(GATE_FILE)
  add_line_after(os.path.join(copy, REGISTRY),
                 '    "adapter_bert.methods.bitfit",\n',
                 '    "adapter_bert.methods.gate",\n')
  add_line_after(os.path.join(copy, MATRIX_FILE),
                 '    Row("bitfit", "bitfit", {}),\n',
                 '    Row("gate", "gate", {}),\n')
  after = tree_contents(copy)
  changed = sorted(p for p in set(before) | set(after)
                   if before.get(p) != after.get(p))
  assert changed == sorted([NEW_FILE, REGISTRY, MATRIX_FILE])

  # The matrix, the literal check and the structure checks, in the copy.
  run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--run-slow",
      MATRIX_FILE, "-k", "gate or literal or registered")

  # A bundle of it, served by the multi-task command line.
  data_dir = write_sst2_task(str(tmp_path / "glue" / "SST-2"))
  out = str(tmp_path / "out")
  run(copy, "run_classifier.py", "--tuning_mode=gate", "--task_name=SST-2",
      "--do_train=true", "--do_eval=true", "--data_dir=" + data_dir,
      "--vocab_file=" + tiny_bert["vocab_file"],
      "--bert_config_file=" + tiny_bert["bert_config_file"],
      "--init_checkpoint=" + tiny_bert["init_checkpoint"],
      "--max_seq_length=16", "--train_batch_size=8", "--learning_rate=1e-2",
      "--num_train_epochs=1", "--output_dir=" + out)
  served = run(copy, os.path.join("scripts", "predict_multitask.py"),
               "--bert_config_file=" + tiny_bert["bert_config_file"],
               "--vocab_file=" + tiny_bert["vocab_file"],
               "--init_checkpoint=" + tiny_bert["init_checkpoint"],
               "--adapter_bundles=" + os.path.join(out, "adapter_bundle"),
               "--data_dirs=" + data_dir, "--split=dev")
  assert "SST-2" in served.stdout + served.stderr

  # A sweep over it: one finished row, its method named.
  results = str(tmp_path / "sweep.csv")
  run(copy, os.path.join("scripts", "sweep.py"), "--tasks=SST-2",
      "--methods=gate", "--learning_rates=1e-2", "--epochs=1", "--seeds=1",
      "--bert_dir=" + os.path.dirname(tiny_bert["bert_config_file"]),
      "--glue_dir=" + str(tmp_path / "glue"), "--max_seq_length=16",
      "--train_batch_size=8", "--work_dir=" + str(tmp_path / "work"),
      "--results=" + results)
  with open(results) as f:
    rows = list(csv.DictReader(f))
  assert [r["method"] for r in rows] == ["gate"]
  assert int(rows[0]["trained_parameters"]) == 2 * 2 + 32 * 2 + 2
