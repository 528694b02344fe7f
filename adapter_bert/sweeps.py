# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A hyper-parameter sweep of run_classifier.py: the grid and its runs.

The grid is tasks x methods x adapter sizes x learning rates x epochs x init
scales x seeds, from flags or a small JSON config file (same keys as the
flags). Every run is `run_classifier.py --do_train --do_eval` in a directory
of its own under --work_dir. A finished run is one row of --results (CSV) and
is never run again; a run that was killed resumes from its last checkpoint.
After every finished run the summary beside the table is rewritten
(`sweep_summary`: the selected settings, seed statistics, paired
differences); `sweep_records` keeps the runs' state, `sweep_workers` runs
the grid on several machines, `sweep_ablation` switches trained adapters
off layer by layer.

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

import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert import run_folder
from adapter_bert import sweep_hparams
from adapter_bert import sweep_records
from adapter_bert import sweep_summary

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
      run_classifier.py's, a method's option (those go in the method's
      spec), set by the sweep itself, or given twice.
  """
  owned = sweep_owned_flags()
  axes = {option for name in methods.names()
          for option in methods.get(name).grid_options.values()}
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
    if name in methods.all_options() and name not in axes:
      example = next(m for m in methods.names()
                     if methods.get(m).option(name))
      raise errors.InputError(
          "%s: --%s is a method's option; give it in the method's spec "
          "(--methods=%s:%s=...)" % (where, name, example, name))
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


# ---------------------------------------------------------------- the job


@contextlib.contextmanager
def stop_on_signals(children, jobs=()):
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
    sweep_summary.write_summary(results_path, rows, command,
                                options["glue_dir"])
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
    with stop_on_signals(children, jobs):
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
    (runs, left_out) = sweep_summary.runs_at_selected(
        runs, rows, grid.get("at_selected_keeps", ()))
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
      (`sweep_summary.runs_at_selected`): the seeds phase after a pilot.

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
