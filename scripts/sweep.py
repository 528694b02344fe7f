# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A hyper-parameter sweep of run_classifier.py, resumable, with its summary.

  python scripts/sweep.py --tasks=MRPC,RTE --methods=adapters,full \\
      --adapter_sizes=8,64 --learning_rates=3e-4,1e-3 --seeds=1,2,3 \\
      --bert_dir=.cache/assets/all-MiniLM-L6-v2 --glue_dir=../shared/glue \\
      --results=results/sweep.csv

The command line of `adapter_bert.sweeps` (the grid and its runs) and
`adapter_bert.sweep_summary` (the selection and the statistics). Methods are
run_classifier.py's --tuning_mode values, optionally with options after
colons: "top_layers:2" is --tuning_mode=top_layers --tune_top_layers=2,
"adapters:noln" is adapters with --train_layernorm=false, and
"head:train_pooler=true" sets any option of the method.
"""

import os
import shlex
import signal
import sys


def _stop_at_once(number, frame):  # pylint: disable=unused-argument
  """SIGINT or SIGTERM outside the runs (while Python, TensorFlow or the
  grid's hashes load): no traceback. What finished is in its folder."""
  sys.stderr.write("sweep.py: error: stopped by %s; what finished is "
                   "recorded; run the same command again to continue\n" %
                   signal.Signals(number).name)
  os._exit(1)  # pylint: disable=protected-access


# First: a Ctrl-C while imports run must not print their traceback. While
# runs run, adapter_bert.sweeps has its own handlers (they stop the runs).
signal.signal(signal.SIGINT, _stop_at_once)
signal.signal(signal.SIGTERM, _stop_at_once)

# `python scripts/<name>.py` puts scripts/ on sys.path, not the repository
# root that holds adapter_bert/ and modeling.py: add it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Before TensorFlow loads (adapter_bert.fileio and glue import it), even for
# --help: its start-up noise is hidden.
from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from adapter_bert import command_flags
from adapter_bert import errors
from adapter_bert import methods
from adapter_bert import sweep_ablation
from adapter_bert import sweep_summary
from adapter_bert import sweep_workers
from adapter_bert import sweeps

PROGRAM = "sweep.py"
FLAGS = flags.FLAGS


def define_flags():
  """This script's flags; defined only when it runs as a script, because
  run_classifier.py defines flags of the same names (max_seq_length...) and
  absl refuses a second definition in one process."""
  repo_root = sweeps.REPO_ROOT
  flags.DEFINE_string("config", None, "JSON file with any of the grid flags "
                      "below (lists as JSON lists); flags given on the command "
                      "line win.")
  flags.DEFINE_list("tasks", ["MRPC"], "GLUE tasks (folder names in "
                    "--glue_dir).")
  flags.DEFINE_list("methods", [methods.names()[0], methods.reference().name],
                    "Tuning methods: tuning_mode[:option...], see above "
                    "(%s). "
                    "Default: the registry's first and its reference." %
                    ", ".join(methods.names()))
  flags.DEFINE_list("adapter_sizes", ["64"], "Adapter sizes (methods with "
                    "adapters only).")
  flags.DEFINE_list("learning_rates", ["3e-4"], "Learning rates.")
  flags.DEFINE_list("epochs", ["3"], "Training epochs.")
  flags.DEFINE_list("init_scales", ["1e-3"], "Adapter init stddevs.")
  flags.DEFINE_list("seeds", ["1"], "Seeds.")
  flags.DEFINE_string("bert_dir", os.path.join(repo_root, ".cache", "assets",
                                               "all-MiniLM-L6-v2"),
                      "bert_config.json, vocab.txt and bert_model.ckpt.")
  flags.DEFINE_string("glue_dir", os.path.join(os.path.dirname(repo_root),
                                               "shared", "glue"),
                      "GLUE data, glue_data layout.")
  flags.DEFINE_string("work_dir", "/tmp/adapter_bert_sweep",
                      "Where each run's output_dir goes.")
  flags.DEFINE_string("results", "results/sweep.csv",
                      "The results table (CSV); the summary goes beside it "
                      "(.md).")
  flags.DEFINE_integer("parallel", 1, "Runs at once on this machine; each "
                       "then gets its share of the cores (--intra_op_"
                       "parallelism_threads and --inter_op_parallelism_"
                       "threads of run_classifier.py): on 2 cores, 2 runs of "
                       "1 thread train more examples a second than 1 run of "
                       "2. Not with --worker (one run at a time, every core); "
                       "left out of the commands --list prints.")
  flags.DEFINE_integer("max_seq_length", 128, "As run_classifier.py.")
  flags.DEFINE_integer("train_batch_size", 32, "As run_classifier.py.")
  flags.DEFINE_integer("eval_batch_size", 64, "As run_classifier.py.")
  flags.DEFINE_multi_string(
      "run_flag", [], "A run_classifier.py flag every run gets, e.g. "
      "--run_flag=--adam_bias_correction (repeat for more). Part of the "
      "runs' context: a table holds runs of one set of run flags, in its "
      "run_flags column. Not the flags the sweep sets itself (the grid's, "
      "the data's, the batch sizes, the precision).")
  flags.DEFINE_bool("summarize_only", False, "Only rewrite the summary from "
                    "--results.")
  flags.DEFINE_bool("dry_run", False, "Print the runs that would run.")
  flags.DEFINE_string("made_by", None, "The command the summary names as "
                      "its maker (default: this command line), e.g. the "
                      "script that runs every phase of a sweep.")
  flags.DEFINE_bool("at_selected", False, "Run the grid's seeds at each "
                    "(task, method, size)'s selected setting in --results "
                    "only (the seeds phase after a pilot); the grid's "
                    "learning rates, epochs and init scales are replaced by "
                    "the selected ones.")
  flags.DEFINE_bool("worker", False, "Be one of several workers on this "
                    "--work_dir (other machines too): run every run no "
                    "other worker holds, or, given an index (--index, "
                    "SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX), that run "
                    "of the grid alone. See docs/sweeps.md.")
  flags.DEFINE_integer("index", None, "With --worker: the grid's run to run "
                       "(0-based, in --list's order).")
  flags.DEFINE_bool("list", False, "Print one worker command per pending "
                    "run (for a scheduler) and exit.")
  flags.DEFINE_list("at_selected_keeps", [], "With --at_selected: grid "
                    "flags kept as given instead of selected (%s), e.g. "
                    "epochs: a longer schedule at each cell's selected "
                    "learning rate." % ", ".join(sweep_summary.SELECTED_FIELDS))
  flags.DEFINE_string("ablation_results", None, "Instead of training: "
                      "evaluate every finished adapter run of the grid with "
                      "the adapters of each span of layers switched off, "
                      "into this CSV (a Markdown grid goes beside it).")


def main(argv):
  del argv

  def job():
    """Runs the grid (or its ablation, or only the summary) the flags name."""
    grid = {name: list(FLAGS[name].value) for name in sweeps.GRID_FLAGS}
    if FLAGS.config:
      for (name, values) in sweeps.read_grid_config(FLAGS.config).items():
        if not FLAGS[name].present:
          grid[name] = values
    unknown = set(FLAGS.at_selected_keeps) - set(sweep_summary.SELECTED_FIELDS)
    if unknown:
      raise errors.InputError("--at_selected_keeps: %s is not one of %s" % (
          ", ".join(sorted(unknown)), ", ".join(sweep_summary.SELECTED_FIELDS)))
    grid["at_selected_keeps"] = list(FLAGS.at_selected_keeps)
    options = {"bert_dir": FLAGS.bert_dir, "glue_dir": FLAGS.glue_dir,
               "work_dir": FLAGS.work_dir,
               "max_seq_length": FLAGS.max_seq_length,
               "train_batch_size": FLAGS.train_batch_size,
               "eval_batch_size": FLAGS.eval_batch_size}
    if FLAGS.run_flag and not FLAGS.summarize_only:
      known = {flag.name: flag.type for flag in command_flags.own_flags(
          os.path.join(sweeps.REPO_ROOT, "run_classifier.py"))}
      options["run_flags"] = sweeps.parse_run_flags(FLAGS.run_flag, known)
    command = FLAGS.made_by or " ".join(
        ["python", "scripts/" + PROGRAM] + sys.argv[1:])
    if FLAGS.summarize_only:
      sweep_summary.write_summary(
          FLAGS.results, sweeps.read_results(FLAGS.results), command,
          FLAGS.glue_dir)
    elif FLAGS.list:
      for line in sweep_workers.pending_commands(
          grid, options, FLAGS.results, worker_command(), FLAGS.at_selected):
        print(line)
    elif FLAGS.worker or FLAGS.index is not None:
      if FLAGS.parallel > 1:
        raise errors.InputError(
            "--parallel=%d: a worker runs one run at a time with every core; "
            "start more workers instead" % FLAGS.parallel)
      (index, source) = sweep_workers.scheduler_index(FLAGS.index,
                                                      os.environ)
      sweep_workers.run_worker(grid, options, FLAGS.results, index, source,
                               command, FLAGS.at_selected)
    elif FLAGS.ablation_results:
      sweep_ablation.run_ablation(grid, options, FLAGS.results,
                                  FLAGS.ablation_results, FLAGS.at_selected,
                                  FLAGS.dry_run)
    else:
      # Only here do runs share this machine: a worker, or a listed command
      # that a scheduler starts, has its cores to itself.
      options["threads_per_run"] = sweeps.threads_per_run(FLAGS.parallel)
      sweeps.run_sweep(grid, options, FLAGS.results, FLAGS.parallel,
                       FLAGS.dry_run, command, FLAGS.at_selected)

  # The sweep's runs are subprocesses; a signal is theirs to handle.
  errors.run_program(PROGRAM, job, also=(ValueError, OSError),
                     on_signals=False)


def worker_command():
  """This command line as a worker's (--list and --parallel left out,
  --worker added), run from this folder: what --list prints for each run,
  plus its --index. A worker runs one run at a time with every core."""
  dropped = ("--list", "--nolist", "--worker", "--noworker", "--index",
             "--parallel")
  kept = []
  arguments = iter(sys.argv[1:])
  for argument in arguments:
    if argument in ("--index", "--parallel"):
      next(arguments, None)  # Its value, given as the next argument.
    elif argument.split("=", 1)[0] not in dropped:
      kept.append(argument)
  return "cd %s && %s" % (shlex.quote(os.getcwd()), " ".join(
      shlex.quote(a) for a in [sys.executable, os.path.abspath(__file__)] +
      kept + ["--worker"]))


def _exit_before_finalization(code):
  """Ends the process without Python's finalization. Finalization restores
  the default SIGTERM and SIGINT handlers, so a signal arriving while a
  finished sweep shuts down would kill it silently (-15, nothing on stderr)
  although its table is complete; a signal now is simply not acted on."""
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


if __name__ == "__main__":
  define_flags()
  try:
    app.run(main)
  except SystemExit as exit_request:
    code = exit_request.code
    if code is not None and not isinstance(code, int):
      sys.stderr.write("%s\n" % code)
      code = 1
    _exit_before_finalization(code or 0)
