# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Bundles to and from Hugging Face PEFT adapter folders.

A PEFT folder is what `PeftModel.save_pretrained` writes and
`PeftModel.from_pretrained(BertForSequenceClassification..., folder)` loads:

    adapter_config.json          the method's PeftConfig (peft_type,
                                 task_type SEQ_CLS, its settings) and
                                 modules_to_save: the classifier head
    adapter_model.safetensors    the method's weights and the head's, under
                                 PEFT's names ("base_model.model.bert.encoder.
                                 layer.0.attention.self.query.lora_A.weight",
                                 "base_model.model.classifier.weight"; prompt
                                 methods: "prompt_embeddings",
                                 "base_model.classifier.weight")

BertForSequenceClassification's classifier is this project's head: one dense
layer on the pooled [CLS] output. Which methods PEFT holds, and under which
names, each method says (`peft_type`, `to_library`, `from_library`). The
pooler and the LayerNorms are frozen in PEFT; a bundle that trains them is
refused, naming the way out.
"""

import re

from adapter_bert import library_folders
from adapter_bert import methods
from adapter_bert.methods import base
from adapter_bert.library_folders import FolderError

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAMES = ("adapter_model.safetensors", "adapter_model.bin")
# PEFT's prompt-learning methods save their weights under bare names.
_PROMPT_LEARNING = ("PREFIX_TUNING", "PROMPT_TUNING", "P_TUNING")
_MODEL_PREFIX = "base_model.model.bert."
_HEAD = re.compile(r"^base_model\.(?:model\.)?classifier\."
                   r"(?:modules_to_save\.[^.]+\.)?(weight|bias)$")


def export(bundle, output_dir, base_model, backbone_patch=False):
  """Writes a bundle as a PEFT folder, atomically.

  Args:
    bundle: a `bundles.Bundle`.
    output_dir: the folder to write.
    base_model: the Hugging Face model it goes on (recorded as
      base_model_name_or_path).
    backbone_patch: must be false: PEFT folders carry no backbone patch
      (that is AdapterHub's export).

  Returns:
    the files written, {name: bytes}.

  Raises:
    FolderError: the bundle's method has no PEFT form, or it trains backbone
      weights PEFT keeps frozen.
  """
  if backbone_patch:
    raise FolderError("--backbone_patch is AdapterHub's (--to=adapterhub)")
  (method, own, head, backbone) = library_folders.split_bundle(bundle)
  if method.peft_type is None:
    raise FolderError(
        "adapter bundle %s (--tuning_mode=%s) has no PEFT form: PEFT holds "
        "%s here; bottleneck adapters go to AdapterHub (--to=adapterhub)" % (
            bundle.path, method.name, _peft_method_names()))
  if backbone:
    raise FolderError(
        "adapter bundle %s trains %d backbone weights (e.g. %s) that PEFT "
        "keeps frozen; train with --train_pooler=false" % (
            bundle.path, len(backbone), sorted(backbone)[0]))
  config = bundle.bert_config()
  try:
    (settings, tensors) = method.to_library(own, config)
  except ValueError as e:
    raise FolderError("adapter bundle %s: %s" % (bundle.path, e))
  prompt = method.peft_type in _PROMPT_LEARNING
  files = {}
  weights = {(path if prompt else _MODEL_PREFIX + path): value
             for (path, value) in tensors.items()}
  head_prefix = "base_model.classifier." if prompt else (
      "base_model.model.classifier.")
  weights.update({head_prefix + k: v for (k, v) in head.items()})
  peft_config = dict(settings, peft_type=method.peft_type,
                     task_type="SEQ_CLS", base_model_name_or_path=base_model,
                     inference_mode=True, revision=None,
                     modules_to_save=["classifier", "score"])
  files[CONFIG_NAME] = library_folders.json_bytes(peft_config)
  files[WEIGHTS_NAMES[0]] = library_folders.safetensors_bytes(weights)
  library_folders.write_folder(output_dir, files)
  return files


def read(folder, config):
  """A PEFT folder as (method class, options, {variable name: array}).

  Args:
    folder: what `save_pretrained` wrote.
    config: the backbone's `modeling.BertConfig`.

  Raises:
    FolderError: another task type, a method or setting this project does
      not have, a tensor it cannot place (one line).
  """
  peft_config = library_folders.read_json(folder, CONFIG_NAME)
  if peft_config.get("task_type") != "SEQ_CLS":
    raise FolderError("%s: task_type %r; this project imports sequence "
                      "classification adapters (SEQ_CLS), whose head is "
                      "BERT's classifier" % (folder,
                                             peft_config.get("task_type")))
  peft_type = peft_config.get("peft_type")
  try:
    cls = methods.for_library("peft_type", peft_type, peft_config)
  except ValueError as e:
    raise FolderError("%s: %s" % (folder, e))
  head, tensors = {}, {}
  for (name, value) in library_folders.read_tensors(
      folder, WEIGHTS_NAMES).items():
    match = _HEAD.match(name)
    if match:
      head[match.group(1)] = value
    elif name.startswith(_MODEL_PREFIX):
      tensors[name[len(_MODEL_PREFIX):]] = value
    elif peft_type in _PROMPT_LEARNING and "." not in name:
      tensors[name] = value
    else:
      raise FolderError("%s: %s is neither the method's nor the classifier's "
                        "weight" % (folder, name))
  if sorted(head) != ["bias", "weight"]:
    raise FolderError("%s holds no classifier head (modules_to_save "
                      "classifier)" % folder)
  try:
    (options, values) = cls.from_library(peft_config, tensors, config)
  except ValueError as e:
    raise FolderError("%s: %s" % (folder, e))
  values.update(dict(zip(base.HEAD_VARIABLES, (head["weight"],
                                                head["bias"]))))
  return (cls, options, values)


def _peft_method_names():
  return ", ".join(c.name for c in methods.registry().values() if c.peft_type)
