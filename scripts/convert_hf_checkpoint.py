# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Converts a Hugging Face BERT folder into Google's original BERT layout.

  python scripts/convert_hf_checkpoint.py --hf_dir=DIR --output_dir=DIR

The command line of `adapter_bert.hf_checkpoint` (which documents the layouts
and the checks); TensorFlow loads only once the input has been checked.
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
from adapter_bert import hf_checkpoint

FLAGS = flags.FLAGS
PROGRAM = "convert_hf_checkpoint.py"


def define_flags():
  """Defines the script's flags; only when run as a script, because
  run_classifier.py also defines --output_dir and absl refuses a second
  definition in one process (a pytest run imports both)."""
  flags.DEFINE_string(
      "hf_dir", None,
      "Hugging Face BERT folder with config.json, model.safetensors and "
      "vocab.txt.")
  flags.DEFINE_string(
      "output_dir", None,
      "Folder to write bert_config.json, vocab.txt and bert_model.ckpt.* into. "
      "Created if missing; files of the same name are replaced.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError("Too many command-line arguments.")
  for name in ("hf_dir", "output_dir"):
    if not getattr(FLAGS, name):
      errors.exit_with(PROGRAM, "--%s is required" % name)
  summary = errors.run_program(
      PROGRAM, lambda: hf_checkpoint.convert(FLAGS.hf_dir, FLAGS.output_dir),
      also=(ValueError, OSError))
  print("Converted %d tensors (%d parameters) from %s" %
        (summary["num_tensors"], summary["num_parameters"], FLAGS.hf_dir))
  print("Skipped on purpose: %s" %
        (", ".join(summary["skipped"]) if summary["skipped"] else "none"))
  print("Wrote: %s" % ", ".join(summary["output_files"]))


if __name__ == "__main__":
  define_flags()
  app.run(main)
