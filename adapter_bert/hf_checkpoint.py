# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Converts a Hugging Face BERT folder into Google's original BERT layout.

The input folder holds `config.json`, `model.safetensors` and `vocab.txt` as
written by Hugging Face `transformers` (a bare `BertModel`, whose tensor names
have no prefix, or a `BertFor*` model, whose names start with `bert.`). The
output folder gets what `modeling.py` and the run_* scripts expect:

  bert_config.json
  vocab.txt
  bert_model.ckpt.index
  bert_model.ckpt.data-00000-of-00001

Only numpy and safetensors are needed to read the weights; TensorFlow is used
just to write the checkpoint. Every tensor is checked against the shapes that
config.json implies, so a mismatching folder fails loudly instead of producing
a checkpoint that silently restores garbage.

Usage:
  python scripts/convert_hf_checkpoint.py --hf_dir=DIR --output_dir=DIR
"""

import collections
import json
import os
import re

import numpy as np
import safetensors
from safetensors.numpy import load_file

from adapter_bert import errors

HF_CONFIG_NAME = "config.json"
HF_WEIGHTS_NAME = "model.safetensors"
VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "bert_config.json"
CHECKPOINT_PREFIX = "bert_model.ckpt"
CHECKPOINT_FILES = (CHECKPOINT_PREFIX + ".index",
                    CHECKPOINT_PREFIX + ".data-00000-of-00001")

# `BertFor*` models nest the encoder under this prefix; a bare `BertModel`
# does not.
_HF_PREFIX = "bert."

# Keys that define tensor shapes: without them nothing can be checked.
_REQUIRED_HF_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers",
                     "num_attention_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size")

# Hugging Face's BertConfig defaults for keys old config.json files may omit.
_HF_DEFAULTS = {
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
}

# HF "gelu" is the exact erf form; the tanh approximations are what Google's
# BERT (and this project) calls "gelu".
_HIDDEN_ACT = {
    "gelu": "gelu_exact",
    "gelu_new": "gelu",
    "gelu_pytorch_tanh": "gelu",
    "gelu_fast": "gelu",
    "relu": "relu",
}

# Keys of bert_config.json, in Google's order.
_GOOGLE_KEYS = ("attention_probs_dropout_prob", "hidden_act",
                "hidden_dropout_prob", "hidden_size", "initializer_range",
                "intermediate_size", "max_position_embeddings",
                "num_attention_heads", "num_hidden_layers", "type_vocab_size",
                "vocab_size", "layer_norm_eps")

# How one HF tensor becomes one Google variable.
_Target = collections.namedtuple("_Target", ["google_name", "transpose"])


def _fail(message):
  raise ValueError(message)


def _name_list(names, limit=10):
  """Joins names for an error message, eliding the tail of long lists."""
  names = list(names)
  text = ", ".join(names[:limit])
  if len(names) > limit:
    text += ", ... (%d more)" % (len(names) - limit)
  return text


def read_hf_config(path):
  """Reads config.json and checks that it describes a plain BERT encoder.

  Args:
    path: Path of a Hugging Face config.json.

  Returns:
    The config as a dict.

  Raises:
    ValueError: if the file is not valid JSON or not a BERT config.
    OSError: if the file cannot be read.
  """
  with open(path, "r", encoding="utf-8") as f:
    try:
      config = json.load(f)
    except json.JSONDecodeError as e:
      _fail("%s is not valid JSON: %s" % (path, e))
  if not isinstance(config, dict):
    _fail("%s does not hold a JSON object" % path)
  model_type = config.get("model_type")
  if model_type is not None and model_type != "bert":
    _fail("%s has model_type %r; only \"bert\" models can be converted" %
          (path, model_type))
  position_type = config.get("position_embedding_type", "absolute")
  if position_type != "absolute":
    _fail("%s has position_embedding_type %r; Google's BERT only has "
          "\"absolute\" position embeddings" % (path, position_type))
  missing = [key for key in _REQUIRED_HF_KEYS if key not in config]
  if missing:
    _fail("%s lacks required keys: %s" % (path, ", ".join(missing)))
  for key in _REQUIRED_HF_KEYS:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
      _fail("%s has %s=%r; expected a positive integer" % (path, key, value))
  return config


def hf_to_google_config(hf_config):
  """Translates a Hugging Face BERT config dict into bert_config.json keys.

  Args:
    hf_config: dict read from a Hugging Face config.json.

  Returns:
    An ordered dict with Google's bert_config.json keys.

  Raises:
    ValueError: for an activation this project does not implement, or an
      inconsistent head count.
  """
  merged = dict(_HF_DEFAULTS)
  merged.update(hf_config)
  hf_act = merged["hidden_act"]
  if not isinstance(hf_act, str) or hf_act not in _HIDDEN_ACT:
    _fail("unsupported hidden_act %r in config.json; supported: %s" %
          (hf_act, ", ".join(sorted(_HIDDEN_ACT))))
  if merged["hidden_size"] % merged["num_attention_heads"]:
    _fail("hidden_size %d is not a multiple of num_attention_heads %d" %
          (merged["hidden_size"], merged["num_attention_heads"]))
  merged["hidden_act"] = _HIDDEN_ACT[hf_act]
  config = collections.OrderedDict((key, merged[key]) for key in _GOOGLE_KEYS)
  # Every value a model needs (a dropout rate in [0, 1), ...), checked now:
  # not after the conversion, deep inside the first job.
  import modeling  # pylint: disable=g-import-not-at-top
  try:
    modeling.BertConfig.from_dict(config)
  except ValueError as e:
    _fail("config.json: %s" % e)
  return config


def _modules(config):
  """Lists the modules of a BERT encoder.

  Args:
    config: dict with Google bert_config.json keys.

  Returns:
    A list of (HF module path, Google variable scope, kind, dims) where kind is
    "embedding" (dims: rows, width), "linear" (dims: in, out) or "layer_norm"
    (dims: width,).
  """
  hidden = config["hidden_size"]
  inner = config["intermediate_size"]
  square = (hidden, hidden)
  modules = [
      ("embeddings.word_embeddings", "bert/embeddings/word_embeddings",
       "embedding", (config["vocab_size"], hidden)),
      ("embeddings.position_embeddings",
       "bert/embeddings/position_embeddings", "embedding",
       (config["max_position_embeddings"], hidden)),
      ("embeddings.token_type_embeddings",
       "bert/embeddings/token_type_embeddings", "embedding",
       (config["type_vocab_size"], hidden)),
      ("embeddings.LayerNorm", "bert/embeddings/LayerNorm", "layer_norm",
       (hidden,)),
  ]
  for i in range(config["num_hidden_layers"]):
    hf = "encoder.layer.%d." % i
    google = "bert/encoder/layer_%d/" % i
    for part in ("query", "key", "value"):
      modules.append((hf + "attention.self." + part,
                      google + "attention/self/" + part, "linear", square))
    modules += [
        (hf + "attention.output.dense", google + "attention/output/dense",
         "linear", square),
        (hf + "attention.output.LayerNorm",
         google + "attention/output/LayerNorm", "layer_norm", (hidden,)),
        (hf + "intermediate.dense", google + "intermediate/dense", "linear",
         (hidden, inner)),
        (hf + "output.dense", google + "output/dense", "linear",
         (inner, hidden)),
        (hf + "output.LayerNorm", google + "output/LayerNorm", "layer_norm",
         (hidden,)),
    ]
  modules.append(("pooler.dense", "bert/pooler/dense", "linear", square))
  return modules


def name_map(config):
  """Maps every accepted HF tensor name (without `bert.`) to its Google target.

  Old HF checkpoints name LayerNorm parameters gamma/beta instead of
  weight/bias, so both spellings map to the same variable.

  Args:
    config: dict with Google bert_config.json keys.

  Returns:
    dict from HF name to a `_Target(google_name, transpose)`.
  """
  mapping = {}
  for hf, google, kind, _ in _modules(config):
    if kind == "embedding":
      mapping[hf + ".weight"] = _Target(google, False)
    elif kind == "linear":
      # torch.nn.Linear stores [out, in]; a TF dense kernel is [in, out].
      mapping[hf + ".weight"] = _Target(google + "/kernel", True)
      mapping[hf + ".bias"] = _Target(google + "/bias", False)
    else:
      for hf_param, google_param in (("weight", "gamma"), ("gamma", "gamma"),
                                     ("bias", "beta"), ("beta", "beta")):
        mapping[hf + "." + hf_param] = _Target(google + "/" + google_param,
                                               False)
  return mapping


def expected_shapes(config):
  """Returns the Google variable name -> TF shape dict a config implies.

  Args:
    config: dict with Google bert_config.json keys.

  Returns:
    An ordered dict from Google variable name to its shape tuple, in the order
    Google's modeling.py creates the variables.
  """
  shapes = collections.OrderedDict()
  for _, google, kind, dims in _modules(config):
    if kind == "embedding":
      shapes[google] = dims
    elif kind == "linear":
      shapes[google + "/kernel"] = dims
      shapes[google + "/bias"] = dims[1:]
    else:
      shapes[google + "/gamma"] = dims
      shapes[google + "/beta"] = dims
  return shapes


def hf_module_path(scope):
  """A Google variable scope as the Hugging Face BertModel's module path:
  `bert/encoder/layer_3/attention/self/query` ->
  `encoder.layer.3.attention.self.query` (the two layouts name modules
  alike)."""
  if not scope.startswith("bert/"):
    raise ValueError("%s is not a scope of BERT" % scope)
  return re.sub(r"layer_(\d+)", r"layer.\1", scope[len("bert/"):]).replace(
      "/", ".")


def _is_skipped(name):
  """True for HF tensors that are deliberately not part of the Google layout."""
  # position_ids is a constant buffer (0..max_len-1), not a weight; `cls.*`
  # are the MLM/NSP pre-training heads, which fine-tuning never restores.
  return name == "embeddings.position_ids" or name.startswith("cls.")


def map_tensors(hf_tensors, config):
  """Renames, transposes and checks HF tensors against a Google config.

  Args:
    hf_tensors: dict from HF tensor name to numpy array.
    config: dict with Google bert_config.json keys.

  Returns:
    (google_tensors, skipped): an ordered dict from Google variable name to a
    float32 array in TF layout, and the sorted HF names that were skipped.

  Raises:
    ValueError: for unmappable, duplicate, missing, non-float or misshapen
      tensors.
  """
  mapping = name_map(config)
  shapes = expected_shapes(config)
  found = {}  # Google name -> (HF name, array)
  skipped, unmapped = [], []
  for hf_name in sorted(hf_tensors):
    short = hf_name[len(_HF_PREFIX):] if hf_name.startswith(
        _HF_PREFIX) else hf_name
    if _is_skipped(short):
      skipped.append(hf_name)
      continue
    target = mapping.get(short)
    if target is None:
      unmapped.append(hf_name)
      continue
    if target.google_name in found:
      _fail("tensors %s and %s both map to %s" %
            (found[target.google_name][0], hf_name, target.google_name))
    value = hf_tensors[hf_name]
    if not np.issubdtype(value.dtype, np.floating):
      _fail("tensor %s has dtype %s; expected a float tensor" %
            (hf_name, value.dtype))
    expected = shapes[target.google_name]
    hf_expected = expected[::-1] if target.transpose else expected
    if tuple(value.shape) != hf_expected:
      _fail("tensor %s (-> %s) has shape %s, but config.json implies %s" %
            (hf_name, target.google_name, tuple(value.shape), hf_expected))
    if target.transpose:
      value = value.T
    found[target.google_name] = (hf_name,
                                 np.ascontiguousarray(value, np.float32))

  if unmapped:
    _fail("could not map %d tensors to Google BERT names (config.json says "
          "num_hidden_layers=%d): %s" % (len(unmapped),
                                         config["num_hidden_layers"],
                                         _name_list(unmapped)))
  missing = [name for name in shapes if name not in found]
  if any(name.startswith("bert/pooler/") for name in missing):
    _fail("model.safetensors has no pooler weights (pooler.dense.weight/bias)"
          "; Google's BERT layout always has a pooler, so save the HF model "
          "with add_pooling_layer=True")
  if missing:
    # Name the HF tensor too: that is what the user will look for in the file.
    hf_names = {}
    for hf_name, target in mapping.items():
      hf_names.setdefault(target.google_name, hf_name)
    _fail("model.safetensors lacks %d tensors that config.json implies: %s" %
          (len(missing), _name_list("%s (HF %s)" % (name, hf_names[name])
                                    for name in missing)))
  google_tensors = collections.OrderedDict(
      (name, found[name][1]) for name in shapes)
  return google_tensors, skipped


def count_vocab_lines(path):
  """Counts vocabulary entries the way Google's tokenization.load_vocab does."""
  with open(path, "rb") as f:
    data = f.read()
  # load_vocab reads '\n'-terminated lines; a last line without '\n' counts.
  return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _load_weights(path):
  """Loads model.safetensors into numpy arrays, with a readable error."""
  try:
    return load_file(path)
  except (safetensors.SafetensorError, TypeError) as e:
    # numpy has no bfloat16, and corrupt files fail inside the Rust reader.
    _fail("cannot read %s: %s" % (path, e))


