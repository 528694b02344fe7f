# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""What a person sees from the command lines.

TensorFlow prints a screenful before any work: CUDA factory errors on a
machine without a GPU, oneDNN and CPU-feature notices, then a deprecation
warning for each compat.v1 API this project uses on purpose, and the
Estimator logs every hook it builds. By default the command lines hide all of
that and print the project's own lines, short:

  08:12:03 step 120/343 (35%): loss = 0.4123, 2.41 steps/s, 77.1 examples/s, ETA 1m32s

`--verbose` shows everything, in absl's full format. Errors are never hidden:
they reach the user as the one line of `errors.exit_with`.

This module does not import TensorFlow: `quiet_tensorflow_startup` must run
before TensorFlow is first imported.
"""

import logging as python_logging
import os
import sys

VERBOSE_FLAG = "verbose"
VERBOSE_HELP = ("Show TensorFlow's start-up messages, deprecation warnings "
                "and Estimator logs, and every log line in absl's full "
                "format; by default only the project's own lines.")


def wants_verbose(argv):
  """Whether a command line asks for --verbose (read before flags parse)."""
  for arg in argv[1:]:
    if arg == "--" + VERBOSE_FLAG:
      return True
    if arg.startswith("--%s=" % VERBOSE_FLAG):
      return arg.split("=", 1)[1].lower() in ("true", "t", "1", "yes")
  return False


def quiet_tensorflow_startup(argv=None):
  """Hides TensorFlow's C++ start-up logs unless the command line has
  --verbose. Must run before TensorFlow is imported: the level is read once,
  when its shared library loads. A TF_CPP_MIN_LOG_LEVEL the user set wins."""
  if not wants_verbose(sys.argv if argv is None else argv):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def configure_logging(verbose):
  """Once flags are parsed: the project's lines at INFO, TensorFlow's own
  Python logs (deprecations, Estimator chatter) only with --verbose."""
  from absl import logging  # pylint: disable=g-import-not-at-top
  tensorflow_logger = python_logging.getLogger("tensorflow")
  if verbose:
    logging.set_verbosity(logging.DEBUG)
    tensorflow_logger.setLevel(python_logging.INFO)
    return
  logging.set_verbosity(logging.INFO)
  tensorflow_logger.setLevel(python_logging.ERROR)
  logging.get_absl_handler().setFormatter(
      python_logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))


def duration(seconds):
  """A short human duration: 45s, 3m05s, 2h07m."""
  seconds = max(0, int(round(seconds)))
  if seconds < 60:
    return "%ds" % seconds
  if seconds < 3600:
    return "%dm%02ds" % divmod(seconds, 60)
  return "%dh%02dm" % divmod(seconds // 60, 60)


def progress(done, total, started, now):
  """`120/343 (35%), ETA 1m32s` for `done` of `total` units."""
  text = "{:,}/{:,} ({:.0%})".format(done, total, done / max(total, 1))
  if 0 < done < total and now > started:
    text += ", ETA " + duration((total - done) * (now - started) / done)
  return text
