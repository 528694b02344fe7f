# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Flag definitions more than one command line shares.

Not a command line itself (it has no `main`), and no library imports it:
libraries take arguments and never touch flags.
"""

from absl import flags


def define_backbone_flags():
  """The flags naming a backbone and its bundles (those of
  scripts/predict_multitask.py and scripts/export_savedmodel.py)."""
  flags.DEFINE_string("bert_config_file", None,
                      "The backbone's bert_config.json.")
  flags.DEFINE_string("vocab_file", None, "The backbone's vocab.txt.")
  flags.DEFINE_string("init_checkpoint", None,
                      "The backbone checkpoint every bundle goes on.")
  flags.DEFINE_list("adapter_bundles", None,
                    "Comma-separated adapter bundle folders, one per task.")
