"""scripts/sweep.py (adapter_bert.sweeps): the grid, resumable runs, and
the statistics of its summary."""

import csv
import glob
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO_ROOT
from conftest import assert_input_error
from conftest import write_sst2_task
from conftest import write_stsb_task
from adapter_bert import command_flags
from adapter_bert import errors
from adapter_bert import run_folder
from adapter_bert import sweep_records
from adapter_bert import sweep_ablation
from adapter_bert import sweep_summary
from adapter_bert import sweeps


def summary_of(rows, *args):
  """The Markdown summary of `rows` (summary_markdown's other arguments)."""
  return sweep_summary.summary_markdown(rows, sweep_summary.summarize(rows),
                                        *args)


def grid(**changes):
  values = {"tasks": ["SST-2"], "methods": ["adapters", "head"],
            "adapter_sizes": ["4"], "learning_rates": ["1e-2"],
            "epochs": ["0.5"], "init_scales": ["1e-3"], "seeds": ["1", "2"]}
  values.update(changes)
  return values


def test_grid_gives_sizes_and_init_scales_to_adapter_methods_only():
  runs = sweeps.expand_grid(grid(methods=["adapters", "full", "top_layers:1",
                                          "adapters:noln"],
                                 adapter_sizes=["8", "64"],
                                 learning_rates=["1e-4", "1e-3"]))
  # (2 adapter methods x 2 sizes + 2 others) x 2 rates x 2 seeds.
  assert len(runs) == (2 * 2 + 2) * 2 * 2
  ids = [sweeps.run_id(r) for r in runs]
  assert len(set(ids)) == len(ids)
  for run in runs:
    assert bool(run.adapter_size) == run.method.startswith("adapters")
  assert "SST-2-top_layers-1-lr1e-4-ep0.5-seed1" in ids


def test_method_specs_become_run_classifier_flags():
  assert sweeps.method_flags("top_layers:2") == {"tuning_mode": "top_layers",
                                                 "tune_top_layers": 2}
  assert sweeps.method_flags("adapters:noln") == {"tuning_mode": "adapters",
                                                  "train_layernorm": "false"}
  assert sweeps.method_flags("head:train_pooler=true") == {
      "tuning_mode": "head", "train_pooler": "true"}
  (run,) = sweeps.expand_grid(grid(methods=["head:train_pooler=true"],
                                   seeds=["1"]))
  assert sweeps.run_id(run) == "SST-2-head-train_pooler_true-lr1e-2-ep0.5-seed1"
  for bad in ("top_layers", "bitfit:7", "adapters:x"):
    with pytest.raises(errors.InputError, match="--methods"):
      sweeps.method_flags(bad)


@pytest.fixture
def sweep_inputs(tmp_path, tiny_bert):
  glue_dir = tmp_path / "glue"
  write_sst2_task(str(glue_dir / "SST-2"), num_train=32, num_dev=9)
  return {"bert_dir": os.path.dirname(tiny_bert["init_checkpoint"]),
          "glue_dir": str(glue_dir), "work_dir": str(tmp_path / "runs"),
          "max_seq_length": 16, "train_batch_size": 8, "eval_batch_size": 8}


@pytest.mark.slow
def test_sweep_runs_each_run_once_and_resumes(tmp_path, sweep_inputs):
  results = str(tmp_path / "results" / "sweep.csv")
  rows = sweeps.run_sweep(grid(), sweep_inputs, results, command="test")
  assert len(rows) == 4
  with open(results, newline="") as f:
    table = list(csv.DictReader(f))
  assert [r["run_id"] for r in table] == [r["run_id"] for r in rows]
  head = [r for r in table if r["method"] == "head"]
  adapters = [r for r in table if r["method"] == "adapters"]
  # The tiny model: head = 2 x 32 + 2 trained parameters.
  assert {r["trained_parameters"] for r in head} == {"66"}
  assert all(int(r["trained_parameters"]) > 66 for r in adapters)
  for row in table:
    metrics = json.loads(row["metrics"])
    assert row["primary_metric"] == "eval_accuracy"
    assert float(row["primary_value"]) == metrics["eval_accuracy"]
    assert int(row["disk_bytes"]) > 0
  summary = open(os.path.join(tmp_path, "results", "sweep.md")).read()
  assert "| adapters (m=4) |" in summary and "| head |" in summary
  # TensorBoard's HParams dashboard: a session per run, the experiment.
  (experiment, domains, metric_tags) = read_hparams_experiment(
      sweep_inputs["work_dir"])
  assert domains == {"task": ["SST-2"], "method": ["adapters", "head"],
                     "adapter_size": [4.0], "learning_rate": [0.01],
                     "epochs": [0.5], "init_scale": [0.001],
                     "seed": [1.0, 2.0]}, experiment
  assert metric_tags == ["eval_accuracy", "eval_loss"]
  for (run, row) in zip(sweeps.expand_grid(grid()), table):
    (values, scalars) = read_hparams_session(sweeps.folder_of(
        run, sweep_inputs, sweep_records.Context(sweep_inputs)))
    assert values["method"] == row["method"] and values["seed"] == float(
        row["seed"])
    assert ("adapter_size" in values) == (row["method"] == "adapters")
    assert scalars == pytest.approx(json.loads(row["metrics"]), abs=1e-7)

  # Again: nothing runs, the table stays as it is.
  modified = os.path.getmtime(results)
  assert sweeps.run_sweep(grid(), sweep_inputs, results) == table
  assert os.path.getmtime(results) == modified

  # The table is derived from the runs' folders: a row lost from it (a
  # table restored from an old copy) comes back from its folder's record,
  # without running; a run whose record is lost too (killed between its end
  # and its record) runs again from its folder: its checkpoint is there, so
  # it only evaluates, and gives the same numbers.
  for lose_record in (False, True):
    lost = table[1]
    with open(results, "w", newline="") as f:
      writer = csv.DictWriter(f, fieldnames=sweeps.COLUMNS,
                              lineterminator="\n")
      writer.writeheader()
      writer.writerows([r for r in table if r is not lost])
    folder = sweeps.folder_of(sweeps.expand_grid(grid())[1], sweep_inputs,
                              sweep_records.Context(sweep_inputs))
    log = open(os.path.join(folder, "run_classifier.log")).read()
    if lose_record:
      os.remove(os.path.join(folder, sweep_records.RECORD))
    again = sweeps.run_sweep(grid(), sweep_inputs, results)
    redone = [r for r in again if r["run_id"] == lost["run_id"]]
    assert len(again) == 4 and len(redone) == 1
    assert redone[0]["metrics"] == lost["metrics"]
    ran = open(os.path.join(folder, "run_classifier.log")).read() != log
    assert ran == lose_record
    assert float(redone[0]["train_seconds"]) == float(lost["train_seconds"])


def _events(path):
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  return list(tf.train.summary_iterator(path))


def read_hparams_session(folder):
  """({hparam: value}, {scalar tag: value}) of a run folder's HParams
  session, read back as TensorBoard reads it."""
  from tensorboard.plugins.hparams import metadata  # pylint: disable=g-import-not-at-top
  values = {}
  scalars = {}
  for event in _events(os.path.join(folder,
                                    "events.out.tfevents.hparams_session")):
    for value in event.summary.value:
      if value.metadata.plugin_data.plugin_name == "hparams":
        info = metadata.parse_session_start_info_plugin_data(
            value.metadata.plugin_data.content)
        for (name, v) in info.hparams.items():
          values[name] = v.string_value or v.number_value
      else:
        scalars[value.tag] = value.simple_value
  return (values, scalars)


def read_hparams_experiment(work_dir):
  """(the experiment proto, {hparam: its values}, metric tags) of a work
  folder."""
  from tensorboard.plugins.hparams import metadata  # pylint: disable=g-import-not-at-top
  (event,) = [e for e in _events(os.path.join(
      work_dir, "events.out.tfevents.hparams_experiment")) if e.summary.value]
  experiment = metadata.parse_experiment_plugin_data(
      event.summary.value[0].metadata.plugin_data.content)
  domains = {}
  for info in experiment.hparam_infos:
    domains[info.name] = [v.string_value or v.number_value
                          for v in info.domain_discrete.values]
  return (experiment, domains,
          [m.name.tag for m in experiment.metric_infos])


