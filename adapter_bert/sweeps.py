# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A hyper-parameter sweep of run_classifier.py, resumable, with its summary.

The grid is tasks x methods x adapter sizes x learning rates x epochs x init
scales x seeds, from flags or a small JSON config file (same keys as the
flags). Every run is `run_classifier.py --do_train --do_eval` in a directory
of its own under --work_dir. A finished run is one row of --results (CSV) and
is never run again; a run that was killed resumes from its last checkpoint.
The summary (Markdown, beside the CSV) picks, as Houlsby et al. (2019) do,
the best setting per (task, method, size) on dev, by the mean over seeds of
the task's primary metric, and reports the mean, standard deviation and a
bootstrap 95% interval over seeds, and every method against the registry's
reference method (plain fine-tuning) as a paired difference per task (same
seeds).

  python scripts/sweep.py --tasks=MRPC,RTE --methods=adapters,full \\
      --adapter_sizes=8,64 --learning_rates=3e-4,1e-3 --seeds=1,2,3 \\
      --bert_dir=.cache/assets/all-MiniLM-L6-v2 --glue_dir=../shared/glue \\
      --results=results/sweep.csv

Methods are run_classifier.py's --tuning_mode values, optionally with a
suffix the method declares (`adapter_bert.methods.parse_spec`): a variant
("adapters:noln" is --train_layernorm=false) or a number ("top_layers:2" is
--tune_top_layers=2). The adapter-size and init-scale axes apply to the
methods that declare them (`TuningMethod.grid_options`).
"""

import collections
from concurrent import futures
import contextlib
import csv
import ctypes
import ctypes.util
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert import run_folder
from adapter_bert import sweep_hparams
from adapter_bert import sweep_records
from adapter_bert.methods import base

# Where run_classifier.py is: each run is one of its processes.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The name progress lines start with: the command line's.
PROGRAM = "sweep.py"

GRID_FLAGS = ("tasks", "methods", "adapter_sizes", "learning_rates",
              "epochs", "init_scales", "seeds")

# Columns of the results table.
COLUMNS = ("run_id", "task", "method", "adapter_size", "learning_rate",
           "epochs", "init_scale", "seed", "trained_parameters",
           "total_parameters", "trained_percent", "metrics", "primary_metric",
           "primary_value", "train_seconds", "disk_bytes", "finished_utc"
          ) + sweep_records.CONTEXT_COLUMNS

Run = collections.namedtuple(
    "Run", ["task", "method", "adapter_size", "learning_rate", "epochs",
            "init_scale", "seed"])


# ---------------------------------------------------------------- the grid


# The grid's method axes, by the Run field they fill.
AXES = {"adapter_size": "adapter_sizes", "init_scale": "init_scales"}


def _flag_value(value):
  return ("true" if value else "false") if isinstance(value, bool) else value


def method_flags(method):
  """run_classifier.py flags of a method spec ("top_layers:2", ...)."""
  try:
    (name, options) = methods.parse_spec(method)
  except ValueError as e:
    raise errors.InputError("--methods: %s" % e)
  result = {"tuning_mode": name}
  result.update({k: _flag_value(v) for (k, v) in options.items()})
  return result


def axis_option(method, axis):
  """The run_classifier.py flag a grid axis ("adapter_sizes") sets for a
  method spec, or None where the axis does not apply to it."""
  cls = methods.get(method.partition(":")[0])
  return cls.grid_options.get(axis)


def method_is_reference(method):
  """Whether a spec is the registry's reference method with its defaults."""
  return method == methods.reference().name


def adds_switchable_parts(method):
  """Whether a spec's method, at its defaults, builds parts of its own that
  --ablate_adapters can switch off per layer."""
  (name, options) = methods.parse_spec(method)
  try:
    return methods.build(name, options, num_layers=None).adds_anything
  except ValueError:  # needs the model (top_layers): adds nothing anyway
    return False


def expand_grid(grid):
  """Every run of the grid, in a stable order; sizes only where used."""
  runs = []
  for task in grid["tasks"]:
    for method in grid["methods"]:
      method_flags(method)  # refuses bad specs before anything runs
      sizes = (grid["adapter_sizes"] if axis_option(method, "adapter_sizes")
               else [""])
      scales = (grid["init_scales"] if axis_option(method, "init_scales")
                else [""])
      for size in sizes:
        for lr in grid["learning_rates"]:
          for epochs in grid["epochs"]:
            for scale in scales:
              for seed in grid["seeds"]:
                runs.append(Run(task, method, str(size), str(lr),
                                str(epochs), str(scale), str(seed)))
  return runs


def run_id(run):
  parts = [run.task, run.method.replace(":", "-")]
  if run.adapter_size:
    parts.append("m" + run.adapter_size)
  parts += ["lr" + run.learning_rate, "ep" + run.epochs]
  if run.init_scale:
    parts.append("init" + run.init_scale)
  parts.append("seed" + run.seed)
  return re.sub(r"[^A-Za-z0-9_.+-]", "_", "-".join(parts))


def read_grid_config(path):
  """A JSON grid config: {grid flag: [values]}, values as strings.

  Raises:
    InputError: a key that is not one of GRID_FLAGS.
  """
  where = "--config=%s" % path
  try:
    with open(path, encoding="utf-8") as f:
      config = json.load(f)
  except (OSError, UnicodeDecodeError) as e:
    raise errors.InputError("cannot read it (%s)" % errors.one_line(e),
                            where=where)
  except ValueError as e:
    raise errors.InputError("not JSON (%s)" % e, where=where)
  if not isinstance(config, dict):
    raise errors.InputError("must be a JSON object {grid flag: [values]}",
                            where=where)
  unknown = sorted(set(config) - set(GRID_FLAGS))
  if unknown:
    raise errors.InputError("unknown keys %s (known: %s)" % (
        ", ".join(unknown), ", ".join(GRID_FLAGS)), where=where)
  grid = {}
  for (name, values) in config.items():
    # "seeds": "12" would otherwise be the seeds 1 and 2.
    if not isinstance(values, list) or not values or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool)
        for v in values):
      raise errors.InputError(
          "%r must be a non-empty list of numbers or strings, e.g. %r: [1, "
          "2, 3]; got %s" % (name, name, json.dumps(values)), where=where)
    grid[name] = [str(v) for v in values]
  return grid


