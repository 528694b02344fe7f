# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bundles to and from AdapterHub adapter folders (`adapters` 1.x).

An AdapterHub folder is what `model.save_adapter(folder, name,
with_head=True)` writes and `model.load_adapter(folder)` loads, on a
`BertAdapterModel` of the backbone:

    adapter_config.json       {"config": the bottleneck configuration
                              (mh_adapter, output_adapter, reduction_factor,
                              non_linearity, ...), "name", "hidden_size",
                              "model_type": "bert", "model_class",
                              "model_name", "version"}
    pytorch_adapter.bin       the adapter's weights, torch.save's format
                              ("bert.encoder.layer.0.attention.output.
                              adapters.<name>.adapter_down.0.weight", ...)
    head_config.json          the head: "classification", 1 layer on the
    pytorch_model_head.bin    pooler ("heads.<name>.1.weight", "...bias")

This project's head is that head (one dense layer on the frozen pooler's
output). The files are written and read without PyTorch
(adapter_bert/torch_files.py).

AdapterHub keeps every pre-trained weight frozen and shared, LayerNorms
included: it has no per-adapter copy of them. A bundle that trains
LayerNorms (`adapters`, the default) or the pooler therefore exports only
with `backbone_patch=True`, which writes those weights beside the adapter as

    backbone_patch.safetensors   the task's LayerNorms (and pooler) under
                                 BertAdapterModel's names ("bert.encoder.
                                 layer.0.attention.output.LayerNorm.weight")

