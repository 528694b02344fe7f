# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Serves several tasks from one frozen backbone, each with its adapter bundle.

Example (three GLUE tasks, predictions in the GLUE server's format):

  python scripts/predict_multitask.py \\
    --bert_config_file=$BERT_DIR/bert_config.json \\
    --vocab_file=$BERT_DIR/vocab.txt --init_checkpoint=$BERT_DIR/bert_model.ckpt \\
    --adapter_bundles=mrpc_out/adapter_bundle,sst2_out/adapter_bundle,cola_out/adapter_bundle \\
    --data_dirs=$GLUE_DIR/MRPC,$GLUE_DIR/SST-2,$GLUE_DIR/CoLA \\
    --output_dir=/tmp/glue_submission

The command line of `adapter_bert.multitask`, which explains how the backbone
is shared.
"""

import os
import sys

# `python scripts/<name>.py` puts scripts/ on sys.path, not the repository
# root that holds adapter_bert/ and modeling.py: add it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Before TensorFlow loads: its start-up noise is hidden unless --verbose.
from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from adapter_bert import errors
from adapter_bert import multitask
import common_flags

FLAGS = flags.FLAGS
PROGRAM = "predict_multitask.py"


def define_flags():
  """This script's flags; defined only when it runs as a script, because
  run_classifier.py defines flags of the same names and absl refuses a second
  definition in one process."""
  common_flags.define_backbone_flags()
  # Listed by --help, which shows only the main module's own (key) flags.
  flags.adopt_module_key_flags(common_flags)
  flags.DEFINE_list("data_dirs", None,
                    "Comma-separated GLUE data folders, in --adapter_bundles' "
                    "order.")
  flags.DEFINE_string("output_dir", None,
                      "Where the GLUE server files (<TASK>.tsv) go.")
  flags.DEFINE_enum("split", "test", ["test", "dev"],
                    "Predict the test set (GLUE server files) or the dev set "
                    "(also printing the dev metrics).")
  flags.DEFINE_integer("predict_batch_size", 8,
                       "Examples per session run.")
  flags.DEFINE_integer("max_seq_length", None,
                       "Optional: the max_seq_length every bundle must have "
                       "been trained with (each bundle always uses its own; "
                       "a bundle of another length is refused).")
  flags.DEFINE_bool("merge", False,
                    "Serve each bundle of a mergeable method (lora, ia3) "
                    "folded into its own copy of the weights it changes.")
  flags.DEFINE_bool(console.VERBOSE_FLAG, False, console.VERBOSE_HELP)


def main(argv):
  del argv
  console.configure_logging(FLAGS.verbose)
  errors.run_program(PROGRAM, lambda: multitask.run(
      multitask.Backbone(FLAGS.bert_config_file, FLAGS.vocab_file,
                         FLAGS.init_checkpoint),
      FLAGS.adapter_bundles, FLAGS.data_dirs, FLAGS.output_dir,
      FLAGS.split, FLAGS.predict_batch_size, FLAGS.max_seq_length,
      FLAGS.merge))


if __name__ == "__main__":
  define_flags()
  app.run(main)
