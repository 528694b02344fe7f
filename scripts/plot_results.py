# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The paper's pictures, drawn from scripts/sweep.py's results files (PNG).

  python scripts/plot_results.py --results=results/sweep.csv \\
      --ablation_results=results/ablation.csv --output_dir=results

The command line of `adapter_bert.plots`, which lists the pictures.
"""

import os
import sys

# `python scripts/<name>.py` puts scripts/ on sys.path, not the repository
# root that holds adapter_bert/ and modeling.py: add it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from adapter_bert import errors
from adapter_bert import plots

PROGRAM = "plot_results.py"
FLAGS = flags.FLAGS


def define_flags():
  # The repository's parent: ../shared/glue, as everywhere else.
  repo_parent = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  flags.DEFINE_string("results", "results/sweep.csv", "scripts/sweep.py's "
                      "results table.")
  flags.DEFINE_string("ablation_results", None, "scripts/sweep.py's ablation "
                      "table (optional).")
  flags.DEFINE_string("ablation_metric", None, "The metric of the ablation "
                      "heat maps: one for every task (eval_accuracy), or "
                      "TASK=metric pairs (MRPC=eval_accuracy,CoLA=eval_mcc); "
                      "default, and for a task not named: its primary "
                      "metric.")
  flags.DEFINE_string("output_dir", "results", "Where the PNGs go.")
  flags.DEFINE_string("file_prefix", "", "Put before every PNG's name "
                      "(glue_), to keep two tables' pictures apart in one "
                      "folder.")
  flags.DEFINE_string("glue_dir", os.path.join(repo_parent, "shared", "glue"),
                      "GLUE data, for the majority-class line (skipped for "
                      "tasks whose files are not there).")


def main(argv):
  del argv
  paths = errors.run_program(
      PROGRAM, lambda: plots.plot_all(FLAGS.results, FLAGS.ablation_results,
                                      FLAGS.output_dir, FLAGS.ablation_metric,
                                      FLAGS.glue_dir, FLAGS.file_prefix),
      also=(KeyError, ValueError, OSError))
  for path in paths:
    print(path)


if __name__ == "__main__":
  define_flags()
  app.run(main)