to load into the model that serves this task, and only that one:
`model.load_state_dict(safetensors.torch.load_file(path), strict=False)`.
Without it the export is refused in one line, never written without them:
the adapter alone would compute something else. `adapters:noln` bundles
export exactly. An import reads the patch back when it is there.
"""

import os

import tensorflow.compat.v1 as tf

from adapter_bert import library_folders
from adapter_bert import methods
from adapter_bert import torch_files
from adapter_bert.library_folders import FolderError
from adapter_bert.methods import base
import adapters

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAMES = ("pytorch_adapter.bin", "adapter.safetensors")
HEAD_CONFIG_NAME = "head_config.json"
HEAD_WEIGHTS_NAMES = ("pytorch_model_head.bin", "model_head.safetensors")
PATCH_NAME = "backbone_patch.safetensors"
# The library version whose format this writes.
VERSION = "adapters.1.3.0"
_MODEL_PREFIX = "bert."


def _metadata(name, config, base_model, settings):
  return {"config": settings, "hidden_size": config.hidden_size,
          "model_class": "BertAdapterModel", "model_name": base_model,
          "model_type": "bert", "name": name, "version": VERSION}


def export(bundle, output_dir, base_model, backbone_patch=False):
  """Writes a bundle as an AdapterHub adapter folder with its head,
  atomically.

  Args:
    bundle: a `bundles.Bundle`.
    output_dir: the folder to write.
    base_model: the Hugging Face model it goes on (recorded as model_name).
    backbone_patch: also write the bundle's trained LayerNorms and pooler as
      backbone_patch.safetensors (see above); without it such a bundle is
      refused.

  Returns:
    the files written, {name: bytes}.

  Raises:
    FolderError: the method has no AdapterHub form, or the bundle trains
      backbone weights and `backbone_patch` is false.
  """
  (method, own, head, backbone) = library_folders.split_bundle(bundle)
  if method.adapterhub_architecture is None:
    raise FolderError(
        "adapter bundle %s (--tuning_mode=%s) has no AdapterHub form here: "
        "bottleneck adapters (%s) go to AdapterHub; LoRA, IA3 and prefix "
        "tuning to PEFT (--to=peft)" % (
            bundle.path, method.name, ", ".join(
                c.name for c in methods.registry().values()
                if c.adapterhub_architecture)))
  if backbone and not backbone_patch:
    raise FolderError(
        "adapter bundle %s trains %d backbone weights (e.g. %s) that "
        "AdapterHub keeps frozen and shared: add --backbone_patch to write "
        "them as %s, to load into the model serving this task only "
        "(docs/bundles.md), or train with --train_layernorm=false "
        "(adapters:noln)" % (bundle.path, len(backbone), sorted(backbone)[0],
                             PATCH_NAME))
  config = bundle.bert_config()
  try:
    (settings, tensors) = method.to_library(own, config)
  except ValueError as e:
    raise FolderError("adapter bundle %s: %s" % (bundle.path, e))
  task = bundle.task()
  name = library_folders.task_key(task)
  weights = {_MODEL_PREFIX + path.replace(adapters.ADAPTER_NAME, name): value
             for (path, value) in tensors.items()}
  head_settings = {"activation_function": "tanh", "bias": True,
                   "dropout_prob": None, "head_type": "classification",
                   "label2id": {label: i for (i, label) in enumerate(
                       task.get_labels() or ["score"])},
                   "layers": 1, "num_labels": task.num_labels,
                   "use_pooler": True}
  files = {
      CONFIG_NAME: library_folders.json_bytes(
          _metadata(name, config, base_model, settings)),
      WEIGHTS_NAMES[0]: torch_files.state_dict_bytes(weights),
      HEAD_CONFIG_NAME: library_folders.json_bytes(
          _metadata(name, config, base_model, head_settings)),
      HEAD_WEIGHTS_NAMES[0]: torch_files.state_dict_bytes(
          {"heads.%s.1.%s" % (name, k): v for (k, v) in head.items()}),
  }
  if backbone:
    files[PATCH_NAME] = library_folders.safetensors_bytes({
        _MODEL_PREFIX + k: v for (k, v) in library_folders.backbone_tensors(
            backbone, config).items()})
  library_folders.write_folder(output_dir, files)
  return files


def read(folder, config):
  """An AdapterHub folder as (method class, options, {variable: array}).

  Args:
    folder: what `save_adapter(..., with_head=True)` wrote (and, for an
      adapter exported from here with its LayerNorms, the backbone patch).
    config: the backbone's `modeling.BertConfig`.

  Raises:
    FolderError: another architecture or model, a head this project does
      not have, a setting or tensor it cannot place (one line).
  """
  metadata = library_folders.read_json(folder, CONFIG_NAME)
  settings = metadata.get("config")
  if not isinstance(settings, dict):
    raise FolderError("%s: %s has no adapter configuration" %
                      (folder, CONFIG_NAME))
  if metadata.get("model_type", "bert") != "bert" or metadata.get(
      "hidden_size", config.hidden_size) != config.hidden_size:
    raise FolderError("%s: an adapter of a %s model of hidden size %s; the "
                      "backbone is BERT of hidden size %d" % (
                          folder, metadata.get("model_type"),
                          metadata.get("hidden_size"), config.hidden_size))
  name = metadata.get("name")
  architecture = settings.get("architecture") or "bottleneck"
  try:
    cls = methods.for_library("adapterhub_architecture", architecture,
                              settings)
  except ValueError as e:
    raise FolderError("%s: %s" % (folder, e))
  tensors = {}
  marker = ".adapters.%s." % name
  for (path, value) in library_folders.read_tensors(
      folder, WEIGHTS_NAMES).items():
    if not path.startswith(_MODEL_PREFIX) or marker not in path:
      raise FolderError("%s: %s is no weight of adapter %r of BERT" %
                        (folder, path, name))
    tensors[path[len(_MODEL_PREFIX):].replace(
        marker, ".adapters.%s." % adapters.ADAPTER_NAME)] = value
  try:
    (options, values) = cls.from_library(settings, tensors, config)
  except ValueError as e:
    raise FolderError("%s: %s" % (folder, e))
  values.update(_read_head(folder, name, config))
  patch = _read_patch(folder, config)
  if any(base.is_layer_norm(n) for n in patch):
    options["train_layernorm"] = True
  if any(base.is_pooler(n) for n in patch):
    options["train_pooler"] = True
  values.update(patch)
  return (cls, options, values)


def _read_head(folder, name, config):
  """The head's two variables; refuses a head this project does not have."""
  if not tf.io.gfile.exists(os.path.join(folder, HEAD_CONFIG_NAME)):
    raise FolderError("%s has no head (%s): a bundle needs its classifier; "
                      "save with save_adapter(..., with_head=True)" %
                      (folder, HEAD_CONFIG_NAME))
  head = library_folders.read_json(folder, HEAD_CONFIG_NAME).get("config")
  if not isinstance(head, dict) or (
      head.get("head_type") not in ("classification", "regression") or
      head.get("layers") != 1 or not head.get("use_pooler") or
      head.get("bias") is False):
    raise FolderError(
        "%s: head %s; this project's head is one dense layer with a bias on "
        "the pooler: add_classification_head(name, layers=1, "
        "use_pooler=True)" % (folder, {k: (head or {}).get(k) for k in (
            "head_type", "layers", "use_pooler")}))
  weights = library_folders.read_tensors(folder, HEAD_WEIGHTS_NAMES)
  found = {k.rsplit(".", 1)[1]: v for (k, v) in weights.items()
           if k.startswith("heads.%s.1." % name)}
  if sorted(found) != ["bias", "weight"] or len(weights) != 2 or (
      found["weight"].shape[1:] != (config.hidden_size,)):
    raise FolderError("%s: head weights %s; expected heads.%s.1.weight "
                      "[labels, %d] and heads.%s.1.bias" % (
                          folder, sorted(weights), name, config.hidden_size,
                          name))
  return dict(zip(base.HEAD_VARIABLES, (found["weight"], found["bias"])))


def _read_patch(folder, config):
  """The backbone patch's weights by this project's names, or {}."""
  if not tf.io.gfile.exists(os.path.join(folder, PATCH_NAME)):
    return {}
  tensors = library_folders.read_tensors(folder, (PATCH_NAME,))
  outside = [k for k in tensors if not k.startswith(_MODEL_PREFIX)]
  if outside:
    raise FolderError("%s: %s is no weight of BERT" % (
        os.path.join(folder, PATCH_NAME), outside[0]))
  return library_folders.backbone_values(
      {k[len(_MODEL_PREFIX):]: v for (k, v) in tensors.items()}, config,
      os.path.join(folder, PATCH_NAME))
