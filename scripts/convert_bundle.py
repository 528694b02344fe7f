# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Adapter bundles to and from AdapterHub and PEFT adapter folders.

Export (the folder `save_adapter` / `save_pretrained` writes, for the Hugging
Face form of the backbone):

  python scripts/convert_bundle.py --to=adapterhub \\
      --bundle=mrpc_out/adapter_bundle --output_dir=mrpc_adapterhub \\
      --base_model=sentence-transformers/all-MiniLM-L6-v2
  python scripts/convert_bundle.py --to=peft --bundle=lora_out/adapter_bundle \\
      --output_dir=mrpc_lora_peft --base_model=...

Import (a folder the library saved, head included, onto this project's
converted backbone):

  python scripts/convert_bundle.py --from=peft --input_dir=mrpc_lora_peft \\
      --task_name=MRPC --bert_config_file=$BERT_DIR/bert_config.json \\
      --vocab_file=$BERT_DIR/vocab.txt \\
      --init_checkpoint=$BERT_DIR/bert_model.ckpt \\
      --output_bundle=mrpc_lora/adapter_bundle

The command line of `adapter_bert.conversion`; docs/bundles.md says what
each library holds and what is refused.
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

from adapter_bert import conversion
from adapter_bert import errors
from adapter_bert import multitask

FLAGS = flags.FLAGS
PROGRAM = "convert_bundle.py"


def define_flags():
  """This script's flags (defined only when it runs as a script)."""
  libraries = list(conversion.LIBRARIES)
  flags.DEFINE_enum("to", None, libraries,
                    "Export --bundle as this library's adapter folder.")
  flags.DEFINE_enum("from", None, libraries,
                    "Import this library's adapter folder (--input_dir) as "
                    "a bundle (--output_bundle).")
  flags.DEFINE_string("bundle", None, "Export: the adapter bundle.")
  flags.DEFINE_string("output_dir", None,
                      "Export: the folder to write (absent, empty or an "
                      "earlier export, which is replaced).")
  flags.DEFINE_string("base_model", None,
                      "Export: the Hugging Face model the adapter goes on "
                      "(hub name or folder), recorded in its config.")
  flags.DEFINE_bool("backbone_patch", False,
                    "Export to AdapterHub: also write the bundle's trained "
                    "LayerNorms (and pooler) as backbone_patch.safetensors, "
                    "to load into the model serving this task only; without "
                    "it such a bundle is refused.")
  flags.DEFINE_string("input_dir", None,
                      "Import: the folder the library saved, head included.")
  flags.DEFINE_string("task_name", None,
                      "Import: the GLUE task of the adapter's head.")
  flags.DEFINE_string("bert_config_file", None,
                      "Import: the backbone's bert_config.json (this "
                      "project's form of the model the adapter was trained "
                      "on, see scripts/convert_hf_checkpoint.py).")
  flags.DEFINE_string("vocab_file", None, "Import: the backbone's vocab.txt.")
  flags.DEFINE_string("init_checkpoint", None,
                      "Import: the backbone checkpoint.")
  flags.DEFINE_integer("max_seq_length", 128,
                       "Import: the sequence length the bundle serves with.")
  flags.DEFINE_bool("do_lower_case", True,
                    "Import: whether the bundle's text is lower-cased (as "
                    "the backbone's tokenizer).")
  flags.DEFINE_string("output_bundle", None, "Import: the bundle to write.")
  flags.DEFINE_bool(console.VERBOSE_FLAG, False, console.VERBOSE_HELP)


def main(argv):
  del argv
  console.configure_logging(FLAGS.verbose)

  def _required(*names):
    missing = [n for n in names if not FLAGS[n].value]
    if missing:
      raise errors.InputError("--%s is required with --%s" % (
          missing[0], "to" if FLAGS.to else "from"))

  def job():
    if bool(FLAGS.to) == bool(FLAGS["from"].value):
      raise errors.InputError("give exactly one of --to (export a bundle) "
                              "and --from (import a folder)")
    if FLAGS.to:
      _required("bundle", "output_dir", "base_model")
      sizes = conversion.export(FLAGS.to, FLAGS.bundle, FLAGS.output_dir,
                                FLAGS.base_model, FLAGS.backbone_patch)
      return "wrote %s: %s" % (FLAGS.output_dir, ", ".join(
          "%s (%d bytes)" % kv for kv in sorted(sizes.items())))
    _required("input_dir", "task_name", "bert_config_file", "vocab_file",
              "init_checkpoint", "output_bundle")
    backbone = multitask.Backbone(FLAGS.bert_config_file, FLAGS.vocab_file,
                                  FLAGS.init_checkpoint)
    written = conversion.import_folder(
        FLAGS["from"].value, FLAGS.input_dir, backbone, FLAGS.task_name,
        FLAGS.max_seq_length, FLAGS.do_lower_case, FLAGS.output_bundle)
    return "wrote %s: %d parameters, %d bytes" % (
        written["path"], written["num_parameters"], written["bytes"])

  print(errors.run_program(PROGRAM, job))


if __name__ == "__main__":
  define_flags()
  app.run(main)
