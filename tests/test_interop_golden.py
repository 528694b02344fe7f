"""Bundles to and from the real AdapterHub 1.3.0 and PEFT 0.21.2, without
PyTorch: folders those libraries saved on a tiny random BERT, with the logits
they computed (tests/data/interop, made by make_golden.py with the PyTorch
peer), import here and give the same logits; the same weights exported here
equal the libraries' files tensor by tensor, and their configurations entry
by entry."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import REPO_ROOT, assert_input_error
from adapter_bert import adapterhub
from adapter_bert import bundles
from adapter_bert import conversion
from adapter_bert import hf_checkpoint
from adapter_bert import library_folders
from adapter_bert import multitask
from adapter_bert import peft_folders
from adapter_bert import torch_files
import modeling

DATA = os.path.join(REPO_ROOT, "tests", "data", "interop")

# case: (library, method, options it must import as)
CASES = {
    "houlsby": ("adapterhub", "adapters",
                {"adapter_size": 8, "adapter_activation": "gelu",
                 "adapter_placement": "both", "train_layernorm": False}),
    "houlsby_noln_gelu": ("adapterhub", "adapters",
                          {"adapter_size": 4,
                           "adapter_activation": "gelu_exact"}),
    "pfeiffer": ("adapterhub", "adapters",
                 {"adapter_size": 8, "adapter_placement": "ffn",
                  "adapter_activation": "relu", "adapter_ln_before": True}),
    "parallel": ("adapterhub", "parallel_adapters",
                 {"adapter_size": 8, "adapter_scale": 4.0,
                  "adapter_placement": "ffn", "adapter_activation": "relu"}),
    "lora": ("peft", "lora", {"lora_rank": 4, "lora_alpha": 8.0,
                              "lora_targets": "query,value"}),
    "lora_all": ("peft", "lora",
                 {"lora_rank": 2, "lora_alpha": 6.0, "lora_dropout": 0.1,
                  "lora_targets": "query,key,value,attention_output,"
                                  "intermediate,output"}),
    "ia3": ("peft", "ia3", {}),
    "prefix": ("peft", "prefix", {"prefix_length": 3}),
}


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
  """The golden files' HF BERT in this project's layout."""
  folder = str(tmp_path_factory.mktemp("golden_bert"))
  hf_checkpoint.convert(os.path.join(DATA, "tiny_bert"), folder)
  return multitask.Backbone(os.path.join(folder, "bert_config.json"),
                            os.path.join(folder, "vocab.txt"),
                            os.path.join(folder, "bert_model.ckpt"))


def import_case(case, backbone, bundle_dir, library=None):
  library = library or CASES[case][0]
  conversion.import_folder(library, os.path.join(DATA, case), backbone,
                           "MRPC", 16, True, bundle_dir)
  return bundles.read_bundle(bundle_dir)


def served_probabilities(backbone, bundle_dir, reference):
  """The bundle on the backbone through the multi-task predictor's graph,
  fed the golden token ids."""
  config = modeling.BertConfig.from_json_file(
      backbone.bert_config_file)
  predictor = multitask.MultiTaskPredictor(config, backbone.init_checkpoint,
                                           backbone.vocab_file)
  task = predictor.add_task(bundle_dir)
  entry = predictor.tasks[task]
  feed = dict(zip(entry["inputs"], (reference["input_ids"],
                                    reference["attention_mask"],
                                    reference["token_type_ids"])))
  return predictor.session.run(entry["outputs"]["probabilities"], feed)


def softmax(logits):
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_saved_folder_imports_with_the_library_s_outputs(
    case, tiny_backbone, tmp_path):
  bundle = import_case(case, tiny_backbone, str(tmp_path / "bundle"))
  (_, method_name, options) = CASES[case]
  method = bundle.tuning_method()
  assert method.name == method_name
  for (name, value) in options.items():
    assert method[name] == value, (name, method.settings)
  reference = dict(np.load(os.path.join(DATA, case + ".npz")))
  probabilities = served_probabilities(tiny_backbone, str(tmp_path / "bundle"),
                                       reference)
  np.testing.assert_allclose(probabilities, softmax(reference["logits"]),
                             atol=1e-5)


def library_files(case):
  """The tensors and configurations the library wrote for `case`."""
  folder = os.path.join(DATA, case)
  (library, _, _) = CASES[case]
  names = (adapterhub.WEIGHTS_NAMES + adapterhub.HEAD_WEIGHTS_NAMES
           if library == "adapterhub" else peft_folders.WEIGHTS_NAMES)
  tensors = {}
  for name in os.listdir(folder):
    if name in names:
      tensors.update(library_folders.read_tensors(folder, (name,)))
  configs = {name: json.load(open(os.path.join(folder, name)))
             for name in os.listdir(folder) if name.endswith(".json")}
  return tensors, configs


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_export_equals_what_the_library_saved(case, tiny_backbone,
                                                 tmp_path):
  import_case(case, tiny_backbone, str(tmp_path / "bundle"))
  (library, _, _) = CASES[case]
  conversion.export(library, str(tmp_path / "bundle"), str(tmp_path / "out"),
                    base_model="tiny")
  (theirs, their_configs) = library_files(case)
  ours = {}
  for name in os.listdir(str(tmp_path / "out")):
    if name.endswith((".bin", ".safetensors")):
      ours.update(library_folders.read_tensors(str(tmp_path / "out"),
                                               (name,)))
  assert sorted(ours) == sorted(theirs)
  for (name, value) in theirs.items():
    assert ours[name].shape == value.shape, name
    np.testing.assert_array_equal(ours[name], value, err_msg=name)
  for (name, theirs_config) in their_configs.items():
    ours_config = json.load(open(str(tmp_path / "out" / name)))
    if library == "adapterhub":
      # The name differs: AdapterHub's is the user's, ours the task's.
      for key in ("hidden_size", "model_class", "model_type", "version"):
        assert ours_config[key] == theirs_config[key], key
      theirs_config, ours_config = theirs_config["config"], ours_config[
          "config"]
    for (key, value) in ours_config.items():
      # Ours name the task's labels and its base model; PEFT's target
      # patterns are written as the exact regexes of our projections.
      if key not in ("base_model_name_or_path", "target_modules",
                     "feedforward_modules", "modules_to_save", "label2id"):
        assert theirs_config.get(key) == value, (name, key)


def set_entry(folder, file_name, path, value):
  """Sets one entry of a folder's JSON file: path is its keys, outermost
  first."""
  file_path = os.path.join(folder, file_name)
  with open(file_path) as f:
    document = json.load(f)
  inner = document
  for key in path[:-1]:
    inner = inner[key]
  inner[path[-1]] = value
  with open(file_path, "w") as f:
    json.dump(document, f)


def add_pooler_lora(folder):
  """LoRA on the pooler too: PEFT allows it, this project's LoRA not."""
  path = os.path.join(folder, "adapter_model.safetensors")
  tensors = library_folders.read_tensors(folder, (os.path.basename(path),))
  tensors["base_model.model.bert.pooler.dense.lora_A.weight"] = np.zeros(
      (4, 32), np.float32)
  with open(path, "wb") as f:
    f.write(library_folders.safetensors_bytes(tensors))