def test_two_tables_on_one_work_folder_share_its_hparams_experiment(
    tmp_path, sweep_inputs):
  from adapter_bert import sweep_hparams  # pylint: disable=g-import-not-at-top
  context = sweep_records.Context(sweep_inputs)
  work_dir = str(tmp_path)
  sweep_hparams.write_experiment(work_dir, [finished_row(context)])
  other = finished_row(context, method="adapters", adapter_size="64",
                       learning_rate="3e-4",
                       metrics='{"eval_accuracy": 0.6, "eval_loss": 0.7}')
  sweep_hparams.write_experiment(work_dir, [other])
  (_, domains, metric_tags) = read_hparams_experiment(work_dir)
  # TensorBoard reads one experiment per folder: it lists both tables' runs.
  assert domains["method"] == ["adapters", "head"]
  assert domains["learning_rate"] == [3e-4, 1e-2]
  assert domains["adapter_size"] == [64.0]
  assert sorted(metric_tags) == ["eval_accuracy", "eval_loss"]
  # A damaged experiment is rewritten from the table alone.
  with open(os.path.join(work_dir, sweep_hparams.EXPERIMENT_EVENTS),
            "wb") as f:
    f.write(b"not a record")
  sweep_hparams.write_experiment(work_dir, [other])
  assert read_hparams_experiment(work_dir)[1]["method"] == ["adapters"]


def hand_made_rows():
  """adapters at two rates and full, three seeds each, known values."""
  rows = []
  values = {("adapters", "64", "1e-4"): [0.70, 0.72, 0.74],
            ("adapters", "64", "1e-3"): [0.80, 0.82, 0.78],
            ("full", "", "2e-5"): [0.79, 0.80, 0.84]}
  for ((method, size, lr), seed_values) in values.items():
    for (seed, value) in zip(("1", "2", "3"), seed_values):
      rows.append({"run_id": "%s-%s-%s" % (method, lr, seed), "task": "MRPC",
                   "method": method, "adapter_size": size,
                   "learning_rate": lr, "epochs": "3",
                   "init_scale": "1e-3" if size else "", "seed": seed,
                   "trained_parameters": "100" if size else "1000",
                   "total_parameters": "1000", "trained_percent":
                   "10.000" if size else "100.000",
                   "primary_metric": "eval_f1", "primary_value": str(value)})
  return rows


def test_summary_selects_by_mean_over_seeds_and_pairs_by_seed():
  summary = sweep_summary.summarize(hand_made_rows())
  adapters = summary["selected"][("MRPC", "adapters", "64")]
  assert adapters["learning_rate"] == "1e-3"
  assert adapters["mean"] == pytest.approx(0.80)
  assert adapters["std"] == pytest.approx(0.02)
  (low, high) = adapters["interval"]
  assert 0.78 - 1e-9 <= low <= 0.80 <= high <= 0.82 + 1e-9
  full = summary["selected"][("MRPC", "full", "")]
  assert full["mean"] == pytest.approx(0.81)
  paired = summary["paired"][("MRPC", "adapters", "64")]
  # Per seed: 0.80-0.79, 0.82-0.80, 0.78-0.84.
  assert paired["n"] == 3
  assert paired["mean"] == pytest.approx(np.mean([0.01, 0.02, -0.06]))
  assert paired["interval"][0] < 0 < paired["interval"][1]
  text = sweep_summary.summary_markdown(hand_made_rows(), summary,
                                        "python scripts/sweep.py")
  assert "| adapters (m=64) | 0.8000 (3) | 0.8000 |" in text
  assert "| full | 0.8100 (3) | 0.8100 |" in text
  assert "| MRPC | adapters (m=64) | 3 | -0.0100 |" in text
  assert "| yes |" in text


def test_every_method_is_paired_with_the_reference_method():
  """Not only adapters: every method but the reference (full fine-tuning)
  is compared with it, seed by seed."""
  rows = hand_made_rows()
  for (seed, value) in zip(("1", "2", "3"), (0.60, 0.61, 0.65)):
    rows.append(dict(rows[-1], run_id="head-%s" % seed, method="head",
                     learning_rate="1e-3", seed=seed,
                     primary_value=str(value)))
  summary = sweep_summary.summarize(rows)
  assert sorted(summary["paired"]) == [("MRPC", "adapters", "64"),
                                       ("MRPC", "head", "")]
  head = summary["paired"][("MRPC", "head", "")]
  # Per seed: 0.60-0.79, 0.61-0.80, 0.65-0.84.
  assert head["n"] == 3
  assert head["mean"] == pytest.approx(-0.19)
  text = sweep_summary.summary_markdown(rows, summary,
                                        "python scripts/sweep.py")
  assert "## Each method minus full, paired by seed" in text
  assert "Adapters minus full" not in text
  assert "| MRPC | head | 3 | -0.1900 |" in text
  assert "| MRPC | adapters (m=64) | 3 | -0.0100 |" in text


@pytest.mark.parametrize("spec,sizes,scales,switchable", [
    ("adapters", "adapter_size", "adapter_init_scale", True),
    ("adapters:noln", "adapter_size", "adapter_init_scale", True),
    ("full", None, None, False),
    ("head", None, None, False),
    ("layernorm", None, None, False),
    ("top_layers:1", None, None, False),
    ("bitfit", None, None, False),
])
def test_the_grid_axes_and_the_ablation_apply_where_the_method_says(
    spec, sizes, scales, switchable):
  assert sweeps.axis_option(spec, "adapter_sizes") == sizes
  assert sweeps.axis_option(spec, "init_scales") == scales
  assert sweeps.adds_switchable_parts(spec) == switchable


def test_bootstrap_interval_of_a_constant_is_the_constant():
  assert sweep_summary.bootstrap_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
  (low, high) = sweep_summary.bootstrap_interval([0.0, 1.0] * 10)
  assert 0.25 < low < 0.5 < high < 0.75


def test_selection_compares_settings_on_their_common_seeds():
  """Seeds added to the chosen setting after a one-seed pilot must not move
  the choice: lr 1e-3 wins the pilot (seed 1: 0.80 against 0.75); its later
  seeds bring its mean to 0.7333, below 0.75, and it stays chosen."""
  rows = []
  for (lr, seed, value) in (("1e-3", "1", 0.80), ("1e-3", "2", 0.70),
                            ("1e-3", "3", 0.70), ("1e-4", "1", 0.75)):
    rows.append({"task": "MRPC", "method": "adapters", "adapter_size": "64",
                 "learning_rate": lr, "epochs": "3", "init_scale": "1e-3",
                 "seed": seed, "trained_parameters": "100",
                 "total_parameters": "1000", "trained_percent": "10.000",
                 "primary_metric": "eval_f1", "primary_value": str(value)})
  chosen = sweep_summary.summarize(rows)["selected"][("MRPC", "adapters", "64")]
  assert chosen["learning_rate"] == "1e-3"
  assert chosen["mean"] == pytest.approx(0.80 / 3 + 1.40 / 3)
  assert sorted(chosen["values"]) == ["1", "2", "3"]


def mrpc_row(method, lr, f1, accuracy, size="64", seed="1"):
  return {"run_id": "%s-%s-%s-%s" % (method, size, lr, seed), "task": "MRPC",
          "method": method, "adapter_size": size, "learning_rate": lr,
          "epochs": "3", "init_scale": "1e-3" if size else "", "seed": seed,
          "trained_parameters": "100", "total_parameters": "1000",
          "trained_percent": "10.000", "primary_metric": "eval_f1",
          "primary_value": str(f1), "metrics": json.dumps(
              {"eval_accuracy": accuracy, "eval_f1": f1})}


