# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A sweep spread over machines: workers that share one work folder.

A worker (`sweep.py --worker`) either takes the grid's runs that no one
holds, one after another, until every run is recorded (a run is claimed by a
`flock` on its folder, which the kernel drops when the worker dies, so a
waiting worker resumes a dead one's run from its last checkpoint), or runs
the one run a scheduler gives it by index: `--index`, Slurm's
`SLURM_ARRAY_TASK_ID` or a Kubernetes indexed Job's `JOB_COMPLETION_INDEX`.
`sweep.py --list` prints the command of each pending run, for any other
scheduler.

Claims need a file system with locks (local disk, NFS): on `gs://` there is
no atomic claim, so workers there run by index. The results table is
written under a lock by every worker on such a file system; on `gs://` the
run folders' records are the results, and the same sweep command without
--worker gathers them into the table (it reruns nothing).
"""

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import sweeps

# Where schedulers put a worker's index, in the order they are read.
INDEX_VARIABLES = ("SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX")


def scheduler_index(index_flag, environ):
  """The run index this worker was given, and by whom.

  Args:
    index_flag: --index (None if not given): wins over the environment.
    environ: the process environment (a mapping).

  Returns:
    (index, its source: "--index" or the variable's name), or (None, None):
    take free runs.
  """
  if index_flag is not None:
    return (index_flag, "--index")
  for name in INDEX_VARIABLES:
    value = environ.get(name, "")
    if value.strip():
      try:
        return (int(value), name)
      except ValueError:
        raise errors.InputError("%s=%r: a scheduler's run index must be an "
                                "integer" % (name, value))
  return (None, None)


def run_worker(grid, options, results_path, index=None, source="--index",
               command="", at_selected=False):
  """One worker's share of the sweep of `grid` (see the module docstring).

  Args:
    index: the grid's run to run (`scheduler_index`), or None: every run
      that no other worker holds, waiting at the end for those they do.
    source: where `index` came from, for messages.

  Returns:
    the rows of the results table ([] where the table is not written).
  """
  (_, context, runs, finished) = sweeps.planned_runs(
      grid, options, results_path, at_selected)
  if index is None:
    if fileio.is_url(options["work_dir"]):
      raise errors.InputError(
          "--work_dir=%s: no claim on a run is atomic there; give each "
          "worker its run (--index, a Slurm array, a Kubernetes indexed "
          "Job)" % options["work_dir"])
    pending = [run for run in runs if run not in finished]
  else:
    if not 0 <= index < len(runs):
      raise errors.InputError("%s=%d: the grid has %d runs (0-%d)" % (
          source, index, len(runs), len(runs) - 1))
    pending = [] if runs[index] in finished else [runs[index]]
  print("%s: worker %s: %d runs to run (%d runs in the grid, %d finished)" % (
      sweeps.PROGRAM, "of every free run" if index is None else
      "of run %d (%s)" % (index, source), len(pending), len(runs),
      len(finished)), flush=True)
  table = None if fileio.is_url(results_path) else results_path
  return sweeps.run_and_report(pending, options, context, 1, table, command)


def pending_commands(grid, options, results_path, worker_command,
                     at_selected=False):
  """`worker_command --index=N` for each run N of the grid not finished:
  what a scheduler runs, one line each."""
  (_, _, runs, finished) = sweeps.planned_runs(
      grid, options, results_path, at_selected, check_results_folder=False)
  return ["%s --index=%d" % (worker_command, index)
          for (index, run) in enumerate(runs) if run not in finished]
