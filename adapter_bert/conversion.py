# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bundles to and from other libraries' adapter folders: AdapterHub
(bottleneck adapters: Houlsby, Pfeiffer placement, parallel) and Hugging Face
PEFT (LoRA, IA3, prefix tuning).

`export` writes a bundle as the folder the library's own `save` writes, so
`model.load_adapter(folder)` (AdapterHub) or `PeftModel.from_pretrained(model,
folder)` (PEFT) loads it on the Hugging Face form of the same backbone.
`import_folder` reads such a folder, saved by the library, into a bundle on
this project's converted backbone (fingerprint, vocabulary and all), so it
evaluates, serves and exports here. Anything either side cannot represent is
refused in one line before a file is written. Its command line is
scripts/convert_bundle.py.
"""

import collections

from adapter_bert import adapterhub
from adapter_bert import bundles
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import library_folders
from adapter_bert import output_rules
from adapter_bert import peft_folders
import modeling

Library = collections.namedtuple("Library", "module kind")

LIBRARIES = collections.OrderedDict([
    ("adapterhub", Library(adapterhub, output_rules.ADAPTERHUB_FOLDER)),
    ("peft", Library(peft_folders, output_rules.PEFT_FOLDER)),
])


def _library(name):
  if name not in LIBRARIES:
    raise errors.InputError("unknown library %r (known: %s)" %
                            (name, ", ".join(LIBRARIES)))
  return LIBRARIES[name]


def export(library, bundle_dir, output_dir, base_model, backbone_patch=False):
  """Writes the bundle `bundle_dir` as `library`'s adapter folder.

  Args:
    library: "adapterhub" or "peft".
    bundle_dir: the adapter bundle.
    output_dir: the folder to write (absent, empty or an earlier export).
    base_model: the Hugging Face model the folder goes on (its hub name or
      folder; recorded, as the library records it).
    backbone_patch: AdapterHub: also write the trained LayerNorms (and
      pooler) as a patch (see adapter_bert/adapterhub.py).

  Returns:
    {file name: size in bytes} of what was written.

  Raises:
    InputError: bad arguments, or what the library cannot hold (one line).
  """
  entry = _library(library)
  output_rules.check_export_target(output_dir, entry.kind, "output_dir")
  output_rules.check_apart([("output_dir", output_dir)],
                           input_folders=[("bundle", bundle_dir)])
  try:
    bundle = bundles.read_bundle(bundle_dir)
    files = entry.module.export(bundle, output_dir, base_model,
                                backbone_patch)
  except ValueError as e:
    raise errors.InputError(str(e))
  return {name: len(data) for (name, data) in files.items()}


def import_folder(library, folder, backbone, task_name, max_seq_length,
                  do_lower_case, bundle_dir):
  """Writes `library`'s adapter folder as a bundle on `backbone`.

  Args:
    library: "adapterhub" or "peft".
    folder: what the library saved (with the classifier head).
    backbone: `multitask.Backbone`: this project's form of the model the
      adapter was trained on (scripts/convert_hf_checkpoint.py).
    task_name: the GLUE task of the head (its labels, in order).
    max_seq_length, do_lower_case: the features it is served with.
    bundle_dir: the bundle to write.

  Returns:
    what `bundles.write_bundle_of_values` returns.

  Raises:
    InputError: bad arguments, or what this project cannot represent (one
      line).
  """
  entry = _library(library)
  output_rules.check_export_target(bundle_dir, output_rules.ADAPTER_BUNDLE,
                                   "output_bundle")
  output_rules.check_apart(
      [("output_bundle", bundle_dir)], input_folders=[("input_dir", folder)],
      input_files=[("bert_config_file", backbone.bert_config_file),
                   ("vocab_file", backbone.vocab_file)] +
      output_rules.checkpoint_inputs("init_checkpoint",
                                     backbone.init_checkpoint))
  try:
    task = glue.get_task(task_name)
    config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
    fileio.check_checkpoint_data(backbone.init_checkpoint)
    (cls, options, values) = entry.module.read(folder, config)
    method = cls.create(options, config.num_hidden_layers)
    settings = bundles.FeatureSettings(
        max_seq_length, do_lower_case, fileio.file_sha256(backbone.vocab_file))
    return library_folders.write_imported_bundle(
        bundle_dir, method, values, backbone, task, settings,
        "%s folder %s" % (library, folder))
  except ValueError as e:
    raise errors.InputError(str(e))