def test_mrpc_settings_are_selected_by_glue_score_not_f1_alone():
  """The majority class's F1 (0.8122) beats a learning model's (0.8094 at
  accuracy 0.743), as in the GLUE pilot's Pfeiffer runs; GLUE's score of
  MRPC, the mean of F1 and accuracy, does not. The table reports F1."""
  rows = [mrpc_row("pfeiffer", "3e-3", 0.8122, 0.6838),
          mrpc_row("pfeiffer", "3e-4", 0.8094, 0.7426),
          # Sizes too: m=8 collapses, m=64 learns.
          mrpc_row("adapters", "3e-4", 0.8122, 0.6838, size="8"),
          mrpc_row("adapters", "3e-4", 0.8100, 0.7500, size="64")]
  summary = sweep_summary.summarize(rows)
  pfeiffer = summary["selected"][("MRPC", "pfeiffer", "64")]
  assert pfeiffer["learning_rate"] == "3e-4"
  assert pfeiffer["mean"] == pytest.approx(0.8094)
  assert summary["size_tuned"][("MRPC", "adapters")]["size"] == "64"
  text = sweep_summary.summary_markdown(rows, summary, "x", {"MRPC": 0.8122})
  assert "(MRPC: the mean of f1 and accuracy)" in text
  assert "| pfeiffer (m=64) | 0.8094 (1) |" in text
  # A hand-made row without metrics is selected by its primary value.
  assert sweep_summary.selection_score(dict(rows[0], metrics="{}")) == 0.8122
  assert sweep_summary.selection_score(rows[1]) == pytest.approx(
      (0.8094 + 0.7426) / 2)


def test_settings_tied_at_the_majority_class_go_to_the_lower_dev_loss():
  """RTE in 3 epochs: every rate answers the majority class, tied exactly;
  the one that fits dev best (lowest loss) is the one a longer schedule
  continues, not the first in sorted order."""
  def rte_row(lr, accuracy, loss, seed="1"):
    metrics = {"eval_accuracy": accuracy}
    if loss is not None:
      metrics["eval_loss"] = loss
    return dict(mrpc_row("bitfit", lr, 0, 0, size="", seed=seed), task="RTE",
                primary_metric="eval_accuracy", primary_value=str(accuracy),
                metrics=json.dumps(metrics))
  rows = [rte_row("1e-3", 0.5271, 0.6931), rte_row("3e-3", 0.5271, 0.6950),
          rte_row("3e-4", 0.5271, 0.6890)]
  chosen = sweep_summary.summarize(rows)["selected"][("RTE", "bitfit", "")]
  assert chosen["learning_rate"] == "3e-4"
  # A higher value still wins over a lower loss.
  rows.append(rte_row("1e-4", 0.5307, 0.7100))
  chosen = sweep_summary.summarize(rows)["selected"][("RTE", "bitfit", "")]
  assert chosen["learning_rate"] == "1e-4"
  # Rows recorded without a loss rank below those with one in a tie.
  rows = [rte_row("1e-3", 0.5271, None), rte_row("3e-3", 0.5271, 0.6950)]
  chosen = sweep_summary.summarize(rows)["selected"][("RTE", "bitfit", "")]
  assert chosen["learning_rate"] == "3e-3"
  # ...and when none has one, the first in sorted order, as before.
  rows = [rte_row("3e-3", 0.5271, None), rte_row("1e-3", 0.5271, None)]
  chosen = sweep_summary.summarize(rows)["selected"][("RTE", "bitfit", "")]
  assert chosen["learning_rate"] == "1e-3"


@pytest.mark.parametrize("task,metrics", [
    ("MRPC", ("eval_f1", "eval_accuracy")), ("QQP", ("eval_f1",
                                                     "eval_accuracy")),
    ("STS-B", ("eval_pearson", "eval_spearman")), ("CoLA", ("eval_mcc",)),
    ("RTE", ("eval_accuracy",)), ("SST-2", ("eval_accuracy",))])
def test_glue_score_metrics_are_glue_s(task, metrics):
  from adapter_bert import glue  # pylint: disable=g-import-not-at-top
  assert glue.get_task(task).glue_score_metrics == metrics


def test_cells_at_the_majority_class_are_marked_and_partial_rows_have_no_total():
  rows = [mrpc_row("adapters", "3e-4", 0.8122, 0.6838, seed="1"),
          mrpc_row("adapters", "3e-4", 0.8122, 0.6838, seed="2"),
          mrpc_row("lora", "3e-4", 0.8122, 0.6838, size="", seed="1"),
          mrpc_row("lora", "3e-4", 0.8500, 0.7800, size="", seed="2"),
          dict(mrpc_row("adapters", "3e-4", 0.55, 0.55), task="RTE",
               primary_metric="eval_accuracy", primary_value="0.55",
               metrics='{"eval_accuracy": 0.55}')]
  text = summary_of(rows, "x", {"MRPC": 0.8122, "RTE": 0.5271})
  # Every seed at the majority class's value: marked; one seed learning: not.
  assert "| adapters (m=64) | 0.8122 (2)\u2020 | 0.5500 (1) | 0.6811 |" in text
  assert "| lora | 0.8311 (2) | - | - | 10.00 | - |" in text
  assert "\u2020: every seed's value is the majority class's" in text
  # Without the baselines (no data files), no mark.
  plain = summary_of(rows, "x")
  assert "\u2020" not in plain


def stsb_row(method, lr, spearman, loss, seed="1", size=""):
  metrics = {"eval_pearson": spearman, "eval_spearman": spearman}
  if loss is not None:
    metrics["eval_loss"] = loss
  return dict(mrpc_row(method, lr, 0, 0, size=size, seed=seed), task="STS-B",
              primary_metric="eval_spearman", primary_value=str(spearman),
              metrics=json.dumps(metrics))


def test_regression_cells_no_better_than_a_constant_answer_are_marked(
    tmp_path):
  # Dev scores 4.7 and 1.2 alternating: the best constant (2.95) is 1.75 off
  # each, a squared error of 1.75^2 = 3.0625.
  write_stsb_task(str(tmp_path / "STS-B"), num_dev=6)
  losses = sweep_summary.constant_answer_losses(["STS-B", "MRPC"],
                                                str(tmp_path))
  assert losses == {"STS-B": pytest.approx(3.0625)}
  rows = [stsb_row("adapters", "1e-3", 0.02, 3.10, seed="1", size="64"),
          stsb_row("adapters", "1e-3", -0.01, 3.07, seed="2", size="64"),
          stsb_row("lora", "1e-3", 0.03, 3.10, seed="1"),
          stsb_row("lora", "1e-3", 0.10, 2.90, seed="2"),
          stsb_row("ia3", "1e-3", 0.01, None)]
  text = summary_of(rows, "x", {}, losses)
  # Every seed at or above the constant's error: marked; one below, or a
  # row without its loss (older tables): not.
  assert "| adapters (m=64) | 0.0050 (2)\u2021 |" in text
  assert "| lora | 0.0650 (2) |" in text
  assert "| ia3 | 0.0100 (1) |" in text
  assert text.count("\u2021") == 2  # the cell and its footnote
  assert "\u2021: every seed's dev squared error is at least" in text
  assert "\u2021" not in summary_of(rows, "x")


def test_at_selected_moves_every_cell_to_its_chosen_setting():
  pilot = [r for r in hand_made_rows() if r["seed"] == "1"]
  runs = sweeps.expand_grid(grid(tasks=["MRPC", "RTE"],
                                 methods=["adapters", "full"],
                                 adapter_sizes=["64"], learning_rates=["9e-9"],
                                 epochs=["3"], seeds=["1", "2", "3"]))
  (moved, left_out) = sweep_summary.runs_at_selected(runs, pilot)
  # Seed 1 of adapters: 0.70 at 1e-4, 0.80 at 1e-3.
  assert {(r.method, r.learning_rate) for r in moved} == {
      ("adapters", "1e-3"), ("full", "2e-5")}
  assert sorted(r.seed for r in moved if r.method == "full") == ["1", "2",
                                                                 "3"]
  assert all(r.task == "MRPC" for r in moved)
  assert left_out == [("RTE", "adapters", "64"), ("RTE", "full", "")]
  # A longer schedule at the selected learning rate: epochs kept as given.
  longer = sweeps.expand_grid(grid(tasks=["MRPC"], methods=["adapters"],
                                   adapter_sizes=["64"],
                                   learning_rates=["9e-9"], epochs=["10"],
                                   seeds=["1"]))
  (moved, _) = sweep_summary.runs_at_selected(longer, pilot, keep=["epochs"])
  assert [(r.learning_rate, r.epochs) for r in moved] == [("1e-3", "10")]


