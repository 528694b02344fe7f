# coding=utf-8
# Licensed under the Apache License, Version 2.0 (the "License"); see LICENSE.
"""Builds an SST-2-format binary sentiment task from real movie-review snippets.

  python scripts/prepare_movie_reviews.py \\
    --source=.cache/assets/downloads/vaderSentiment-3.3.2.tar.gz \\
    --output_dir=.cache/assets/movie_reviews

The command line of `adapter_bert.movie_reviews`, which documents the data,
the labels and the split.
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
from adapter_bert import movie_reviews

FLAGS = flags.FLAGS
PROGRAM = "prepare_movie_reviews.py"


def define_flags():
  """Defines this script's flags.

  Called only when the file runs as a script: run_classifier.py and
  scripts/convert_hf_checkpoint.py define --output_dir too, and absl refuses
  a second definition of a flag in one process.
  """
  flags.DEFINE_string(
      "source", None,
      "The vaderSentiment-3.3.2 sdist (.tar.gz), the hutto_ICWSM_2014.tar.gz "
      "inside it, or movieReviewSnippets_GroundTruth.txt itself.")
  flags.DEFINE_string(
      "output_dir", None,
      "Where train.tsv and dev.tsv are written (created if missing).")
  flags.DEFINE_float(
      "dev_fraction", 0.1,
      "Fraction of the labelled sentences that goes to dev.tsv.")
  flags.DEFINE_integer(
      "seed", 12345,
      "Seed of the train/dev shuffle; the same seed gives the same split.")
  flags.register_validator("dev_fraction", lambda value: 0.0 < value < 1.0,
                           message="--dev_fraction must be in (0, 1).")
  flags.mark_flag_as_required("source")
  flags.mark_flag_as_required("output_dir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments: %r" % argv[1:])

  def build():
    try:
      return movie_reviews.build_task(FLAGS.source, FLAGS.output_dir,
                                      FLAGS.dev_fraction, FLAGS.seed)
    except OSError as e:  # Writing the output (the source's are InputErrors).
      raise errors.InputError(errors.one_line(e), where=FLAGS.output_dir)

  counts = errors.run_program(PROGRAM, build)
  for line in movie_reviews.format_summary(counts, FLAGS.output_dir):
    print(line)
  return 0


if __name__ == "__main__":
  define_flags()
  app.run(main)