# ---------------------------------------------------------------- one run


def threads_per_run(parallel, cores=None):
  """The threads each of `parallel` runs at once gets: the machine's cores
  shared out (at least 1), or 0 (TensorFlow's choice, every core) for one
  run at a time. Without this each run would take every core: `parallel`
  times too many threads, fighting."""
  if parallel <= 1:
    return 0
  return max(1, (cores or os.cpu_count() or 1) // parallel)


def run_command(run, output_dir, options, **overrides):
  """The run_classifier.py command line of one run (flags in `overrides`
  replace or add to the run's)."""
  bert = options["bert_dir"]
  args = {
      "task_name": run.task, "do_train": "true", "do_eval": "true",
      "data_dir": os.path.join(options["glue_dir"], run.task),
      "vocab_file": os.path.join(bert, "vocab.txt"),
      "bert_config_file": os.path.join(bert, "bert_config.json"),
      "init_checkpoint": os.path.join(bert, "bert_model.ckpt"),
      "max_seq_length": options["max_seq_length"],
      "train_batch_size": options["train_batch_size"],
      "eval_batch_size": options["eval_batch_size"],
      "learning_rate": run.learning_rate, "num_train_epochs": run.epochs,
      "seed": run.seed, "output_dir": output_dir,
      # Not run_classifier.py's default (auto): workers on machines with
      # and without native bfloat16 must not fill one table with two
      # precisions.
      "precision": "float32",
  }
  if options.get("threads_per_run"):
    args["intra_op_parallelism_threads"] = options["threads_per_run"]
    args["inter_op_parallelism_threads"] = options["threads_per_run"]
  args.update(options.get("run_flags") or {})
  args.update(method_flags(run.method))
  for (field, axis) in AXES.items():
    if getattr(run, field):
      args[axis_option(run.method, axis)] = getattr(run, field)
  args.update(overrides)
  return [sys.executable, os.path.join(REPO_ROOT, "run_classifier.py")] + [
      "--%s=%s" % item for item in sorted(args.items())]


def sweep_owned_flags():
  """The run_classifier.py flags a sweep sets itself, from its grid, its
  own flags or its machine: what --run_flag may not set."""
  sample = Run("MRPC", methods.names()[0], "1", "1", "1", "1", "1")
  options = {"bert_dir": "", "glue_dir": "", "max_seq_length": 1,
             "train_batch_size": 1, "eval_batch_size": 1,
             "threads_per_run": 1}
  owned = {argument[2:].split("=", 1)[0]
           for argument in run_command(sample, "", options)[2:]}
  return owned | set(methods.all_options())


def parse_run_flags(arguments, known):
  """{name: value} of --run_flag arguments: run_classifier.py flags every
  run of the sweep shares ("--name=value"; a boolean also as "--name" or
  "--noname"), booleans spelled "true"/"false".

  Args:
    arguments: the --run_flag values, e.g. ["--adam_bias_correction"].
    known: {name: absl type ("bool", "float", ...)} of run_classifier.py's
      flags.

  Raises:
    InputError: naming the --run_flag that is not a flag, not one of
      run_classifier.py's, set by the sweep itself, or given twice.
  """
  owned = sweep_owned_flags()
  result = {}
  for argument in arguments:
    where = "--run_flag=%s" % argument
    (name, has_value, value) = argument[2:].partition("=")
    if not argument.startswith("--") or not name:
      raise errors.InputError("%s: not a flag (--name=value)" % where)
    if not has_value and name.startswith("no") and (
        known.get(name[2:]) == "bool"):
      (name, value) = (name[2:], "false")
    elif not has_value and known.get(name) == "bool":
      value = "true"
    if name not in known:
      raise errors.InputError("%s: run_classifier.py has no flag --%s "
                              "(docs/flags.md lists them)" % (where, name))
    if name in owned:
      raise errors.InputError("%s: the sweep sets --%s itself (from its grid "
                              "or its own flags)" % (where, name))
    if name in result:
      raise errors.InputError("%s: --%s given twice" % (where, name))
    if not has_value and value == "":
      raise errors.InputError("%s: give its value (--%s=...)" % (where, name))
    if known[name] == "bool":
      spelled = {"true": "true", "1": "true", "false": "false", "0": "false"}
      if value.lower() not in spelled:
        raise errors.InputError("%s: a boolean is true or false" % where)
      value = spelled[value.lower()]
    result[name] = value
  return result


_PARAMETERS_RE = re.compile(
    r"Parameters: ([\d,]+) trained of ([\d,]+) total")


def read_eval_results(path):
  results = {}
  for line in fileio.read_text(path).splitlines():
    (key, _, value) = line.strip().partition(" = ")
    results[key] = float(value)
  return results


def folder_bytes(folder):
  """Bytes of every file under `folder`, on any TF file system."""
  total = 0
  for (root, _, files) in tf.io.gfile.walk(folder):
    total += sum(tf.io.gfile.stat(os.path.join(root, f)).length
                 for f in files)
  return total


class Stopped(Exception):
  """A run stopped (or never started) because the sweep was told to stop."""


def _die_with_parent(parent):
  """In the child, before exec: SIGTERM when the sweep dies, even by SIGKILL
  (Linux's PR_SET_PDEATHSIG), so no run trains on as an orphan; it saves
  its step and exits, as on any SIGTERM."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
  except (OSError, AttributeError):
    return  # not Linux: a killed sweep may leave its running child behind
  if os.getppid() != parent:
    os._exit(1)  # the sweep died before the signal was armed  # pylint: disable=protected-access


class Busy(Exception):
  """Another sweep holds the run's claim: it is running that run."""


class Children(object):
  """The sweep's running runs: a signal to the sweep stops them all."""

  def __init__(self):
    self.lock = threading.Lock()
    self.processes = set()
    self.signal_name = None

  def start(self, command, log, pass_fds=()):
    with self.lock:
      if self.signal_name:
        raise Stopped("not started")
      process = subprocess.Popen(command, stdout=log,
                                 stderr=subprocess.STDOUT,
                                 preexec_fn=functools.partial(
                                     _die_with_parent, os.getpid()),
                                 pass_fds=pass_fds)
      self.processes.add(process)
    return process

  def wait(self, process):
    try:
      return process.wait()
    finally:
      with self.lock:
        self.processes.discard(process)

  def stop(self, signal_name):
    """Tells every running run to save and stop (SIGTERM) and starts none."""
    with self.lock:
      self.signal_name = self.signal_name or signal_name
      for process in self.processes:
        if process.poll() is None:
          process.send_signal(signal.SIGTERM)


def folder_of(run, options, context):
  """The run's folder: its run id and the id of its context."""
  return sweep_records.run_folder(options["work_dir"], run_id(run),
                                  context.of(run.task)["context_id"])


def execute(run, options, children=None, context=None, wait=False):
  """Runs (or resumes) one run, unless its folder records it finished.

  Args:
    wait: where another sweep holds the run's claim, wait for it (then take
      its record, or run the run if it left none) instead of raising Busy.

  Returns:
    (its results row, whether this call ran it).

  Raises:
    Busy: another sweep is running it (and not `wait`).
    RuntimeError: the run failed.
    Stopped: the sweep was stopped before or during the run.
  """
  children = children or Children()
  context = context or sweep_records.Context(options)
  run_context = context.of(run.task)
  output_dir = folder_of(run, options, context)
  row = sweep_records.read_record(output_dir, run_context["context_id"])
  if row is not None:
    return (row, False)
  if wait:
    claim = sweep_records.wait_for(
        lambda: sweep_records.try_claim(output_dir),
        lambda: children.signal_name)
    if claim is None:
      raise Stopped("not started")
  else:
    claim = sweep_records.try_claim(output_dir)
    if claim is None:
      raise Busy(run_id(run))
  try:
    # Finished by another sweep while this one waited for the claim.
    row = sweep_records.read_record(output_dir, run_context["context_id"])
    if row is not None:
      return (row, False)
    command = run_command(run, output_dir, options)
    log_path = os.path.join(output_dir, "run_classifier.log")
    with run_log(log_path) as log:
      log.write("%s (pid %d) runs: %s\n" % (PROGRAM, os.getpid(),
                                            " ".join(command)))
      log.flush()
      # The run inherits the claim: a sweep killed now keeps its run claimed
      # until the run has saved its step and exited.
      returncode = children.wait(children.start(command, log,
                                                pass_fds=(claim.fileno(),)))
    if returncode != 0 and children.signal_name:
      raise Stopped("stopped")  # it saved its step: a rerun resumes it
    if returncode != 0:
      raise RuntimeError("%s failed (exit %d); see %s" % (
          run_id(run), returncode, log_path))
    row = finished_row(run, output_dir, log_path)
    row.update(run_context)
    sweep_hparams.write_run_session(
        output_dir, dict(run._asdict()), row["run_id"],
        json.loads(row["metrics"]), int(read_eval_results(os.path.join(
            output_dir, "eval_results.txt")).get("global_step", 0)))
    sweep_records.write_record(output_dir, dict(run._asdict()), run_context,
                               row, command)
    return (row, True)
  finally:
    claim.release()


@contextlib.contextmanager
def run_log(path):
  """The run's log, open for appending (a resume adds to it), as a local
  file the run's output can go to. On a remote file system (gs://) it is a
  local file whose text is appended to `path` when the block ends, however
  it ends."""
  if not fileio.is_url(path):
    with open(path, "a") as log:
      yield log
    return
  with tempfile.TemporaryFile("w+") as log:
    try:
      yield log
    finally:
      log.flush()
      log.seek(0)
      before = (fileio.read_text(path) if tf.io.gfile.exists(path) else "")
      fileio.write_text(path, before + log.read())


def finished_row(run, output_dir, log_path):
  """The results row of a run whose run_classifier.py ended well."""
  found = _PARAMETERS_RE.findall(fileio.read_text(log_path))
  trained, total = (int(x.replace(",", "")) for x in found[-1])
  results = read_eval_results(os.path.join(output_dir, "eval_results.txt"))
  # The task's metrics and the dev loss (ties in selection; TensorBoard).
  metric_values = {k: v for (k, v) in results.items()
                   if k.startswith("eval_")}
  primary = glue.get_task(run.task).primary_metric
  seconds = run_folder.training_seconds(output_dir)
  row = dict(run._asdict())
  row.update({
      "run_id": run_id(run), "trained_parameters": trained,
      "total_parameters": total,
      "trained_percent": "%.3f" % (100.0 * trained / total),
      "metrics": json.dumps(metric_values, sort_keys=True),
      "primary_metric": primary, "primary_value": metric_values[primary],
      # The run folder sums its training over every invocation (a resume
      # that only evaluates adds nothing); empty where none recorded it,
      # never a believable 0.
      "train_seconds": "" if seconds is None else "%.1f" % seconds,
      "disk_bytes": folder_bytes(output_dir),
      "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  })
  # As read back from the table: every value a string.
  return {k: str(v) for (k, v) in row.items()}


# ---------------------------------------------------------------- the table


def read_results(path):
  """The rows of a CSV table written by this script ([] if none yet).

  Raises:
    InputError: naming the file and line, for a row cut short or longer
      than the header (a table cut mid-row by a full disk, or edited).
  """
  if not tf.io.gfile.exists(path):
    return []
  rows = []
  try:
    with io.StringIO(fileio.read_text(path), newline="") as f:
      reader = csv.DictReader(f)
      for row in reader:
        if None in row or None in row.values():
          raise errors.InputError(
              "%d fields where the header has %d: the table is damaged "
              "(cut short, or edited); restore it or remove that row" % (
                  len([v for v in row.values() if v is not None]) +
                  len(row.get(None, [])), len(reader.fieldnames)),
              where=path, line=reader.line_num)
        rows.append(row)
  except (OSError, tf.errors.OpError, UnicodeDecodeError, csv.Error) as e:
    raise errors.InputError("cannot read it (%s)" % errors.one_line(
        getattr(e, "message", None) or str(e)), where=path)
  return rows


def write_results(path, rows, columns=COLUMNS):
  """The whole table, atomically, in the grid's order of arrival."""
  out = io.StringIO()
  writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
  writer.writeheader()
  for row in rows:
    writer.writerow({k: row.get(k, "") for k in columns})
  fileio.write_text(path, out.getvalue())


def bootstrap_interval(values, num_samples=10000, seed=0):
  """95% percentile bootstrap interval of the mean of `values`."""
  values = np.asarray(values, dtype=np.float64)
  if len(values) < 2:
    return (float(values.mean()), float(values.mean()))
  rng = np.random.RandomState(seed)
  means = values[rng.randint(0, len(values), (num_samples, len(values)))]
  means = means.mean(axis=1)
  return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def summarize(rows):
  """Selection and statistics over seeds.

  Returns:
    dict with "selected": {(task, method, size): entry} where entry holds
    the setting (lr, epochs, init_scale), the per-seed values {seed: value},
    mean, std, interval, trained_percent; and "paired": {(task, size):
    {mean, interval, n}} for each method minus the reference method
    (full fine-tuning) over common seeds.
  """
  groups = collections.defaultdict(lambda: collections.defaultdict(dict))
  # What each run is ranked by: (GLUE's score of the task, dev loss).
  ranks = collections.defaultdict(lambda: collections.defaultdict(dict))
  info = {}
  for row in rows:
    cell = (row["task"], row["method"], row["adapter_size"])
    setting = (row["learning_rate"], row["epochs"], row["init_scale"])
    groups[cell][setting][row["seed"]] = float(row["primary_value"])
    ranks[cell][setting][row["seed"]] = selection_rank(row)
    info[cell] = (row["primary_metric"], float(row["trained_percent"]),
                  int(row["trained_parameters"]),
                  int(row["total_parameters"]))
  selected = {}
  for (cell, settings) in groups.items():
    best = max(sorted(settings), key=selection_key(ranks[cell]))
    values = settings[best]
    array = np.array([values[k] for k in sorted(values)])
    selected[cell] = {
        "learning_rate": best[0], "epochs": best[1], "init_scale": best[2],
        "values": dict(values), "ranks": dict(ranks[cell][best]),
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        "interval": bootstrap_interval(array),
        "metric": info[cell][0], "trained_percent": info[cell][1],
        "trained_parameters": info[cell][2],
        "total_parameters": info[cell][3],
    }
  # Adapters with the size chosen per task among those run (the paper's
  # "size tuned per task"), compared on the seeds every size's chosen
  # setting ran.
  tuned = {}
  for (task, method, size) in selected:
    if not size:
      continue
    sizes = {k[2]: selected[k]["ranks"] for k in selected
             if k[0] == task and k[1] == method}
    if len(sizes) > 1 and (task, method) not in tuned:
      best = max(sorted(sizes, key=int), key=selection_key(sizes))
      tuned[(task, method)] = dict(selected[(task, method, best)], size=best)
  paired = {}
  for ((task, method, size), entry) in selected.items():
    reference = selected.get((task, methods.reference().name, ""))
    if method_is_reference(method) or not reference:
      continue
    seeds = sorted(set(entry["values"]) & set(reference["values"]))
    if not seeds:
      continue
    differences = [entry["values"][s] - reference["values"][s] for s in seeds]
    paired[(task, method, size)] = {
        "mean": float(np.mean(differences)),
        "interval": bootstrap_interval(differences), "n": len(seeds)}
  return {"selected": selected, "paired": paired, "size_tuned": tuned}


def selection_rank(row):
  """What a row's setting is ranked by: (its score, its dev loss or None)."""
  metrics = json.loads(row.get("metrics") or "{}")
  return (selection_score(row, metrics), metrics.get("eval_loss"))


def selection_score(row, metrics=None):
  """What a row's setting is selected by: GLUE's score of its task, the mean
  of its `glue_score_metrics` (MRPC: F1 and accuracy; most tasks: the
  primary metric alone), from the row's metrics (parsed, or read from the
  row); the primary value where the row holds no such metrics (a hand-made
  table)."""
  names = glue.get_task(row["task"]).glue_score_metrics
  if metrics is None:
    metrics = json.loads(row.get("metrics") or "{}")
  if all(name in metrics for name in names):
    return float(np.mean([metrics[name] for name in names]))
  return float(row["primary_value"])


def selection_key(settings):
  """How the settings of one cell are ranked: by the mean over the seeds
  every setting ran (typically the pilot's), so that seeds added later to the
  chosen setting neither favour nor penalise it against settings that ran
  fewer; with no common seed, over each setting's own seeds. Ties go to the
  lower mean dev loss over the same seeds (settings that all answer the
  majority class tie exactly; the one that fits the dev set best is the one
  closest to learning, which a longer schedule can build on; a setting
  without recorded losses ranks below one with them), then to the setting
  with more seeds, then to the first in sorted order.

  Args:
    settings: {setting: {seed: (value, dev loss or None)}}.
  """
  common = set.intersection(*(set(v) for v in settings.values()))

  def key(setting):
    values = settings[setting]
    seeds = sorted(common) if common else sorted(values)
    loss = [values[k][1] for k in seeds]
    fit = (-float(np.mean(loss)) if None not in loss else -float("inf"))
    return (float(np.mean([values[k][0] for k in seeds])), fit, len(values))
  return key


# The grid flags --at_selected may keep as given, by the Run field they set.
SELECTED_FIELDS = {"learning_rates": "learning_rate", "epochs": "epochs",
                   "init_scales": "init_scale"}


def runs_at_selected(runs, rows, keep=()):
  """The grid's runs moved to each cell's selected setting.

  For every (task, method, size) of `runs`, the learning rate, epochs and
  init scale become those `summarize(rows)` selects, except the grid flags
  in `keep` (keys of SELECTED_FIELDS), which stay as the grid gives them
  (e.g. a longer schedule at the selected learning rate); the seeds stay.
  Cells with no finished run have nothing to select and are left out.

  Returns:
    (runs, cells left out).
  """
  selected = summarize(rows)["selected"]
  kept = {SELECTED_FIELDS[name] for name in keep}
  moved = []
  left_out = []
  for run in runs:
    cell = (run.task, run.method, run.adapter_size)
    entry = selected.get(cell)
    if entry is None:
      if cell not in left_out:
        left_out.append(cell)
      continue
    # A kept field stays as the grid gives it, unless the method has no
    # such axis (an init scale for full fine-tuning): then it is selected.
    run = run._replace(**{field: entry[field]
                          for field in SELECTED_FIELDS.values()
                          if field not in kept or not getattr(run, field)})
    if run not in moved:
      moved.append(run)
  return (moved, left_out)


def method_label(method, size):
  return "%s (m=%s)" % (method, size) if size else method


def majority_baselines(tasks, glue_dir):
  """{task: the dev primary metric of always answering the most frequent
  training label}, for the classification tasks whose files are there."""
  baselines = {}
  for (name, task, (train, dev)) in _labels_of(tasks, glue_dir, False,
                                               ("train", "dev")):
    majority = collections.Counter(train).most_common(1)[0][0]
    baselines[name] = float(task.metrics([majority] * len(dev), dev)[
        task.primary_metric])
  return baselines


def constant_answer_losses(tasks, glue_dir):
  """{task: the dev squared error of the best constant answer}, for the
  regression tasks whose files are there: the variance of the dev labels
  (any constant c scores that plus (mean - c)^2). A model whose dev loss
  is no lower explains none of the labels' variance (R^2 <= 0)."""
  return {name: float(np.var(np.asarray(dev, dtype=np.float64)))
          for (name, _, (dev,)) in _labels_of(tasks, glue_dir, True,
                                              ("dev",))}


def _labels_of(tasks, glue_dir, regression, splits):
  """(name, task, the label values of each of `splits`) for each of `tasks`
  that is (or is not, by `regression`) a regression task and whose files
  in `glue_dir` read; the others are left out."""
  for name in tasks:
    task = glue.get_task(name)
    data_dir = os.path.join(glue_dir, name)
    if task.is_regression != regression or not os.path.isdir(data_dir):
      continue
    readers = {"train": task.get_train_examples,
               "dev": task.get_dev_examples}
    try:
      labels = tuple(task.label_values(readers[split](data_dir))
                     for split in splits)
    except (errors.InputError, OSError, ValueError):
      continue
    yield (name, task, labels)


def summary_markdown(rows, summary, command, baselines=None,
                     constant_losses=None):
  """The summary as Markdown: the paper-style table, then the details.

  Args:
    baselines: (optional) {task: majority-class dev value}, a row of its own.
    constant_losses: (optional) {regression task: the dev squared error of
      the best constant answer}, for marking cells that learned nothing.
  """
  selected = summary["selected"]
  tasks = sorted({task for (task, _, _) in selected})
  lines = ["# Sweep summary", "",
           "%d finished runs. Made by:" % len(rows), "", "```shell",
           command, "```", "",
           "Dev %s of the best setting per (task, method, size), mean over "
           "seeds (number of seeds in brackets)." % "/".join(
               sorted({e["metric"] for e in selected.values()})), ""]
  composite = ["%s: the mean of %s" % (t, " and ".join(
      m.replace("eval_", "") for m in glue.get_task(t).glue_score_metrics))
                for t in tasks if len(glue.get_task(t).glue_score_metrics) > 1]
  if composite:
    lines += ["Settings are selected by GLUE's score of each task (%s), the "
              "metric alone elsewhere." % "; ".join(composite), ""]
  shared = sorted({row.get("run_flags") or "" for row in rows} - {""})
  if shared:
    lines += ["Every run also had: %s." % "; ".join(
        "`%s`" % flags for flags in shared), ""]
  lines += _main_table(summary, tasks, NoLearning(baselines or {},
                                                  constant_losses or {}))
  lines += _selected_table(selected)
  if summary["paired"]:
    lines += _paired_table(summary["paired"])
  return "\n".join(lines) + "\n"


def _main_table(summary, tasks, no_learning):
  """The paper-style table: a row per (method, size), one per method with
  the size tuned per task, and the majority class."""
  baselines = no_learning.majority
  selected = summary["selected"]
  cells = sorted({(method, size) for (_, method, size) in selected},
                 key=lambda c: (not method_is_reference(c[0]), c[0],
                                int(c[1] or 0)))
  header = ["method"] + tasks + ["average", "trained % (per task)",
                                 "parameters for %d tasks" % len(tasks)]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for (method, size) in cells:
    entries = [selected.get((t, method, size)) for t in tasks]
    values = ["%.4f (%d)%s" % (e["mean"], len(e["values"]),
                               no_learning.mark(e, t)) if e else "-"
              for (t, e) in zip(tasks, entries)]
    (average, share, total) = _row_totals(
        [e for e in entries if e], len(tasks),
        methods.get(method.partition(":")[0]).whole_model)
    lines.append("| " + " | ".join([method_label(method, size)] + values +
                                   [average, share, total]) + " |")
  for (method, _) in sorted({(m, None) for (_, m) in summary.get(
      "size_tuned", {})}):
    entries = [summary["size_tuned"].get((t, method)) for t in tasks]
    values = ["%.4f (m=%s, %d)%s" % (e["mean"], e["size"], len(e["values"]),
                                     no_learning.mark(e, t))
              if e else "-" for (t, e) in zip(tasks, entries)]
    (average, share, total) = _row_totals([e for e in entries if e],
                                          len(tasks), False)
    lines.append("| %s (m tuned per task) | %s | %s | %s | %s |" % (
        method, " | ".join(values), average, share, total))
  if baselines:
    values = ["%.4f" % baselines[t] if t in baselines else "-" for t in tasks]
    average = ("%.4f" % np.mean([baselines[t] for t in tasks])
               if all(t in baselines for t in tasks) else "-")
    lines.append("| majority class (no training) | %s | %s | 0 | 0 |" % (
        " | ".join(values), average))
  return lines + no_learning.footnotes(lines)


# Marks a cell whose every seed scored exactly what the majority class does.
MAJORITY_MARK = "\u2020"
# Marks a regression cell whose every seed's dev loss is no lower than the
# best constant answer's.
CONSTANT_MARK = "\u2021"


class NoLearning(collections.namedtuple("NoLearning",
                                        ["majority", "constant_losses"])):
  """Marks the cells whose every seed did no better than a constant answer:
  classification at exactly the majority class's value (MRPC's F1 of 0.8122
  is such a number: believable, and no learning), regression with a dev
  loss no lower than the best constant answer's (R^2 <= 0: STS-B's Spearman
  of such a model is near 0, or a weak ranking under a wrong scale)."""

  def mark(self, entry, task):
    """The mark of `entry` (a selected cell) on `task`, or ""."""
    if task in self.majority and all(
        abs(v - self.majority[task]) < 5e-5
        for v in entry["values"].values()):
      return MAJORITY_MARK
    losses = [loss for (_, loss) in entry.get("ranks", {}).values()]
    if task in self.constant_losses and losses and all(
        loss is not None and loss >= self.constant_losses[task]
        for loss in losses):
      return CONSTANT_MARK
    return ""

  def footnotes(self, lines):
    """The footnotes of the marks `lines` use."""
    notes = []
    if any(MAJORITY_MARK in line for line in lines):
      notes.append("%s: every seed's value is the majority class's (a model "
                   "that answers the most frequent label everywhere scores "
                   "it): no sign that the method learned the task at this "
                   "setting." % MAJORITY_MARK)
    if any(CONSTANT_MARK in line for line in lines):
      notes.append("%s: every seed's dev squared error is at least the dev "
                   "labels' variance, the error of the best constant answer "
                   "(R\u00b2 <= 0): the predictions explain none of the "
                   "scores' variance at this setting, whatever their rank "
                   "correlation." % CONSTANT_MARK)
    return [line for note in notes for line in ("", note)]


def _row_totals(present, num_tasks, whole_model):
  """A row's average, trained shares and the parameters stored for all its
  tasks: one backbone shared by all tasks plus each task's own parameters,
  or for a whole-model method (full fine-tuning) a model per task. The
  average and the total are "-" until the method has run on every task."""
  average = ("%.4f" % np.mean([e["mean"] for e in present])
             if len(present) == num_tasks else "-")
  share = "/".join("%.2f" % e["trained_percent"] for e in present)
  if len(present) < num_tasks:
    # A method that has not run on every task yet: no total, as no average.
    total = "-"
  elif whole_model:
    total = sum(e["total_parameters"] for e in present)
  else:
    backbone = present[0]["total_parameters"] - present[0][
        "trained_parameters"]
    total = backbone + sum(e["trained_parameters"] for e in present)
  return (average, share, total if total == "-" else "{:,}".format(total))


def _selected_table(selected):
  """Each cell's selected setting, its seeds' values and their statistics."""
  lines = ["", "## Selected settings, seeds and intervals", "",
           "| task | method | lr | epochs | init | seeds | mean | std | "
           "95% bootstrap interval |", "|---|---|---|---|---|---|---|---|---|"]
  for (task, method, size) in sorted(selected):
    e = selected[(task, method, size)]
    lines.append("| %s | %s | %s | %s | %s | %s | %.4f | %.4f | [%.4f, "
                 "%.4f] |" % (task, method_label(method, size),
                              e["learning_rate"], e["epochs"],
                              e["init_scale"] or "-",
                              ", ".join("%s: %.4f" % (k, v) for (k, v) in
                                        sorted(e["values"].items())),
                              e["mean"], e["std"], e["interval"][0],
                              e["interval"][1]))
  return lines


def _paired_table(paired):
  """Each method minus the reference method, paired by seed."""
  lines = ["", "## Each method minus %s, paired by seed" %
           methods.reference().name, "",
           "| task | method | seeds | mean difference | 95% bootstrap "
           "interval | inside seed noise? |", "|---|---|---|---|---|---|"]
  for (key, p) in sorted(paired.items()):
    (task, method, size) = key
    if p["n"] < 2:
      inside = "one seed: no interval yet"
    else:
      inside = ("yes" if p["interval"][0] <= 0.0 <= p["interval"][1]
                else "no")
    lines.append("| %s | %s | %d | %+.4f | [%+.4f, %+.4f] | %s |" % (
        task, method_label(method, size), p["n"], p["mean"],
        p["interval"][0], p["interval"][1], inside))
  if any(p["n"] < 5 for p in paired.values()):
    lines += ["", "With fewer than 5 seeds a bootstrap interval is rough: "
              "it cannot be wider than the seeds' own range."]
  return lines


def summary_path(results_path):
  return os.path.splitext(results_path)[0] + ".md"


def write_summary(results_path, rows, command, glue_dir):
  """The summary of `rows` beside `results_path`, with the majority-class
  row and the marks of cells that learned nothing for the tasks whose files
  are in `glue_dir`."""
  tasks = sorted({row["task"] for row in rows})
  fileio.write_text(summary_path(results_path), summary_markdown(
      rows, summarize(rows), command, majority_baselines(tasks, glue_dir),
      constant_answer_losses(tasks, glue_dir)))


# ---------------------------------------------------------------- ablation

# Columns of the ablation table: one row per (trained run, ablated span).
ABLATION_COLUMNS = ("run_id", "task", "method", "adapter_size", "seed",
                    "first_layer", "last_layer", "metrics", "primary_metric",
                    "primary_value", "context_id")


def span_name(first, last):
  """The --ablate_adapters value of a span, as its result file names it."""
  return str(first) if first == last else "%d-%d" % (first, last)


def ablation_row(run, first, last, metric_values, context_id):
  primary = glue.get_task(run.task).primary_metric
  return {"run_id": run_id(run), "task": run.task, "method": run.method,
          "adapter_size": run.adapter_size, "seed": run.seed,
          "first_layer": str(first), "last_layer": str(last),
          "metrics": json.dumps(metric_values, sort_keys=True),
          "primary_metric": primary, "primary_value": metric_values[primary],
          "context_id": context_id}


def run_ablation(grid, options, results_path, ablation_path,
                 at_selected=False, dry_run=False):
  """Evaluates every finished adapter run of `grid` with the adapters of each
  span of layers switched off (run_classifier.py
  --ablate_adapters=each_span: one process, graph and session per run; no
  retraining), as the paper's Figure 6. Resumable: a (run, span) with a row in
  `ablation_path` is not evaluated again. A row with empty layers is the run
  with every adapter on (its own dev result).

  Returns:
    the rows of the ablation table.
  """
  rows = read_results(results_path)
  context = sweep_records.Context(options)
  check_table(rows, context, results_path)
  finished = {(row["run_id"], row["context_id"]) for row in rows}
  runs = expand_grid(grid)
  if at_selected:
    (runs, _) = runs_at_selected(runs, rows)
  runs = [r for r in runs if adds_switchable_parts(r.method) and (
      run_id(r), context.of(r.task)["context_id"]) in finished]
  with open(os.path.join(options["bert_dir"], "bert_config.json")) as f:
    num_layers = int(json.load(f)["num_hidden_layers"])
  table = read_results(ablation_path)
  if any(not r.get("context_id") for r in table):
    raise errors.InputError(
        "--ablation_results=%s was written by an older sweep.py, which did "
        "not record its runs' context; move it aside or give another "
        "--ablation_results" % ablation_path)
  done = {(r["run_id"], r["context_id"], r["first_layer"], r["last_layer"])
          for r in table}
  print("%s: ablation of %d trained runs x %d spans of %d layers into %s" % (
      PROGRAM, len(runs), len(base.layer_spans(num_layers)), num_layers,
      ablation_path), flush=True)
  children = Children()
  evaluated = []

  def record(row):
    """After every span: a stopped ablation keeps what it evaluated."""
    evaluated.append(row)
    table.append(row)
    write_results(ablation_path, table, ABLATION_COLUMNS)
    fileio.write_text(summary_path(ablation_path),
                      ablation_markdown(table, num_layers))

  with _stop_on_signals(children):
    for run in runs:
      if children.signal_name:
        break
      context_id = context.of(run.task)["context_id"]
      output_dir = folder_of(run, options, context)
      pending = [span for span in [("", "")] + base.layer_spans(num_layers) if
                 (run_id(run), context_id, str(span[0]), str(span[1]))
                 not in done]
      if not pending:
        continue
      if dry_run:
        if any(first != "" for (first, _) in pending):
          print(" ".join(run_command(run, output_dir, options,
                                     do_train="false",
                                     ablate_adapters=base.EACH_SPAN)))
        continue
      try:
        _ablate_run(run, pending, output_dir, context_id, options, children,
                    record)
      except Stopped:
        break
  if children.signal_name:
    raise errors.InputError(
        "stopped by %s: %d spans evaluated and recorded; run the same "
        "command again to continue" % (children.signal_name, len(evaluated)))
  return table


def _ablate_run(run, spans, output_dir, context_id, options, children,
                record):
  """Evaluates `spans` ((first, last); ("", "") is every adapter on) of one
  finished run, under the run's claim, calling `record(row)` for each.

  Raises:
    Stopped: the sweep was told to stop.
  """
  claim = sweep_records.wait_for(lambda: sweep_records.try_claim(output_dir),
                                 lambda: children.signal_name)
  if claim is None:
    raise Stopped("not started")
  try:
    if not os.path.exists(os.path.join(output_dir, "checkpoint")):
      # Its row is there but its model is gone (another machine, a cleaned
      # /tmp): train it again; a seed gives the same model.
      print("%s: %s has no checkpoint in %s; training it again" % (
          PROGRAM, run_id(run), output_dir), flush=True)
      claim.release()
      claim = None
      fileio.remove_quietly(os.path.join(output_dir, sweep_records.RECORD))
      execute(run, options, children, wait=True)
      claim = sweep_records.wait_for(
          lambda: sweep_records.try_claim(output_dir),
          lambda: children.signal_name)
      if claim is None:
        raise Stopped("not started")
    if any(first != "" for (first, _) in spans):
      # Every span in one process, one graph and one session.
      command = run_command(run, output_dir, options, do_train="false",
                            ablate_adapters=base.EACH_SPAN)
      log_path = os.path.join(output_dir, "ablation.log")
      with open(log_path, "a") as log:
        returncode = children.wait(children.start(command, log))
      if returncode != 0 and children.signal_name:
        raise Stopped("stopped")
      if returncode != 0:
        raise errors.InputError("ablation of %s failed (exit %d); see %s" % (
            run_id(run), returncode, log_path))
    for (first, last) in spans:
      if first == "":
        # Every adapter on: the dev result of the model that is ablated.
        name = "eval_results.txt"
      else:
        name = "eval_results_ablated_%s.txt" % span_name(first, last)
      results = read_eval_results(os.path.join(output_dir, name))
      metric_values = {k: v for (k, v) in results.items()
                       if k.startswith("eval_") and k != "eval_loss"}
      row = ablation_row(run, first, last, metric_values, context_id)
      record(row)
      if first != "":
        print("%s ablated %s: %s = %.4f" % (
            run_id(run), span_name(first, last), row["primary_metric"],
            row["primary_value"]), flush=True)
  finally:
    if claim is not None:
      claim.release()


def ablation_markdown(table, num_layers):
  """One grid per trained run: first ablated layer x last ablated layer."""
  lines = ["# Adapter ablation", "",
           "Dev metric of a trained model with the adapters of layers "
           "first..last switched off at eval time (no retraining); "
           "`python scripts/sweep.py ... --ablation_results=...` made it.", ""]
  for run in sorted({r["run_id"] for r in table}):
    rows = [r for r in table if r["run_id"] == run]
    full = [r for r in rows if r["first_layer"] == ""]
    values = {(int(r["first_layer"]), int(r["last_layer"])):
              float(r["primary_value"]) for r in rows if r["first_layer"] != ""}
    lines += ["## %s" % run, "",
              "%s with every adapter on: %s" % (
                  rows[0]["primary_metric"],
                  "%.4f" % float(full[0]["primary_value"]) if full else "-"),
              "", "| first \\ last | " + " | ".join(
                  str(k) for k in range(num_layers)) + " |",
              "|" + "---|" * (num_layers + 1)]
    for first in range(num_layers):
      cells = ["%.4f" % values[(first, last)] if (first, last) in values
               else "" for last in range(num_layers)]
      lines.append("| %d | %s |" % (first, " | ".join(cells)))
    lines.append("")
  return "\n".join(lines)


# ---------------------------------------------------------------- the job


@contextlib.contextmanager
def _stop_on_signals(children, jobs=()):
  """SIGTERM or SIGINT: stop the running runs (they save), start no other.

  `jobs`: a list of futures, which may grow inside the block."""
  def handle(number, frame):  # pylint: disable=unused-argument
    children.stop(signal.Signals(number).name)
    for job in list(jobs):
      job.cancel()  # those not started yet

  previous = {number: signal.signal(number, handle)
              for number in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield
  finally:
    for (number, handler) in previous.items():
      signal.signal(number, handler)


def check_table(rows, context, results_path):
  """Refuses a table that holds runs of another context: another backbone,
  data, sequence length or batch size (a summary must not mix them), or of
  a sweep.py that did not record them.

  Raises:
    InputError: naming the table, a run and what differs.
  """
  for row in rows:
    if not row.get("context_id"):
      raise errors.InputError(
          "--results=%s was written by an older sweep.py, which did not "
          "record the backbone, data, sequence length and batch size of its "
          "runs: its rows cannot be continued; move it aside or give "
          "another --results" % results_path)
    try:
      current = context.of(row["task"])
    except errors.InputError:
      # That task's data is not under --glue_dir now: compare the rest.
      current = dict(context.of_backbone(), data_sha256=row["data_sha256"])
    found = sweep_records.differences(row, current)
    if found:
      raise errors.InputError(
          "--results=%s holds runs made with other settings (%s: %s): one "
          "table is one sweep's; give this command another --results" % (
              results_path, row["run_id"], "; ".join(found)))


def record_rows(results_path, new_rows, command, options):
  """Merges `new_rows` into the table and rewrites its summary and the work
  folder's TensorBoard experiment (`sweep_hparams`), as one step among every
  sweep writing that table. Returns the table's rows."""
  with sweep_records.table_lock(results_path):
    rows = sweep_records.merge_rows(read_results(results_path), new_rows)
    write_results(results_path, rows)
    write_summary(results_path, rows, command, options["glue_dir"])
    sweep_hparams.write_experiment(options["work_dir"], rows)
  return rows


def _run_pending(pending, options, context, parallel, children,
                 results_path, command):
  """Runs `pending` on `parallel` threads, recording each finished run in the
  table (unless `results_path` is None): first the runs no other sweep
  holds, then (waiting for their claims) those it does.

  Returns:
    (Counter of outcomes, the failures' messages).
  """
  failures = []
  outcomes = collections.Counter()
  jobs = []
  with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
    with _stop_on_signals(children, jobs):
      for wait in (False, True):
        batch = {pool.submit(execute, run, options, children, context,
                             wait): run for run in pending}
        jobs.extend(batch)
        pending = []
        for job in futures.as_completed(batch):
          try:
            (row, here) = job.result()
          except Busy:
            pending.append(batch[job])
            continue
          except (Stopped, futures.CancelledError) as e:
            outcomes[str(e) or "not started"] += 1
            continue
          except RuntimeError as e:
            failures.append(str(e))
            print("%s: %s" % (PROGRAM, e), flush=True)
            continue
          outcomes["finished" if here else "by another sweep"] += 1
          # After every run: a killed sweep loses no finished run, and the
          # summary is always that of the rows so far.
          if results_path:
            record_rows(results_path, [row], command, options)
          print("%s: %s = %.4f (%s%s)" % (
              row["run_id"], row["primary_metric"],
              float(row["primary_value"]),
              "%s s" % row["train_seconds"] if row["train_seconds"] else
              "training time not recorded",
              "" if here else ", run by another sweep"), flush=True)
        if pending and not children.signal_name:
          print("%s: %d runs are being run by another sweep; waiting for "
                "their records" % (PROGRAM, len(pending)), flush=True)
  return (outcomes, failures)


def planned_runs(grid, options, results_path, at_selected=False,
                 check_results_folder=True):
  """What a sweep of `grid` has to do, checked before any run.

  Returns:
    (the table's rows, the `sweep_records.Context`, every run of the grid
    in its stable order (with `at_selected`, at each cell's selected
    setting), the set of those runs the table records as finished).
  """
  rows = read_results(results_path)
  context = sweep_records.Context(options)
  runs = expand_grid(grid)
  for task in sorted({r.task for r in runs}):
    context.of(task)  # a missing backbone or data file: before any run
  check_table(rows, context, results_path)
  if check_results_folder:
    # Before the first run, not after it: the table and summary go there.
    try:
      fileio.check_writable_folder(os.path.dirname(results_path) or ".")
    except ValueError as e:
      raise errors.InputError("--results=%s: its folder cannot take the "
                              "table (%s)" % (results_path, e))
  done = {(row["run_id"], row["context_id"]) for row in rows}
  if at_selected:
    (runs, left_out) = runs_at_selected(runs, rows,
                                        grid.get("at_selected_keeps", ()))
    for cell in left_out:  # on stderr: --list's stdout is commands only
      print("%s: %s has no finished run to select a setting from; left out"
            % (PROGRAM, "/".join(c for c in cell if c)), file=sys.stderr,
            flush=True)
  finished = {run for run in runs
              if (run_id(run), context.of(run.task)["context_id"]) in done}
  return (rows, context, runs, finished)


def run_sweep(grid, options, results_path, parallel=1, dry_run=False,
              command="", at_selected=False):
  """Runs every run of `grid` that no run folder records as finished; the
  results table and its summary are derived from those records.

  Several sweeps may share one --work_dir and --results: each run is run by
  the sweep that claims it, and the others take its record.

  Args:
    at_selected: run the grid's seeds at each cell's selected setting only
      (`runs_at_selected`): the seeds phase after a pilot.

  Returns:
    the rows of the results table.
  """
  (rows, context, runs, finished) = planned_runs(
      grid, options, results_path, at_selected,
      check_results_folder=not dry_run)
  pending = [run for run in runs if run not in finished]
  print("%s: %d runs in the grid, %d of them finished, %d to run (%d rows "
        "in %s)" % (PROGRAM, len(runs), len(runs) - len(pending),
                    len(pending), len(rows), results_path), flush=True)
  if dry_run:
    for run in pending:
      print(" ".join(run_command(run, folder_of(run, options, context),
                                 options)))
    return rows
  return run_and_report(pending, options, context, parallel, results_path,
                         command)


def run_and_report(pending, options, context, parallel, results_path,
                   command):
  """Runs `pending` (`_run_pending`), recording each finished run in the
  table at `results_path` (None: in its folder only); raises InputError if
  it was stopped or a run failed; returns the table's rows."""
  children = Children()
  (outcomes, failures) = _run_pending(pending, options, context, parallel,
                                      children, results_path, command)
  if children.signal_name:
    raise errors.InputError(
        "stopped by %s: %d runs finished and recorded, %d stopped (each "
        "saved its step), %d not started; run the same command again to "
        "continue" % (children.signal_name, outcomes["finished"] +
                      outcomes["by another sweep"], outcomes["stopped"],
                      outcomes["not started"]))
  if failures:
    raise errors.InputError("%d runs failed, e.g. %s" % (len(failures),
                                                         failures[0]))
  return read_results(results_path) if results_path else []