@pytest.mark.slow
def test_ablation_evaluates_every_span_once(tmp_path, sweep_inputs):
  results = str(tmp_path / "sweep.csv")
  small = grid(methods=["adapters"], seeds=["1"])
  sweeps.run_sweep(small, sweep_inputs, results)
  ablation = str(tmp_path / "ablation.csv")
  table = sweep_ablation.run_ablation(small, sweep_inputs, results, ablation)
  # The tiny model has 2 layers: spans 0, 0-1, 1, and the unablated row.
  spans = [(r["first_layer"], r["last_layer"]) for r in table]
  assert sorted(spans) == [("", ""), ("0", "0"), ("0", "1"), ("1", "1")]
  with open(ablation, newline="") as f:
    assert len(list(csv.DictReader(f))) == 4
  text = open(str(tmp_path / "ablation.md")).read()
  assert "| 0 | " in text and "| 1 | " in text
  # Switching off every adapter is the pre-trained path plus the trained
  # head and LayerNorms; it is evaluated like any other span.
  folder = sweeps.folder_of(sweeps.expand_grid(small)[0], sweep_inputs,
                            sweep_records.Context(sweep_inputs))
  assert os.path.exists(os.path.join(folder,
                                     "eval_results_ablated_0-1.txt"))
  # Again: nothing is evaluated.
  modified = os.path.getmtime(ablation)
  assert len(sweep_ablation.run_ablation(small, sweep_inputs, results,
                                         ablation)) == 4
  assert os.path.getmtime(ablation) == modified
  # The trained run's folder is gone (another machine): it is trained again,
  # with its seed, and gives the same ablation table.
  shutil.rmtree(folder)
  again = sweep_ablation.run_ablation(small, sweep_inputs, results,
                                      str(tmp_path / "ablation2.csv"))
  assert ([(r["first_layer"], r["last_layer"], r["primary_value"])
           for r in again] ==
          [(r["first_layer"], r["last_layer"], r["primary_value"])
           for r in table])


def test_size_tuned_per_task_picks_the_better_size_on_common_seeds():
  rows = []
  values = {("MRPC", "8"): [0.70, 0.90], ("MRPC", "64"): [0.80, 0.70],
            ("RTE", "8"): [0.50, 0.50], ("RTE", "64"): [0.60, 0.60]}
  for ((task, size), seed_values) in values.items():
    for (seed, value) in zip(("1", "2"), seed_values):
      rows.append({"task": task, "method": "adapters", "adapter_size": size,
                   "learning_rate": "1e-3", "epochs": "3",
                   "init_scale": "1e-3", "seed": seed,
                   "trained_parameters": size, "total_parameters": "1000",
                   "trained_percent": "1.0", "primary_metric": "eval_f1",
                   "primary_value": str(value)})
  summary = sweep_summary.summarize(rows)
  tuned = summary["size_tuned"]
  assert tuned[("MRPC", "adapters")]["size"] == "8"  # 0.80 against 0.75
  assert tuned[("RTE", "adapters")]["size"] == "64"
  text = sweep_summary.summary_markdown(rows, summary, "x", {"MRPC": 0.81})
  assert ("| adapters (m tuned per task) | 0.8000 (m=8, 2) | 0.6000 (m=64, "
          "2) | 0.7000 |") in text
  assert "| majority class (no training) | 0.8100 | - | - | 0 | 0 |" in text


def test_one_seed_has_no_noise_verdict():
  rows = [r for r in hand_made_rows() if r["seed"] == "1"]
  text = summary_of(rows, "x")
  assert "| MRPC | adapters (m=64) | 1 | +0.0100 |" in text
  assert "one seed: no interval yet" in text and "| no |" not in text


def test_majority_baseline_is_the_most_frequent_training_label(tmp_path):
  write_sst2_task(str(tmp_path / "SST-2"), num_train=40, num_dev=11)
  from adapter_bert import glue
  task = glue.get_task("SST-2")
  train = task.label_values(task.get_train_examples(str(tmp_path / "SST-2")))
  dev = task.label_values(task.get_dev_examples(str(tmp_path / "SST-2")))
  majority = max(set(train), key=train.count)
  expected = sum(1 for label in dev if label == majority) / len(dev)
  baselines = sweep_summary.majority_baselines(["SST-2", "RTE"], str(tmp_path))
  assert baselines == {"SST-2": pytest.approx(expected)}  # no RTE files


def write_config(tmp_path, text):
  path = str(tmp_path / "grid.json")
  with open(path, "w") as f:
    f.write(text)
  return path


def test_a_grid_config_gives_its_lists_as_strings(tmp_path):
  path = write_config(tmp_path, '{"seeds": [1, 2, 3], "tasks": ["MRPC"]}')
  assert sweeps.read_grid_config(path) == {"seeds": ["1", "2", "3"],
                                           "tasks": ["MRPC"]}


@pytest.mark.parametrize("text,fragment", [
    ('{"seeds": 1}', "'seeds' must be a non-empty list"),
    ('{"seeds": "12"}', 'got "12"'),
    ('{"seeds": [[1, 2]]}', "got [[1, 2]]"),
    ('{"seeds": []}', "non-empty list"),
    ('{"seeds": [true]}', "non-empty list"),
    ('{"seed": [1]}', "unknown keys seed (known: tasks,"),
    ('[1, 2]', "must be a JSON object"),
    ('{"seeds": [1,', "not JSON"),
])
def test_a_bad_grid_config_is_one_line_naming_the_file(tmp_path, text,
                                                       fragment):
  path = write_config(tmp_path, text)
  with pytest.raises(errors.InputError) as e:
    sweeps.read_grid_config(path)
  message = str(e.value)
  assert message.startswith("--config=%s: " % path) and "\n" not in message
  assert fragment in message, message


@pytest.mark.parametrize("cut", ["mid-row", "extra field"])
def test_a_damaged_results_table_is_one_line_naming_file_and_line(tmp_path,
                                                                  cut):
  path = str(tmp_path / "sweep.csv")
  rows = [{k: "1" for k in sweeps.COLUMNS} for _ in range(2)]
  sweeps.write_results(path, rows)
  with open(path) as f:
    text = f.read()
  text = text[:-8] if cut == "mid-row" else text.rstrip("\n") + ",9\n"
  with open(path, "w") as f:
    f.write(text)
  with pytest.raises(errors.InputError) as e:
    sweeps.read_results(path)
  assert str(e.value).startswith("%s:3: " % path), str(e.value)
  assert "the table is damaged" in str(e.value)


def run_classifier_pids(marker):
  """The live run_classifier.py processes whose command line holds
  `marker` (zombies, which have no command line, excluded)."""
  pids = []
  for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
      with open("/proc/%s/cmdline" % pid, "rb") as f:
        command = f.read().decode("utf-8", "replace")
    except OSError:
      continue
    if "run_classifier.py" in command and marker in command:
      pids.append(int(pid))
  return pids


def sweep_command(sweep_inputs, results, **changes):
  flags = dict(sweep_inputs, results=results, tasks="SST-2", methods="head",
               learning_rates="1e-2", epochs="150", seeds="1,2")
  flags.update(changes)
  return [sys.executable, os.path.join(REPO_ROOT, "scripts", "sweep.py")] + [
      "--%s=%s" % item for item in sorted(flags.items())]