def truncate_weights(folder):
  with open(os.path.join(folder, "pytorch_adapter.bin"), "r+b") as f:
    f.truncate(100)


# (case, how the folder is changed, fragments of the one-line refusal)
REFUSED = {
    "lora on the pooler": ("lora", add_pooler_lora,
                           ("pooler.dense", "encoder layers' projections")),
    "dora": ("lora", lambda f: set_entry(f, "adapter_config.json",
                                         ["use_dora"], True),
             ("use_dora=True",)),
    "another task type": ("ia3", lambda f: set_entry(
        f, "adapter_config.json", ["task_type"], "CAUSAL_LM"), ("SEQ_CLS",)),
    "a 2-layer head": ("houlsby", lambda f: set_entry(
        f, "head_config.json", ["config", "layers"], 2),
                       ("layers=1, use_pooler=True",)),
    "a parallel adapter after the LayerNorm": (
        "parallel", lambda f: set_entry(f, "adapter_config.json",
                                        ["config", "original_ln_before"],
                                        True), ("original_ln_before=True",)),
    "another architecture": ("houlsby", lambda f: set_entry(
        f, "adapter_config.json", ["config", "architecture"], "lora"),
                             ("'lora'", "known: bottleneck")),
    "damaged weights": ("houlsby", truncate_weights,
                        ("pytorch_adapter.bin",)),
}


