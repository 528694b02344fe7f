# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""One frozen backbone + adapter bundles -> one SavedModel that takes raw text.

  python scripts/export_savedmodel.py \\
      --bert_config_file=$BERT_DIR/bert_config.json \\
      --vocab_file=$BERT_DIR/vocab.txt \\
      --init_checkpoint=$BERT_DIR/bert_model.ckpt \\
      --adapter_bundles=mrpc_out/adapter_bundle,sst2_out/adapter_bundle \\
      --export_dir=/tmp/served/1

The command line of `adapter_bert.savedmodel`, which documents the signatures
and the in-graph tokenizer. A loader must register tensorflow-text's ops first
(`import tensorflow_text` before `tf.saved_model.load`).
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

from adapter_bert import classifier
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import multitask
from adapter_bert import savedmodel
import common_flags

FLAGS = flags.FLAGS
PROGRAM = "export_savedmodel.py"


def define_flags():
  """This script's flags (defined only when it runs as a script, as
  predict_multitask.py's, whose backbone flags they share)."""
  common_flags.define_backbone_flags()
  # Listed by --help, which shows only the main module's own (key) flags.
  flags.adopt_module_key_flags(common_flags)
  flags.DEFINE_string("export_dir", None,
                      "The SavedModel folder to write (replaced if it "
                      "exists; local or gs://).")
  flags.DEFINE_string("default_task", None,
                      "The task of the `serving_default` signature (default: "
                      "the first bundle's).")
  flags.DEFINE_enum("precision", "float32", list(classifier.PRECISIONS),
                    "The encoder's arithmetic in the exported graph (as "
                    "run_classifier.py's --precision).")
  flags.DEFINE_bool("merge", False,
                    "Fold each bundle of a mergeable method (lora, ia3) into "
                    "its own copy of the weights it changes: no added "
                    "latency, more memory per task. Other bundles serve as "
                    "they are.")
  flags.DEFINE_enum("signature_inputs", "text", list(savedmodel.SIGNATURE_INPUTS),
                    "What the signatures take: text (raw strings, tokenized "
                    "in the graph; needs TF Text's ops where it is served), "
                    "token_ids (one `<task>_ids` signature per task taking "
                    "input_ids, input_mask, segment_ids, tokenized by the "
                    "client; no TF Text op) or both.")
  flags.DEFINE_bool("mixed_signature", False,
                    "Also a signature `mixed` (task, text_a, text_b per row; "
                    "with token_ids: `mixed_ids`) for batches that mix the "
                    "tasks: one forward pass through the shared backbone, "
                    "each row with its task's method and head; outputs "
                    "labels, probabilities (zero-padded to the most labels) "
                    "and scores (regression; NaN for other rows).")
  flags.DEFINE_bool(console.VERBOSE_FLAG, False, console.VERBOSE_HELP)


def main(argv):
  del argv
  console.configure_logging(FLAGS.verbose)
  backbone = multitask.Backbone(FLAGS.bert_config_file, FLAGS.vocab_file,
                                FLAGS.init_checkpoint)
  signatures = errors.run_program(PROGRAM, lambda: savedmodel.export(
      backbone, FLAGS.adapter_bundles, FLAGS.export_dir, FLAGS.default_task,
      FLAGS.precision, FLAGS.merge, FLAGS.signature_inputs,
      FLAGS.mixed_signature))
  print("wrote %s (%s), signatures: %s" % (
      FLAGS.export_dir, fileio.human_bytes(fileio.directory_size(
          FLAGS.export_dir)),
      ", ".join("%s (%s)" % kv for kv in sorted(signatures.items()))))


if __name__ == "__main__":
  define_flags()
  app.run(main)