@pytest.mark.slow
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_stops_the_sweep_and_its_run_and_a_rerun_continues(
    tmp_path, sweep_inputs, signal_number):
  results = str(tmp_path / "sweep.csv")
  command = sweep_command(sweep_inputs, results)
  sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
  work_dir = sweep_inputs["work_dir"]
  deadline = time.time() + 300
  # Until the first run trains: its first checkpoint is written.
  while time.time() < deadline and sweep.poll() is None:
    if glob.glob(os.path.join(work_dir, "*", "model.ckpt-0.index")):
      break
    time.sleep(0.1)
  assert run_classifier_pids(work_dir), "no run started"
  sweep.send_signal(signal_number)
  (_, stderr) = sweep.communicate(timeout=300)
  if signal_number == signal.SIGKILL:
    assert sweep.returncode == -signal.SIGKILL
  else:
    lines = stderr.strip().splitlines()
    assert sweep.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert lines[-1].startswith("sweep.py: error: stopped by SIGTERM: 0 runs "
                                "finished and recorded, 1 stopped"), lines[-1]
  # The run does not train on as an orphan: it saves and stops.
  while time.time() < deadline and run_classifier_pids(work_dir):
    time.sleep(0.2)
  assert not run_classifier_pids(work_dir)
  assert not sweeps.read_results(results)  # nothing finished, nothing recorded

  again = subprocess.run(command, capture_output=True, text=True,
                         cwd=REPO_ROOT, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  rows = sweeps.read_results(results)
  assert sorted(r["seed"] for r in rows) == ["1", "2"]
  assert len({r["run_id"] for r in rows}) == 2


def test_an_unwritable_results_folder_is_refused_before_any_run(tmp_path,
                                                                sweep_inputs):
  plain = tmp_path / "results"
  plain.write_text("not a folder")  # what root cannot write into either
  with pytest.raises(errors.InputError) as e:
    sweeps.run_sweep(grid(), sweep_inputs, str(plain / "sweep.csv"))
  assert str(e.value) == ("--results=%s: its folder cannot take the table "
                          "(it is a file, not a folder)" % (plain / "sweep.csv"))
  assert not os.path.exists(sweep_inputs["work_dir"])  # no run started


def finished_row(context, **changes):
  """A table row of a finished run in `context`, made by hand."""
  run = sweeps.expand_grid(grid(methods=["head"], seeds=["1"]))[0]
  row = dict(run._asdict(), run_id=sweeps.run_id(run),
             trained_parameters="66", total_parameters="1000",
             trained_percent="6.600", metrics='{"eval_accuracy": 0.5}',
             primary_metric="eval_accuracy", primary_value="0.5",
             train_seconds="1.0", disk_bytes="1", finished_utc="")
  row.update(context.of(run.task))
  row.update(changes)
  return row


@pytest.mark.parametrize("change", ["max_seq_length", "train_batch_size",
                                    "eval_batch_size", "bert_dir",
                                    "glue_dir"])
def test_a_changed_command_never_inherits_a_finished_grid(tmp_path,
                                                         sweep_inputs,
                                                         change):
  results = str(tmp_path / "sweep.csv")
  sweeps.write_results(results, [finished_row(
      sweep_records.Context(sweep_inputs))])
  changed = dict(sweep_inputs)
  if change.endswith(("_length", "_size")):
    changed[change] = 2 * sweep_inputs[change]
    expected = "%s %s (now %s)" % (change, sweep_inputs[change],
                                   changed[change])
  elif change == "bert_dir":
    changed[change] = str(tmp_path / "other_bert")
    shutil.copytree(sweep_inputs["bert_dir"], changed[change])
    config = os.path.join(changed[change], "bert_config.json")
    with open(config) as f:
      values = dict(json.load(f), hidden_dropout_prob=0.2)
    with open(config, "w") as f:
      json.dump(values, f)
    expected = "backbone_sha256 "
  else:
    changed[change] = str(tmp_path / "other_glue")
    shutil.copytree(sweep_inputs["glue_dir"], changed[change])
    with open(os.path.join(changed[change], "SST-2", "dev.tsv"), "a") as f:
      f.write("one more good film .\t1\n")
    expected = "data_sha256 "
  # The same grid run by the changed command is other runs, in other folders.
  run = sweeps.expand_grid(grid())[0]
  assert sweeps.folder_of(run, changed, sweep_records.Context(changed)) != (
      sweeps.folder_of(run, sweep_inputs, sweep_records.Context(sweep_inputs)))
  # Its table cannot be the old one: the summary would mix them.
  with pytest.raises(errors.InputError) as e:
    sweeps.run_sweep(grid(methods=["head"], seeds=["1"]), changed, results)
  message = str(e.value)
  assert message.startswith(
      "--results=%s holds runs made with other settings "
      "(SST-2-head-lr1e-2-ep0.5-seed1: " % results), message
  assert expected in message and message.endswith(
      "one table is one sweep's; give this command another --results")
  assert not os.path.exists(changed["work_dir"])  # nothing ran


# run_classifier.py flags by type, as its --helpxml gives them (the real
# list is checked against the command line in test_run_flags_...real_flags).
KNOWN_FLAGS = {"adam_bias_correction": "bool", "warmup_proportion": "float",
               "padding": "string enum", "learning_rate": "float",
               "do_predict": "bool", "tuning_mode": "string enum",
               "adapter_size": "int", "precision": "string enum",
               "train_pooler": "bool"}


def test_run_flags_are_parsed_with_booleans_in_one_spelling():
  assert sweeps.parse_run_flags(
      ["--warmup_proportion=0.06", "--adam_bias_correction",
       "--nodo_predict"], KNOWN_FLAGS) == {
           "warmup_proportion": "0.06", "adam_bias_correction": "true",
           "do_predict": "false"}
  assert sweeps.parse_run_flags(["--adam_bias_correction=False"],
                                KNOWN_FLAGS) == {"adam_bias_correction":
                                                 "false"}
  assert sweep_records.run_flags_text(
      {"warmup_proportion": "0.06", "adam_bias_correction": "true"}) == (
          "--adam_bias_correction=true --warmup_proportion=0.06")


@pytest.mark.parametrize("arguments,fragment", [
    (["adam_bias_correction"], "--run_flag=adam_bias_correction: not a flag"),
    (["--no_such_flag=1"], "run_classifier.py has no flag --no_such_flag"),
    (["--learning_rate=1e-3"], "the sweep sets --learning_rate itself"),
    (["--tuning_mode=lora"], "the sweep sets --tuning_mode itself"),
    (["--adapter_size=8"], "the sweep sets --adapter_size itself"),
    (["--train_pooler"], "--train_pooler is a method's option; give it in "
     "the method's spec (--methods=adapters:train_pooler=...)"),
    (["--precision=bfloat16"], "the sweep sets --precision itself"),
    (["--warmup_proportion=0.1", "--warmup_proportion=0.2"], "given twice"),
    (["--warmup_proportion"], "give its value (--warmup_proportion=...)"),
    (["--adam_bias_correction=yes"], "a boolean is true or false"),
])
def test_a_bad_run_flag_is_one_line_naming_it(arguments, fragment):
  assert_input_error(lambda: sweeps.parse_run_flags(arguments, KNOWN_FLAGS),
                     "--run_flag=" + arguments[-1], fragment)


@pytest.mark.slow
def test_run_flags_are_checked_against_run_classifiers_real_flags():
  known = {flag.name: flag.type for flag in command_flags.own_flags(
      os.path.join(REPO_ROOT, "run_classifier.py"))}
  for (name, kind) in KNOWN_FLAGS.items():
    assert known[name] == kind
  # Every flag the sweep sets is one run_classifier.py has: none can slip
  # through --run_flag under a name the sweep does not know it sets.
  owned = sweeps.sweep_owned_flags()
  assert owned <= set(known), owned - set(known)
  assert {"learning_rate", "output_dir", "precision", "seed",
          "adapter_size", "lora_rank"} <= owned


def test_run_flags_are_context_and_no_run_flags_keeps_the_old_ids(
    tmp_path, sweep_inputs):
  plain = sweep_records.Context(sweep_inputs).of("SST-2")
  # The id of a context without run flags is the hash of the five settings
  # it had before run flags existed: the folders of older sweeps still match.
  before = {k: plain[k] for k in ("backbone_sha256", "data_sha256",
                                  "max_seq_length", "train_batch_size",
                                  "eval_batch_size")}
  assert plain["context_id"] == hashlib.sha256(json.dumps(
      before, sort_keys=True).encode("utf-8")).hexdigest()[:10]
  assert plain["run_flags"] == ""
  flagged_inputs = dict(sweep_inputs,
                        run_flags={"adam_bias_correction": "true"})
  flagged = sweep_records.Context(flagged_inputs).of("SST-2")
  assert flagged["run_flags"] == "--adam_bias_correction=true"
  assert flagged["context_id"] != plain["context_id"]
  run = sweeps.expand_grid(grid())[0]
  assert "--adam_bias_correction=true" in sweeps.run_command(
      run, "/tmp/x", flagged_inputs)
  assert not [a for a in sweeps.run_command(run, "/tmp/x", sweep_inputs)
              if "adam" in a]
  # A table of runs without them is refused by a sweep with them, and the
  # other way round; a table written before the column existed continues.
  results = str(tmp_path / "sweep.csv")
  sweeps.write_results(results, [finished_row(
      sweep_records.Context(sweep_inputs))])
  assert_input_error(lambda: sweeps.run_sweep(
      grid(methods=["head"], seeds=["1"]), flagged_inputs, results),
                     "run_flags none (now --adam_bias_correction=true)")
  sweeps.write_results(results, [finished_row(
      sweep_records.Context(flagged_inputs))])
  assert_input_error(lambda: sweeps.run_sweep(
      grid(methods=["head"], seeds=["1"]), sweep_inputs, results),
                     "run_flags --adam_bias_correction=true (now none)")
  sweeps.write_results(results, [finished_row(
      sweep_records.Context(sweep_inputs))], columns=sweeps.COLUMNS[:-1])
  sweeps.run_sweep(grid(methods=["head"], seeds=["1"]), sweep_inputs,
                   results)  # the one run is finished: nothing to run
  assert not os.path.exists(sweep_inputs["work_dir"])


def test_the_summary_names_the_run_flags_every_run_had(sweep_inputs):
  context = sweep_records.Context(dict(
      sweep_inputs, run_flags={"adam_bias_correction": "true"}))
  rows = [finished_row(context)]
  text = summary_of(rows, "x")
  assert "Every run also had: `--adam_bias_correction=true`." in text
  plain = [finished_row(sweep_records.Context(sweep_inputs))]
  assert "also had" not in sweep_summary.summary_markdown(
      plain, sweep_summary.summarize(plain), "x")


def test_a_run_whose_training_time_was_not_recorded_has_none_not_zero(
    tmp_path):
  run = sweeps.expand_grid(grid(methods=["head"], seeds=["1"]))[0]
  folder = tmp_path / "run"
  folder.mkdir()
  (folder / "eval_results.txt").write_text(
      "eval_accuracy = 0.5\neval_loss = 0.7\nglobal_step = 4\n")
  log = folder / "run_classifier.log"
  log.write_text("Parameters: 66 trained of 1,000 total (6.60%)\n")
  row = sweeps.finished_row(run, str(folder), str(log))
  assert row["train_seconds"] == ""
  run_folder.TrainingClock(str(folder)).record(12.345)
  row = sweeps.finished_row(run, str(folder), str(log))
  assert (row["train_seconds"], row["trained_parameters"]) == ("12.3", "66")


def test_a_table_of_an_older_sweep_is_refused_not_continued(tmp_path,
                                                           sweep_inputs):
  results = str(tmp_path / "sweep.csv")
  row = finished_row(sweep_records.Context(sweep_inputs))
  sweeps.write_results(results, [row], columns=[
      c for c in sweeps.COLUMNS if c not in sweep_records.CONTEXT_COLUMNS])
  with pytest.raises(errors.InputError, match="written by an older sweep.py"):
    sweeps.run_sweep(grid(), sweep_inputs, results)
  assert not os.path.exists(sweep_inputs["work_dir"])


def test_a_run_is_one_row_however_often_a_table_lists_it(sweep_inputs):
  context = sweep_records.Context(sweep_inputs)
  row = finished_row(context)
  newer = dict(row, primary_value="0.75")
  other = finished_row(context, run_id="another")
  merged = sweep_records.merge_rows([row, other, row], [newer])
  assert merged == [newer, other]


def read_log(folder):
  with open(os.path.join(folder, "run_classifier.log")) as f:
    return f.read()


def runners(sweep_inputs):
  """{run folder: pids of the sweeps that started its run_classifier.py}."""
  found = {}
  # Run folders only: the work folder also holds the sweep's TensorBoard
  # experiment file.
  for folder in glob.glob(os.path.join(sweep_inputs["work_dir"], "*", "")):
    folder = folder.rstrip(os.sep)
    if not os.path.exists(os.path.join(folder, "run_classifier.log")):
      continue  # claimed, its log not written yet: no runner to name
    found[folder] = [int(pid) for pid in
                     re.findall(r"^sweep.py \(pid (\d+)\) runs:",
                                read_log(folder), re.M)]
  return found


@pytest.mark.slow
def test_two_sweeps_12_s_apart_on_one_work_folder_run_each_run_once(
    tmp_path, sweep_inputs):
  results = str(tmp_path / "sweep.csv")
  command = sweep_command(sweep_inputs, results, epochs="1",
                          learning_rates="1e-2,1e-3", seeds="1,2,3")
  first = subprocess.Popen(command, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
  time.sleep(12)
  second = subprocess.Popen(command, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
  outputs = [p.communicate(timeout=600) for p in (first, second)]
  for (process, (_, stderr)) in zip((first, second), outputs):
    assert process.returncode == 0, stderr[-3000:]
  rows = sweeps.read_results(results)
  assert len(rows) == 6 and len({r["run_id"] for r in rows}) == 6
  started = runners(sweep_inputs)
  assert len(started) == 6
  assert all(len(pids) == 1 for pids in started.values()), started
  # Both did some of the work, and the table holds all of it.
  assert {pids[0] for pids in started.values()} == {first.pid, second.pid}
  summary = open(str(tmp_path / "sweep.md")).read()
  assert "6 finished runs." in summary


@pytest.mark.slow
def test_a_sweep_killed_at_20_random_points_records_each_run_once(
    tmp_path, sweep_inputs):
  """SIGINT to its process group (Ctrl-C), SIGTERM or SIGKILL at a random
  moment, then the same command again, 20 times: every run is recorded once,
  with the metrics of a sweep that nobody stopped."""
  flags = dict(methods="head,adapters", adapter_sizes="4", epochs="1",
               seeds="1,2")
  reference = str(tmp_path / "reference.csv")
  subprocess.run(sweep_command(dict(sweep_inputs,
                                    work_dir=str(tmp_path / "reference")),
                               reference, **flags),
                 check=True, capture_output=True, cwd=REPO_ROOT, timeout=600)
  expected = {r["run_id"]: json.loads(r["metrics"])
              for r in sweeps.read_results(reference)}
  assert len(expected) == 4
  rng = random.Random(20261204)
  kills = []
  round_number = 0

  def check_round(inputs, results):
    rows = sweeps.read_results(results)
    assert sorted(r["run_id"] for r in rows) == sorted(expected), kills
    for row in rows:
      assert json.loads(row["metrics"]) == expected[row["run_id"]], kills

  inputs = dict(sweep_inputs, work_dir=str(tmp_path / "round0"))
  results = str(tmp_path / "round0.csv")
  while len(kills) < 20:
    command = sweep_command(inputs, results, **flags)
    sweep = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True,
                             cwd=REPO_ROOT, start_new_session=True)
    delay = rng.uniform(0.2, 10.0)
    signal_number = rng.choice([signal.SIGINT, signal.SIGTERM,
                                signal.SIGKILL])
    try:
      sweep.wait(timeout=delay)
    except subprocess.TimeoutExpired:
      if signal_number == signal.SIGINT:
        os.killpg(sweep.pid, signal.SIGINT)  # what Ctrl-C does
      else:
        sweep.send_signal(signal_number)
      kills.append("%s at %.1f s" % (signal_number.name, delay))
    (_, stderr) = sweep.communicate(timeout=300)
    assert "Traceback" not in stderr, (kills, stderr[-3000:])
    if sweep.returncode == 0:  # the grid is done: check it, start another
      check_round(inputs, results)
      round_number += 1
      inputs = dict(sweep_inputs,
                    work_dir=str(tmp_path / ("round%d" % round_number)))
      results = str(tmp_path / ("round%d.csv" % round_number))
    elif sweep.returncode != -signal.SIGKILL:
      assert sweep.returncode == 1 and stderr.strip().splitlines()[-1]\
          .startswith("sweep.py: error: stopped by "), (kills, stderr)
  again = subprocess.run(sweep_command(inputs, results, **flags),
                         capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  check_round(inputs, results)
  deadline = time.time() + 120
  while time.time() < deadline and run_classifier_pids(str(tmp_path)):
    time.sleep(0.2)
  assert not run_classifier_pids(str(tmp_path)), "an orphan trains on"


# ---------------------------------------------------------------- workers


def test_a_worker_takes_its_index_from_the_flag_or_the_scheduler():
  from adapter_bert import sweep_workers
  index = sweep_workers.scheduler_index
  assert index(None, {}) == (None, None)
  assert index(None, {"SLURM_ARRAY_TASK_ID": "4"}) == (4, "SLURM_ARRAY_TASK_ID")
  assert index(None, {"JOB_COMPLETION_INDEX": "0"}) == (
      0, "JOB_COMPLETION_INDEX")
  assert index(2, {"SLURM_ARRAY_TASK_ID": "4"}) == (2, "--index")
  with pytest.raises(errors.InputError,
                     match=r"SLURM_ARRAY_TASK_ID='1-3': .* integer"):
    index(None, {"SLURM_ARRAY_TASK_ID": "1-3"})


def run_sweep_script(sweep_inputs, results, *extra, env=None, **changes):
  return subprocess.run(sweep_command(sweep_inputs, results, **changes) +
                        list(extra), capture_output=True, text=True,
                        cwd=REPO_ROOT, timeout=600,
                        env=dict(os.environ, **(env or {})))


@pytest.mark.slow
def test_list_prints_each_pending_run_and_an_index_runs_that_one(
    tmp_path, sweep_inputs):
  results = str(tmp_path / "sweep.csv")
  flags = dict(epochs="1", learning_rates="1e-2,1e-3")
  # --parallel (here with its value apart) shares this machine's cores among
  # runs at once; a listed command runs alone, so it is left out.
  listed = run_sweep_script(sweep_inputs, results, "--list", "--parallel",
                            "2", **flags)
  assert listed.returncode == 0, listed.stderr[-2000:]
  commands = listed.stdout.strip().splitlines()
  assert [c.rsplit(" ", 1)[1] for c in commands] == [
      "--index=%d" % i for i in range(4)]
  assert all(" --worker " in c and "--list" not in c for c in commands)
  assert not any("--parallel" in c or " 2 " in c for c in commands)
  shared = run_sweep_script(sweep_inputs, results, "--worker", "--index=0",
                            "--parallel=2", **flags)
  assert shared.returncode == 1
  assert shared.stderr.strip().splitlines()[-1] == (
      "sweep.py: error: --parallel=2: a worker runs one run at a time with "
      "every core; start more workers instead")
  # A scheduler's index (a Kubernetes indexed Job's) runs that run alone.
  ran = run_sweep_script(sweep_inputs, results, "--worker",
                         env={"JOB_COMPLETION_INDEX": "2"}, **flags)
  assert ran.returncode == 0, ran.stderr[-2000:]
  assert "worker of run 2 (JOB_COMPLETION_INDEX)" in ran.stdout
  rows = sweeps.read_results(results)
  expected = sweeps.run_id(sweeps.expand_grid(
      {"tasks": ["SST-2"], "methods": ["head"], "adapter_sizes": ["64"],
       "learning_rates": ["1e-2", "1e-3"], "epochs": ["1"],
       "init_scales": ["1e-3"], "seeds": ["1", "2"]})[2])
  assert [r["run_id"] for r in rows] == [expected]
  # The printed command, as a scheduler would run it, the same way.
  listed_again = run_sweep_script(sweep_inputs, results, "--list", **flags)
  assert listed_again.stdout.strip().splitlines() == [
      c for c in commands if not c.endswith("--index=2")]
  printed = subprocess.run(commands[0], shell=True, capture_output=True,
                           text=True, timeout=600)
  assert printed.returncode == 0, printed.stderr[-2000:]
  assert len(sweeps.read_results(results)) == 2
  wrong = run_sweep_script(sweep_inputs, results, "--worker", "--index=4",
                           **flags)
  assert wrong.returncode == 1
  assert wrong.stderr.strip().splitlines()[-1] == (
      "sweep.py: error: --index=4: the grid has 4 runs (0-3)")


@pytest.mark.slow
def test_a_run_flag_reaches_every_run_and_its_table(tmp_path, sweep_inputs):
  results = str(tmp_path / "sweep.csv")
  ran = run_sweep_script(sweep_inputs, results, "--run_flag",
                         "--adam_bias_correction", epochs="1", seeds="1")
  assert ran.returncode == 0, ran.stderr[-2000:]
  (row,) = sweeps.read_results(results)
  assert row["run_flags"] == "--adam_bias_correction=true"
  (folder,) = glob.glob(os.path.join(sweep_inputs["work_dir"], "*-c*", ""))
  assert folder.rstrip(os.sep).endswith("-c" + row["context_id"])
  assert run_folder.read_manifest(folder)["settings"][
      "adam_bias_correction"] is True
  with open(sweep_summary.summary_path(results)) as f:
    assert "Every run also had: `--adam_bias_correction=true`." in f.read()
  refused = run_sweep_script(sweep_inputs, results,
                             "--run_flag=--learning_rate=1", epochs="1")
  assert refused.returncode == 1
  assert refused.stderr.strip().splitlines()[-1] == (
      "sweep.py: error: --run_flag=--learning_rate=1: the sweep sets "
      "--learning_rate itself (from its grid or its own flags)")


@pytest.mark.slow
def test_three_workers_one_killed_finish_the_grid_running_each_run_once(
    tmp_path, sweep_inputs):
  results = str(tmp_path / "sweep.csv")
  command = sweep_command(sweep_inputs, results, epochs="60",
                          learning_rates="1e-2,1e-3", seeds="1,2,3") + [
                              "--worker"]
  workers = [subprocess.Popen(command, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              cwd=REPO_ROOT) for _ in range(3)]
  deadline = time.time() + 300
  victim = None
  # Kill (SIGKILL) the worker of the first run that has saved a checkpoint.
  while victim is None and time.time() < deadline:
    for (folder, pids) in runners(sweep_inputs).items():
      if pids and glob.glob(os.path.join(folder, "model.ckpt-*.index")):
        victim = (folder, pids[0])
        break
    time.sleep(0.1)
  assert victim, "no run saved a checkpoint"
  killed = [w for w in workers if w.pid == victim[1]][0]
  killed.kill()
  outputs = {w.pid: w.communicate(timeout=600) for w in workers}
  assert killed.returncode == -signal.SIGKILL
  for worker in workers:
    if worker is not killed:
      assert worker.returncode == 0, outputs[worker.pid][1][-3000:]
  rows = sweeps.read_results(results)
  assert len(rows) == 6 and len({r["run_id"] for r in rows}) == 6
  started = runners(sweep_inputs)
  assert len(started) == 6
  for (folder, pids) in started.items():
    if folder == victim[0]:
      # Started by the killed worker, then taken over (resumed) once.
      assert len(pids) == 2 and pids[0] == killed.pid != pids[1], pids
      assert re.search(r"Resuming at step [1-9]\d* of", read_log(folder))
    else:
      assert len(pids) == 1, (folder, pids)
  assert not run_classifier_pids(sweep_inputs["work_dir"])


def test_a_run_folder_and_table_on_a_remote_file_system(tmp_path):
  """What a sweep reads and writes in a run folder goes through TF's file
  systems (ram:// here, gs:// on a cluster): the log (appended by each
  invocation), the eval results, the folder's size, the table."""
  import tensorflow.compat.v1 as tf
  from adapter_bert import fileio
  work_dir = "ram://sweep-%d" % os.getpid()
  folder = work_dir + "/SST-2-head-lr1e-2-ep1-seed1-cabc"
  tf.io.gfile.makedirs(folder)
  log_path = folder + "/run_classifier.log"
  for line in ("first invocation\n",
               "Parameters: 1,538 trained of 20,000 total\n"):
    with sweeps.run_log(log_path) as log:
      log.write(line)
  assert fileio.read_text(log_path) == (
      "first invocation\nParameters: 1,538 trained of 20,000 total\n")
  fileio.write_text(folder + "/eval_results.txt",
                    "eval_accuracy = 0.75\neval_loss = 0.5\nglobal_step = 4\n")
  run = sweeps.Run("SST-2", "head", "", "1e-2", "1", "", "1")
  row = sweeps.finished_row(run, folder, log_path)
  assert (row["trained_parameters"], row["total_parameters"]) == (
      "1538", "20000")
  assert json.loads(row["metrics"]) == {"eval_accuracy": 0.75, "eval_loss": 0.5}
  assert int(row["disk_bytes"]) == sum(
      tf.io.gfile.stat(folder + "/" + name).length
      for name in tf.io.gfile.listdir(folder)) > 0
  table = work_dir + "/sweep.csv"
  sweeps.write_results(table, [row])
  assert sweeps.read_results(table)[0]["run_id"] == row["run_id"]


def test_free_run_workers_are_refused_where_no_claim_is_atomic(
    tmp_path, sweep_inputs):
  from adapter_bert import sweep_workers
  remote = dict(sweep_inputs, work_dir="ram://sweep-%d" % os.getpid())
  message = assert_input_error(
      lambda: sweep_workers.run_worker(grid(), remote,
                                       str(tmp_path / "sweep.csv")),
      "--work_dir=ram://", "no claim on a run is atomic there")
  assert "--index" in message


def defined_flags(script):
  """The flag names a script of scripts/ defines."""
  with open(os.path.join(REPO_ROOT, "scripts", script)) as f:
    return set(re.findall(r'DEFINE_\w+\(\s*"(\w+)"', f.read()))


def run_glue_table(tmp_path, **env):
  """results/glue_table.sh with a stand-in python that records each command
  line it is given: (sweep.py's argument lists, plot_results.py's)."""
  log = tmp_path / "commands.log"
  if log.exists():
    log.unlink()
  fake = tmp_path / "python"
  fake.write_text('#!/bin/sh\necho "$*" >> %s\n' % log)
  fake.chmod(0o755)
  subprocess.run(["bash", "results/glue_table.sh"], cwd=REPO_ROOT, check=True,
                 env=dict(os.environ, PY=str(fake), **env))
  commands = [line.split() for line in log.read_text().splitlines()]
  return ([c[1:] for c in commands if c[0] == "scripts/sweep.py"],
          [c[1:] for c in commands if c[0] == "scripts/plot_results.py"])


def test_the_glue_table_script_runs_its_phases_in_order_and_draws(tmp_path):
  out = tmp_path / "out"
  out.mkdir()
  (sweeps_run, draws) = run_glue_table(tmp_path, OUT=str(out),
                                       WORK_DIR=str(tmp_path / "work"),
                                       PARALLEL="3")
  training = [c for c in sweeps_run if "--ablation_results" not in " ".join(c)]
  assert all("--parallel=3" in c for c in training)
  for (script, commands) in (("sweep.py", sweeps_run),
                             ("plot_results.py", draws)):
    for command in commands:
      names = {a[2:].partition("=")[0] for a in command}
      assert names <= defined_flags(script), (script, command)
  results = "--results=%s/glue.csv" % out
  assert all(results in c for c in sweeps_run + draws)
  # One drawing per phase, the glue_ pictures beside sweep.csv's.
  assert len(draws) == 5
  assert all("--file_prefix=glue_" in c and "--output_dir=%s" % out in c
             for c in draws)
  assert not any(a.startswith("--ablation_results") for c in draws for a in c)
  # The pilot: seed 1, 3 epochs, the informative tasks first, RTE last.
  tasks = []
  for command in sweeps_run:
    if "--epochs=3" in command:
      assert "--seeds=1" in command
      task = [a for a in command if a.startswith("--tasks=")][0]
      if task not in tasks:
        tasks.append(task)
  assert tasks == ["--tasks=MRPC", "--tasks=STS-B", "--tasks=CoLA",
                   "--tasks=RTE"]
  # Each kind of method its learning rates: a whole layer moves at 3e-5.
  for command in sweeps_run:
    if "--epochs=3" in command:
      rates = [a for a in command if a.startswith("--learning_rates=")]
      assert rates == (["--learning_rates=3e-5,3e-4"] if "--methods=full,"
                       "top_layers:2" in command else
                       ["--learning_rates=3e-4,1e-3,3e-3"]), command
  # SST-2 only in phase 4, one epoch, three seeds.
  sst2 = [c for c in sweeps_run if "--tasks=SST-2" in c]
  assert sst2 and all("--epochs=1" in c and "--seeds=1,2,3" in c
                      for c in sst2)
  # Phase 5's ablation writes glue_ablation.csv, which the next drawing reads.
  (out / "glue_ablation.csv").write_text("run_id\n")
  (ablation, draws) = run_glue_table(tmp_path, OUT=str(out), PHASES="5")
  assert ["--ablation_results=%s/glue_ablation.csv" % out in c
          for c in ablation] == [True]
  assert all("--ablation_results=%s/glue_ablation.csv" % out in c
             for c in draws[-1:])


@pytest.mark.parametrize("parallel,cores,threads", [
    (1, 2, 0), (0, 2, 0), (2, 2, 1), (3, 2, 1), (2, 16, 8), (4, 18, 4)])
def test_parallel_runs_share_the_cores(parallel, cores, threads):
  assert sweeps.threads_per_run(parallel, cores) == threads


def test_a_run_of_several_at_once_gets_its_share_of_threads(sweep_inputs):
  run = sweeps.expand_grid(grid())[0]
  alone = sweeps.run_command(run, "/tmp/x", sweep_inputs)
  assert not [a for a in alone if "parallelism_threads" in a]
  shared = sweeps.run_command(run, "/tmp/x",
                              dict(sweep_inputs, threads_per_run=1))
  assert sorted(set(shared) - set(alone)) == [
      "--inter_op_parallelism_threads=1", "--intra_op_parallelism_threads=1"]


@pytest.mark.slow
def test_runs_at_once_give_the_table_of_runs_one_by_one(tmp_path,
                                                        sweep_inputs):
  """--parallel=2: both runs at once, one thread each, and the numbers of
  the same grid run one at a time (the thread count is not a setting)."""
  one_grid = grid(methods=["adapters"])
  alone = sweeps.run_sweep(one_grid, sweep_inputs,
                           str(tmp_path / "alone.csv"))
  shared_inputs = dict(sweep_inputs, work_dir=str(tmp_path / "shared_runs"),
                       threads_per_run=sweeps.threads_per_run(2, cores=2))
  shared = sweeps.run_sweep(one_grid, shared_inputs,
                            str(tmp_path / "shared.csv"), parallel=2)
  assert sorted(r["run_id"] for r in shared) == sorted(
      r["run_id"] for r in alone)
  spans = []
  for run in sweeps.expand_grid(one_grid):
    (folder_alone, folder) = [sweeps.folder_of(
        run, inputs, sweep_records.Context(inputs))
                              for inputs in (sweep_inputs, shared_inputs)]
    # The eval loss too: the table's accuracy alone would hide a change.
    (results_alone, results) = [sweeps.read_eval_results(
        os.path.join(f, "eval_results.txt")) for f in (folder_alone, folder)]
    assert "eval_loss" in results
    assert results == pytest.approx(results_alone, abs=1e-5)
    with open(os.path.join(folder, "run_classifier.log")) as f:
      log = f.read()
    assert "--intra_op_parallelism_threads=1" in log.splitlines()[0]
    stamps = re.findall(r"^(\d\d):(\d\d):(\d\d) ", log, re.M)
    seconds = [3600 * int(h) + 60 * int(m) + int(s) for (h, m, s) in stamps]
    spans.append((min(seconds), max(seconds)))
  # At once: each started before the other ended.
  assert spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]
