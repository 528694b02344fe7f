# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""run_classifier.py with one part of a bfloat16 graph kept in float32.

Where `precision_gradients.py` compares one batch's gradients, this trains a
whole run so that a part's effect on the dev metric can be measured, paired
by seed with plain bfloat16 and float32. Every flag is run_classifier.py's,
plus --float32_part=<name> (first; a name of `precision_parts.EXPERIMENTS`),
e.g. through glue_minilm.sh:

  CLASSIFIER=benchmarks/precision_training.py OUT=/tmp/p/attention-2 \\
      benchmarks/glue_minilm.sh MRPC --seed=2 --precision=mixed_bfloat16 \\
      --float32_part=attention
"""

import os
import runpy
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import precision_parts  # pylint: disable=g-import-not-at-top,wrong-import-position

PROGRAM = "precision_training.py"


def main():
  parts = [a for a in sys.argv[1:] if a.startswith("--float32_part=")]
  names = [a.split("=", 1)[1] for a in parts]
  if len(names) != 1 or names[0] not in precision_parts.EXPERIMENTS:
    sys.exit("%s: error: give --float32_part once, one of %s" % (
        PROGRAM, ", ".join(precision_parts.EXPERIMENTS)))
  precision_parts.EXPERIMENTS[names[0]]()
  # run_classifier.py runs as its own __main__ (its flags, its exit codes),
  # in this process, after the patch.
  sys.argv = [sys.argv[0]] + [a for a in sys.argv[1:] if a not in parts]
  runpy.run_path(os.path.join(REPO_ROOT, "run_classifier.py"),
                 run_name="__main__")


if __name__ == "__main__":
  main()