@pytest.mark.parametrize("refusal", sorted(REFUSED))
def test_what_cannot_be_represented_is_refused_in_one_line(
    refusal, tiny_backbone, tmp_path):
  (case, change, fragments) = REFUSED[refusal]
  folder = str(tmp_path / case)
  shutil.copytree(os.path.join(DATA, case), folder)
  change(folder)
  assert_input_error(lambda: conversion.import_folder(
      CASES[case][0], folder, tiny_backbone, "MRPC", 16, True,
      str(tmp_path / "bundle")), *fragments)
  assert not os.path.exists(str(tmp_path / "bundle"))


def test_a_head_of_another_task_is_refused(tiny_backbone, tmp_path):
  assert_input_error(lambda: conversion.import_folder(
      "peft", os.path.join(DATA, "lora"), tiny_backbone, "MNLI", 16, True,
      str(tmp_path / "bundle")), "head has 2 outputs", "MNLI has 3 labels")


def test_torch_files_round_trip_what_torch_writes():
  """The reader takes AdapterHub's real file; the writer's bytes read back
  to the same tensors."""
  real = torch_files.read_state_dict(
      os.path.join(DATA, "houlsby", "pytorch_adapter.bin"))
  assert len(real) == 16 and all(v.dtype == np.float32 for v in real.values())
  again = torch_files.read_state_dict_bytes(
      torch_files.state_dict_bytes(real), "written")
  assert list(again) == list(real)
  for (name, value) in real.items():
    np.testing.assert_array_equal(again[name], value)


def test_trained_layer_norms_go_to_adapterhub_only_as_a_patch(tiny_backbone,
                                                              tmp_path):
  """An adapters bundle with its own LayerNorms: refused without
  --backbone_patch, exported with it, and imported back whole."""
  import test_mixed_batch  # pylint: disable=g-import-not-at-top
  paths = test_mixed_batch.build_bundles(tiny_backbone, str(tmp_path / "b"))
  bundle = bundles.read_bundle(paths["CoLA"])  # adapters + LayerNorms
  assert bundle.tuning_method()["train_layernorm"]
  out = str(tmp_path / "out")
  assert_input_error(lambda: conversion.export(
      "adapterhub", paths["CoLA"], out, "tiny"), "--backbone_patch",
                     "LayerNorm", "adapters:noln")
  assert not os.path.exists(out)
  files = conversion.export("adapterhub", paths["CoLA"], out, "tiny",
                            backbone_patch=True)
  assert adapterhub.PATCH_NAME in files
  patch = library_folders.read_tensors(out, (adapterhub.PATCH_NAME,))
  assert "bert.encoder.layer.1.output.LayerNorm.weight" in patch
  assert len(patch) == 2 * (1 + 2 * 2)  # gamma, beta: embeddings + 2 a layer
  conversion.import_folder("adapterhub", out, tiny_backbone, "CoLA", 16, True,
                           str(tmp_path / "again"))
  again = bundles.read_bundle(str(tmp_path / "again"))
  assert again.tuning_method().settings == bundle.tuning_method().settings
  assert sorted(again.values) == sorted(bundle.values)
  for (name, value) in bundle.values.items():
    np.testing.assert_array_equal(again.values[name], value, err_msg=name)
  # The wrong library for a method: one line naming the right one.
  assert_input_error(lambda: conversion.export(
      "peft", paths["CoLA"], str(tmp_path / "p"), "tiny"),
                     "no PEFT form", "--to=adapterhub")