def _write_checkpoint(google_tensors, ckpt_prefix):
  """Writes a TF1 checkpoint holding exactly `google_tensors`."""
  # Imported here so that argument errors are reported without TensorFlow's
  # slow and noisy start-up.
  from adapter_bert import bundles  # pylint: disable=g-import-not-at-top
  bundles.write_checkpoint(google_tensors, ckpt_prefix)


def convert(hf_dir, output_dir):
  """Converts a Hugging Face BERT folder into Google's BERT layout.

  All inputs are checked before anything is written. Outputs are written into
  a temporary folder inside `output_dir` and then moved into place, so a
  failed conversion leaves no partial checkpoint behind.

  Args:
    hf_dir: folder with config.json, model.safetensors and vocab.txt.
    output_dir: folder to write the Google layout into.

  Returns:
    dict with `num_tensors`, `num_parameters`, `skipped` (HF names left out on
    purpose), `output_files` (paths written) and `config` (bert_config.json).

  Raises:
    ValueError: if the input is not a convertible BERT model.
    OSError: if files cannot be read or written.
  """
  if not os.path.isdir(hf_dir):
    raise FileNotFoundError("--hf_dir %s is not a folder" % hf_dir)
  paths = {name: os.path.join(hf_dir, name)
           for name in (HF_CONFIG_NAME, HF_WEIGHTS_NAME, VOCAB_NAME)}
  missing = [name for name, path in paths.items() if not os.path.isfile(path)]
  if missing:
    raise FileNotFoundError("missing in --hf_dir %s: %s" %
                            (hf_dir, ", ".join(missing)))

  config = hf_to_google_config(read_hf_config(paths[HF_CONFIG_NAME]))
  vocab_lines = count_vocab_lines(paths[VOCAB_NAME])
  if vocab_lines != config["vocab_size"]:
    _fail("%s has %d lines but %s says vocab_size=%d" %
          (paths[VOCAB_NAME], vocab_lines, paths[HF_CONFIG_NAME],
           config["vocab_size"]))
  google_tensors, skipped = map_tensors(
      _load_weights(paths[HF_WEIGHTS_NAME]), config)

  # TensorFlow loads only now: bad input is reported without its slow and
  # noisy start-up. Outputs go through tf.io.gfile (any TF file system).
  from adapter_bert import fileio  # pylint: disable=g-import-not-at-top
  import tensorflow.compat.v1 as tf  # pylint: disable=g-import-not-at-top
  tmp_dir = fileio.temporary_name(os.path.join(output_dir, "convert"))
  tf.io.gfile.makedirs(tmp_dir)
  try:
    fileio.write_text(os.path.join(tmp_dir, CONFIG_NAME),
                      json.dumps(config, indent=2) + "\n")
    tf.io.gfile.copy(paths[VOCAB_NAME], os.path.join(tmp_dir, VOCAB_NAME))
    _write_checkpoint(google_tensors, os.path.join(tmp_dir, CHECKPOINT_PREFIX))
    names = list(CHECKPOINT_FILES) + [VOCAB_NAME, CONFIG_NAME]
    for name in names:
      if not tf.io.gfile.exists(os.path.join(tmp_dir, name)):
        raise OSError("TensorFlow did not write %s" % name)
    # The config goes last: its presence is what marks a finished folder.
    output_files = fileio.move_files_into(tmp_dir, output_dir,
                                          last=CONFIG_NAME)
  except tf.errors.OpError as e:
    raise OSError(errors.one_line(e))
  finally:
    fileio.remove_quietly(tmp_dir)

  return {
      "num_tensors": len(google_tensors),
      "num_parameters": int(sum(v.size for v in google_tensors.values())),
      "skipped": skipped,
      "output_files": output_files,
      "config": config,
  }

