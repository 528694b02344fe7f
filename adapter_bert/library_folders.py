# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""What AdapterHub's and PEFT's adapter folders share, as this project meets
them: reading and writing their weight files and JSON, the classifier head,
the trained backbone weights some bundles carry, and the bundle an import
becomes.

The formats themselves are in adapter_bert/adapterhub.py and
adapter_bert/peft_folders.py; how a method's own variables are named there
is the method's (`TuningMethod.to_library`, `from_library`).
"""

import json
import os

import numpy as np
import safetensors.numpy
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import classifier
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import hf_checkpoint
from adapter_bert import torch_files
from adapter_bert.methods import base
import modeling


class FolderError(ValueError):
  """A folder another library wrote that this project cannot take in, or a
  bundle it cannot write out; the message is one line."""


# ---------------------------------------------------------------- files


def read_json(folder, name):
  path = os.path.join(folder, name)
  if not tf.io.gfile.exists(path):
    raise FolderError("%s: no %s (not a folder this library wrote?)" %
                      (folder, name))
  try:
    value = json.loads(fileio.read_text(path))
  except ValueError as e:
    raise FolderError("%s: not JSON (%s)" % (path, errors.one_line(e)))
  if not isinstance(value, dict):
    raise FolderError("%s: not a JSON object" % path)
  return value


def read_tensors(folder, names):
  """{name: array} of the first of the weight files `names` that exists
  (a .safetensors or a torch .bin)."""
  for name in names:
    path = os.path.join(folder, name)
    if not tf.io.gfile.exists(path):
      continue
    if name.endswith(".safetensors"):
      try:
        return dict(safetensors.numpy.load(fileio.read_bytes(path)))
      except Exception as e:  # pylint: disable=broad-except
        # safetensors raises its own error types for a damaged file.
        raise FolderError("%s: not a readable safetensors file (%s)" %
                          (path, errors.one_line(e)))
    try:
      return dict(torch_files.read_state_dict(path))
    except torch_files.TorchFileError as e:
      raise FolderError(str(e))
  raise FolderError("%s: no weights file (%s)" % (folder, " or ".join(names)))


def safetensors_bytes(tensors):
  return safetensors.numpy.save(
      {k: np.ascontiguousarray(v, np.float32) for (k, v) in tensors.items()})


def write_folder(output_dir, files):
  """Writes {file name: bytes} as the folder `output_dir`, atomically."""
  with fileio.atomic_directory(output_dir) as temp_dir:
    for (name, data) in sorted(files.items()):
      fileio.write_bytes(os.path.join(temp_dir, name), data)


def json_bytes(value):
  return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")


# ---------------------------------------------------------------- bundles


def split_bundle(bundle):
  """A bundle's values as (method, its own variables, head {"weight",
  "bias"} in torch's layout, other trained backbone weights)."""
  method = bundle.tuning_method()
  own, head, backbone = {}, {}, {}
  for (name, value) in bundle.values.items():
    if method.adds(name):
      own[name] = value
    elif name == base.HEAD_VARIABLES[0]:
      head["weight"] = value  # [labels, hidden], as torch's Linear
    elif name == base.HEAD_VARIABLES[1]:
      head["bias"] = value
    else:
      backbone[name] = value
  return (method, own, head, backbone)


def backbone_tensors(values, config):
  """Trained backbone weights (LayerNorms, pooler) under the Hugging Face
  BertModel's names (no "bert."), in torch's layout."""
  names = {}
  for (hf_name, target) in hf_checkpoint.name_map(config.to_dict()).items():
    if hf_name.endswith((".weight", ".bias")):
      names[target.google_name] = (hf_name, target.transpose)
  tensors = {}
  for (name, value) in values.items():
    (hf_name, transpose) = names[name]
    tensors[hf_name] = value.T if transpose else value
  return tensors


def backbone_values(tensors, config, where):
  """The inverse of `backbone_tensors`; refuses a tensor outside BERT."""
  mapping = hf_checkpoint.name_map(config.to_dict())
  values = {}
  for (hf_name, value) in tensors.items():
    target = mapping.get(hf_name)
    if target is None:
      raise FolderError("%s holds %s, which is no weight of BERT" %
                        (where, hf_name))
    values[target.google_name] = value.T if target.transpose else value
  return values


def task_key(task):
  """A task's name as an adapter name of AdapterHub (a module path part)."""
  return "".join(c if c.isalnum() else "_" for c in task.name.lower())


def write_imported_bundle(bundle_dir, method, values, backbone, task,
                          feature_settings, source):
  """A converted adapter as this project's bundle, on `backbone`
  (`multitask.Backbone`), checked like a trained one.

  Raises:
    FolderError: the values do not fit the model (one line).
  """
  outputs = values[base.HEAD_VARIABLES[1]].shape[0]
  if outputs != task.num_labels:
    raise FolderError("%s: its head has %d outputs; --task_name=%s has %d "
                      "labels" % (source, outputs, task.name,
                                  task.num_labels))
  config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
  shapes = classifier.describe_model(config, method, task.num_labels,
                                     feature_settings.max_seq_length)
  try:
    return bundles.write_bundle_of_values(
        bundle_dir, method, values, shapes, backbone.init_checkpoint,
        bundles.Description(task, config, feature_settings), source)
  except ValueError as e:
    raise FolderError("%s does not fit --tuning_mode=%s on %s: %s" % (
        source, method.label(), backbone.bert_config_file, e))

