# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Adapter bundles: what one task adds to a frozen backbone, on its own.

A bundle is a folder:

    adapter_bundle.json                 task (and its language), labels,
                                        max_seq_length, do_lower_case, tuning
                                        method and adapter settings, BERT
                                        config, backbone fingerprint
    variables.index                     a TF checkpoint holding exactly the
    variables.data-00000-of-00001       variables the tuning method trained

What it holds is what the tuning method trains (`TuningMethod.trains`); with
`--tuning_mode=adapters` that is the adapters, every LayerNorm and
the classifier head (2.4M parameters, ~9.7 MB for BERT-base with adapters of
size 64); no frozen weight and no optimizer state. The fingerprint is a hash of
the frozen weights' names, shapes and values, so a bundle is never silently
loaded onto another backbone.

This module owns the metadata: `export_bundle` is the one place that writes
it and `read_bundle` the one place that reads it; everything else asks the
`Bundle` (`bundle.settings()`, `bundle.task()`, `bundle.tuning_method()`).
Every file goes through `tf.io.gfile`, so bundles may live on `gs://`.
"""

import collections
import hashlib
import json
import os

import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
import modeling

BUNDLE_JSON = "adapter_bundle.json"
# How a bundle's rows were made into features: serving it again needs the
# same (`Bundle.settings`), and the same vocabulary (its sha256; `check_vocab`).
FeatureSettings = collections.namedtuple(
    "FeatureSettings", ["max_seq_length", "do_lower_case", "vocab_sha256"],
    defaults=(None,))
# What a bundle says of its task and model beside its weights.
Description = collections.namedtuple(
    "Description", ["task", "bert_config", "feature_settings"])
VARIABLES_PREFIX = "variables"
BUNDLE_FORMAT = "adapter-bert-bundle"
# 2 added the task's language, 3 the tuning method's options, 4 records
# every option of the method under "options" (3 and older kept the adapters'
# under "adapter"; the method reads both, see `options_from_record`), 5 the
# vocabulary's sha256.
BUNDLE_VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)

# Keys every readable adapter_bundle.json has.
_REQUIRED_KEYS = ("task_name", "tuning_mode", "backbone_fingerprint",
                  "backbone_variables", "variables", "max_seq_length",
                  "do_lower_case")


def _is_int(value):
  return isinstance(value, int) and not isinstance(value, bool)


def _is_shape(value):
  return isinstance(value, list) and all(_is_int(d) and d >= 0 for d in value)


# adapter_bundle.json's fields and the values they take, checked on reading
# so that an edited or damaged file is one clear line, not a TypeError deep in
# the model.
_FIELD_TYPES = (
    ("task_name", lambda v: isinstance(v, str), "a task name"),
    ("tuning_mode", lambda v: isinstance(v, str), "a tuning mode"),
    ("backbone_fingerprint", lambda v: isinstance(v, str), "a sha256"),
    ("backbone_variables",
     lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
     "a list of variable names"),
    ("variables",
     lambda v: isinstance(v, dict) and v and all(
         isinstance(n, str) and _is_shape(s) for (n, s) in v.items()),
     "{variable name: shape}"),
    ("max_seq_length", lambda v: _is_int(v) and v >= 3, "an integer >= 3"),
    ("do_lower_case", lambda v: isinstance(v, bool), "true or false"),
    ("vocab_sha256", lambda v: v is None or (
        isinstance(v, str) and len(v) == 64), "null or a sha256"),
    ("bert_config", lambda v: isinstance(v, dict), "a BERT config object"),
    ("adapter", lambda v: v is None or (isinstance(v, dict) and all(
        k in v for k in ("size", "activation", "init_scale", "placement"))),
     "null or adapter settings (versions 1 to 3)"),
    ("options", lambda v: isinstance(v, dict), "an object of options"),
    ("language", lambda v: v is None or isinstance(v, str),
     "null or a language code"),
    ("global_step", lambda v: _is_int(v) and v >= 0, "a step count"),
    ("num_parameters", lambda v: _is_int(v) and v >= 0, "a count"),
)


class Bundle(object):
  """A bundle read from disk.

  Attributes:
    path: the bundle folder.
    metadata: the parsed adapter_bundle.json.
    checkpoint: prefix of its variables checkpoint.
    values: {name: numpy array} of every variable it holds.
  """

  def __init__(self, path, metadata, checkpoint, values):
    self.path = path
    self.metadata = metadata
    self.checkpoint = checkpoint
    self.values = values

  @property
  def task_name(self):
    return self.metadata["task_name"]

  @property
  def tuning_mode(self):
    return self.metadata["tuning_mode"]

  @property
  def language(self):
    """The task's language (XNLI), or None."""
    return self.metadata.get("language")

  @property
  def global_step(self):
    return int(self.metadata.get("global_step", 0))

  @property
  def num_parameters(self):
    return int(self.metadata.get("num_parameters", 0))

  def task(self):
    """The glue.Task it was trained for, in its language."""
    return glue.get_task(self.task_name, language=self.language)

  def tuning_method(self):
    """The `TuningMethod` it was trained with, with its settings."""
    return methods.from_dict(self.metadata, num_layers=self.metadata.get(
        "bert_config", {}).get("num_hidden_layers"))

  def bert_config(self):
    """The `modeling.BertConfig` of the backbone it was trained on."""
    return modeling.BertConfig.from_dict(self.metadata["bert_config"])

  def settings(self):
    """The run settings it was trained with, by run_classifier flag name.

    These are what serving it again needs; they replace the user's flags.
    """
    settings = {"max_seq_length": self.metadata["max_seq_length"],
                "do_lower_case": self.metadata["do_lower_case"]}
    # Every method option: the bundle's method's values, None for the rest.
    settings.update(methods.settings_record(self.tuning_method()))
    if self.language is not None:
      settings["xnli_language"] = self.language
    return settings


def model_variable_names(reader):
  """The model's variables in a checkpoint: no Adam slots, no global step."""
  return sorted(
      name for name in reader.get_variable_to_shape_map()
      if not name.endswith(("/adam_m", "/adam_v")) and name != "global_step")


def non_finite_names(values):
  """The names in {name: numpy array} whose float values are not all
  finite (NaN or Inf): a diverged run's weights."""
  return sorted(name for (name, value) in values.items()
                if np.issubdtype(np.asarray(value).dtype, np.floating) and
                not np.all(np.isfinite(value)))


class DamagedCheckpoint(ValueError):
  """A checkpoint whose files cannot be read back (checksum, truncation)."""


def check_finite_checkpoint(checkpoint_path, what):
  """Refuses a checkpoint holding NaN or Inf in any float tensor.

  Raises:
    ValueError: one line naming `what`, the checkpoint and a tensor.
  """
  try:
    reader = fileio.checkpoint_reader(checkpoint_path)
    values = {name: reader.get_tensor(name) for name in
              reader.get_variable_to_shape_map()}
  except (tf.errors.OpError, ValueError, IndexError) as e:
    # A flipped bit fails the shard's checksum (DataLossError); a truncated
    # shard reads short (IndexError).
    raise DamagedCheckpoint(
        "%s: checkpoint %s is damaged; delete it (and its line in the "
        "folder's `checkpoint` file) to go back to the one before (%s)" % (
            what, checkpoint_path, errors.one_line(e, 120)))
  bad = non_finite_names(values)
  if bad:
    raise ValueError("%s: checkpoint %s holds NaN or Inf in %d tensors (e.g. "
                     "%s): it is the state of a diverged run" % (
                         what, checkpoint_path, len(bad), bad[0]))


def backbone_fingerprint(reader, names):
  """sha256 over the names, shapes, dtypes and values of `names`.

  Args:
    reader: a `fileio.checkpoint_reader`.
    names: the frozen variables to hash.

  Raises:
    ValueError: a name is not in the checkpoint.
  """
  available = reader.get_variable_to_shape_map()
  hasher = hashlib.sha256()
  for name in sorted(names):
    if name not in available:
      raise ValueError("it has no variable %s" % name)
    value = np.ascontiguousarray(reader.get_tensor(name))
    hasher.update(("%s|%s|%s\n" % (name, value.dtype.str, value.shape))
                  .encode("utf-8"))
    hasher.update(value.tobytes())
  return hasher.hexdigest()


def _trained_values(reader, checkpoint_path, method, trained):
  """{name: array} of the `trained` variables; one-line ValueError if one is
  missing or not finite."""
  missing = [n for n in trained if not reader.has_tensor(n)]
  if missing:
    raise ValueError("checkpoint %s lacks %d variables trained in tuning mode "
                     "%r, e.g. %s" % (checkpoint_path, len(missing),
                                      method.name, missing[0]))
  values = {name: reader.get_tensor(name) for name in trained}
  bad = non_finite_names(values)
  if bad:
    raise ValueError("checkpoint %s holds NaN or Inf in %d trained variables "
                     "(e.g. %s): a diverged run is not exported" % (
                         checkpoint_path, len(bad), bad[0]))
  return values


def export_bundle(checkpoint_path, bundle_dir, method, task, bert_config,
                  feature_settings, model_variables=None,
                  backbone_checkpoint=None):
  """Writes the bundle of a training checkpoint, atomically.

  Args:
    checkpoint_path: a checkpoint prefix, or a folder (its latest checkpoint).
    bundle_dir: the bundle folder to write (replaced if it exists).
    method: the `TuningMethod` it was trained with.
    task: the `glue.Task` (its language is recorded).
    bert_config: the backbone's `modeling.BertConfig`.
    feature_settings: the `FeatureSettings` it was trained with.
    model_variables: (optional) the model's variable names; default: the
      model variables the checkpoint holds.
    backbone_checkpoint: (optional) where the frozen variables are, for a
      compact training checkpoint (one that holds only the trained ones).

  Returns:
    dict with the bundle's path, size in bytes and number of parameters.

  Raises:
    ValueError: the checkpoint cannot be read or holds no trained variable.
  """
  checkpoint_path = resolve_checkpoint(checkpoint_path)
  reader = fileio.checkpoint_reader(checkpoint_path)
  names = sorted(model_variables if model_variables is not None else
                 model_variable_names(reader))
  trained = method.bundle_variables(names)
  frozen = [n for n in names if n not in trained]
  if not trained:
    raise ValueError("checkpoint %s holds no variable trained in tuning mode "
                     "%r" % (checkpoint_path, method.name))
  values = _trained_values(reader, checkpoint_path, method, trained)
  backbone_reader = reader
  if not all(reader.has_tensor(n) for n in frozen):
    # A compact training checkpoint: the frozen weights are the backbone's.
    if not backbone_checkpoint:
      raise ValueError("checkpoint %s holds only trained variables; its frozen "
                       "weights are in the backbone checkpoint it was trained "
                       "on, which was not given" % checkpoint_path)
    backbone_reader = fileio.checkpoint_reader(backbone_checkpoint)
  global_step = (int(reader.get_tensor("global_step"))
                 if reader.has_tensor("global_step") else 0)
  return _write_bundle(bundle_dir, method, values, frozen, backbone_reader,
                       Description(task, bert_config, feature_settings),
                       {"global_step": global_step,
                        "source_checkpoint": checkpoint_path})


def write_bundle_of_values(bundle_dir, method, values, model_shapes,
                           backbone_checkpoint, description, source):
  """Writes a bundle of weights made elsewhere (another library's adapter,
  converted), atomically, checked like a trained one.

  Args:
    bundle_dir: the bundle folder to write.
    method: the `TuningMethod` the values are of.
    values: {name: array}: exactly the variables the method trains.
    model_shapes: {name: shape} of the model it describes
      (`classifier.describe_model`).
    backbone_checkpoint: the frozen weights the values go on.
    description: a `Description`: the task, the backbone's
      `modeling.BertConfig`, the `FeatureSettings`.
    source: what the values came from, recorded as "source".

  Raises:
    ValueError: a value the model does not have, does not train, or of
      another shape; a trained variable without a value; NaN or Inf.
  """
  trained = method.bundle_variables(list(model_shapes))
  for (name, value) in sorted(values.items()):
    if name not in model_shapes or name not in trained:
      raise ValueError("%s is no variable that --tuning_mode=%s trains" %
                       (name, method.label()))
    if list(value.shape) != list(model_shapes[name]):
      raise ValueError("%s has shape %s, the model needs %s" %
                       (name, list(value.shape), list(model_shapes[name])))
  missing = [n for n in trained if n not in values]
  if missing:
    raise ValueError("no value for %d trained variables, e.g. %s" %
                     (len(missing), missing[0]))
  bad = non_finite_names(values)
  if bad:
    raise ValueError("NaN or Inf in %d variables (e.g. %s)" % (len(bad),
                                                                bad[0]))
  values = {n: np.asarray(v, np.float32) for (n, v) in values.items()}
  frozen = [n for n in model_shapes if n not in values]
  return _write_bundle(bundle_dir, method, values, frozen,
                       fileio.checkpoint_reader(backbone_checkpoint),
                       description, {"global_step": 0, "source": source})


def _write_bundle(bundle_dir, method, values, frozen, backbone_reader,
                  description, origin):
  """The bundle's files, atomically: `values` and their metadata, `origin`
  ({key: value}) saying where they came from."""
  (stored_method, values) = method.stored(values)
  (task, bert_config, feature_settings) = description

  metadata = stored_method.to_dict()
  if stored_method.to_dict() != method.to_dict():
    metadata["trained_as"] = method.to_dict()
  metadata.update(origin)
  metadata.update({
      "format": BUNDLE_FORMAT,
      "version": BUNDLE_VERSION,
      "task_name": task.name,
      "language": task.language,
      "labels": task.get_labels(),
      "max_seq_length": int(feature_settings.max_seq_length),
      "do_lower_case": bool(feature_settings.do_lower_case),
      "vocab_sha256": feature_settings.vocab_sha256,
      "bert_config": bert_config.to_dict(),
      "backbone_fingerprint": backbone_fingerprint(backbone_reader, frozen),
      "backbone_variables": frozen,
      "variables": {name: list(value.shape)
                    for (name, value) in sorted(values.items())},
      "num_parameters": int(sum(v.size for v in values.values())),
  })
  with fileio.atomic_directory(bundle_dir, marker=BUNDLE_JSON) as temp_dir:
    write_checkpoint(values, os.path.join(temp_dir, VARIABLES_PREFIX))
    fileio.write_json(os.path.join(temp_dir, BUNDLE_JSON), metadata)
  return {"path": bundle_dir, "bytes": fileio.directory_size(bundle_dir),
          "num_parameters": metadata["num_parameters"]}


def write_checkpoint(values, prefix):
  """Writes a TF1 checkpoint holding exactly `values` ({name: numpy array}).

  Values are fed through placeholders, so none is baked into the graph (whose
  GraphDef is capped at 2 GB). adapter_bert.hf_checkpoint writes with this too.
  """
  with tf.Graph().as_default():
    feeds = {}
    variables = {}
    for (name, value) in sorted(values.items()):
      placeholder = tf.placeholder(tf.as_dtype(value.dtype), shape=value.shape)
      variables[name] = tf.Variable(placeholder, name=name, trainable=False)
      feeds[placeholder] = value
    saver = tf.train.Saver(variables)
    with tf.Session() as session:
      session.run(tf.variables_initializer(list(variables.values())),
                  feed_dict=feeds)
      saver.save(session, prefix, write_meta_graph=False, write_state=False)


def resolve_checkpoint(path):
  """A checkpoint prefix from a prefix or a folder holding checkpoints."""
  # A prefix is known by its .index file: on some TensorFlow file systems
  # (ram://) every path answers isdir().
  if tf.io.gfile.exists(path + ".index"):
    return path
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if not latest:
      raise ValueError("%s holds no checkpoint" % path)
    return latest
  return path


def read_bundle(bundle_dir):
  """Reads and checks a bundle; every problem is a one-line ValueError.

  A bundle of a whole-model tuning method (`full`) is refused: it is a whole
  model, not something to put on a backbone.
  """
  json_path = os.path.join(bundle_dir, BUNDLE_JSON)
  prefix = os.path.join(bundle_dir, VARIABLES_PREFIX)
  if not tf.io.gfile.isdir(bundle_dir):
    raise ValueError("adapter bundle %s: no such folder" % bundle_dir)
  try:
    metadata = json.loads(fileio.read_text(json_path))
  except (tf.errors.OpError, OSError) as e:
    raise ValueError("adapter bundle %s: cannot read %s (%s)" %
                     (bundle_dir, BUNDLE_JSON, errors.one_line(e)))
  except ValueError as e:
    raise ValueError("adapter bundle %s: %s is corrupt (%s)" %
                     (bundle_dir, BUNDLE_JSON, errors.one_line(e)))
  if not isinstance(metadata, dict) or metadata.get("format") != BUNDLE_FORMAT:
    raise ValueError("adapter bundle %s: %s is not an adapter-bert bundle" %
                     (bundle_dir, BUNDLE_JSON))
  if metadata.get("version") not in READABLE_VERSIONS:
    raise ValueError("adapter bundle %s: version %r, this code reads %s" %
                     (bundle_dir, metadata.get("version"),
                      " and ".join(str(v) for v in READABLE_VERSIONS)))
  for key in _REQUIRED_KEYS:
    if key not in metadata:
      raise ValueError("adapter bundle %s: %s lacks %r" %
                       (bundle_dir, BUNDLE_JSON, key))
  for (key, expected, what) in _FIELD_TYPES:
    value = metadata.get(key)
    if (key in metadata or key in _REQUIRED_KEYS) and not expected(value):
      raise ValueError("adapter bundle %s: %s has %s %r, not %s" % (
          bundle_dir, BUNDLE_JSON, key, value, what))
  try:
    method_class = methods.get(metadata["tuning_mode"])
  except ValueError as e:
    raise ValueError("adapter bundle %s: %s" % (bundle_dir, e))
  if method_class.whole_model:
    source = metadata.get("source_checkpoint") or ""
    raise ValueError(
        "adapter bundle %s was trained with --tuning_mode=%s: it is a whole "
        "fine-tuned model, not adapters for a frozen backbone; evaluate or "
        "predict with its run folder instead: --output_dir=%s "
        "--tuning_mode=%s (no --adapter_bundle)" % (
            bundle_dir, method_class.name,
            os.path.dirname(source) or "<its run folder>", method_class.name))
  try:
    reader = fileio.checkpoint_reader(prefix)
    values = {name: reader.get_tensor(name) for name in metadata["variables"]}
  except (tf.errors.OpError, ValueError, IndexError) as e:
    # A truncated data file surfaces as IndexError ("Read less bytes").
    raise ValueError("adapter bundle %s: variables are missing, corrupt or "
                     "truncated (%s)" % (bundle_dir, errors.one_line(e, 200)))
  for (name, shape) in metadata["variables"].items():
    if list(values[name].shape) != list(shape):
      raise ValueError("adapter bundle %s: %s has shape %s, %s says %s" %
                       (bundle_dir, name, list(values[name].shape),
                        BUNDLE_JSON, shape))
  bad = non_finite_names(values)
  if bad:
    raise ValueError("adapter bundle %s holds NaN or Inf in %d variables "
                     "(e.g. %s): it would serve garbage" % (
                         bundle_dir, len(bad), bad[0]))
  bundle = Bundle(bundle_dir, metadata, prefix, values)
  try:
    bundle.task()
    bundle.tuning_method()
  except (errors.InputError, ValueError, KeyError, TypeError,
          AttributeError) as e:
    raise ValueError("adapter bundle %s: bad task or adapter settings in %s "
                     "(%s)" % (bundle_dir, BUNDLE_JSON, errors.one_line(e)))
  return bundle


def check_backbone(bundle, init_checkpoint, fingerprints=None):
  """Refuses a backbone whose frozen weights differ from the bundle's.

  Args:
    bundle: a `Bundle`.
    init_checkpoint: the backbone checkpoint prefix.
    fingerprints: (optional) dict cache {(checkpoint, names): fingerprint},
      so several bundles on one backbone hash it once.

  Raises:
    ValueError: the backbone lacks a variable, or its fingerprint differs.
  """
  names = tuple(sorted(bundle.metadata["backbone_variables"]))
  key = (init_checkpoint, names)
  if fingerprints is not None and key in fingerprints:
    fingerprint = fingerprints[key]
  else:
    try:
      reader = fileio.checkpoint_reader(init_checkpoint)
      fingerprint = backbone_fingerprint(reader, names)
    except (tf.errors.OpError, ValueError, IndexError) as e:
      raise ValueError("adapter bundle %s does not fit --init_checkpoint=%s: "
                       "%s" % (bundle.path, init_checkpoint,
                               errors.one_line(e, 200)))
    if fingerprints is not None:
      fingerprints[key] = fingerprint
  if fingerprint != bundle.metadata["backbone_fingerprint"]:
    raise ValueError(
        "adapter bundle %s was trained on another backbone: --init_checkpoint="
        "%s has fingerprint %s..., the bundle expects %s..." %
        (bundle.path, init_checkpoint, fingerprint[:12],
         bundle.metadata["backbone_fingerprint"][:12]))


def check_vocab(bundle, vocab_file):
  """Refuses a --vocab_file other than the one the bundle was trained with:
  a vocabulary of the same size but other words gives other token ids, and
  believable wrong predictions.

  Returns:
    False if the bundle recorded no vocabulary (version 4 and older), so it
    cannot be checked (the caller warns); True if it matched.

  Raises:
    ValueError: the vocabulary differs.
  """
  recorded = bundle.metadata.get("vocab_sha256")
  if not recorded:
    return False
  try:
    actual = fileio.file_sha256(vocab_file)
  except (tf.errors.OpError, OSError) as e:
    raise ValueError("--vocab_file=%s: cannot read it (%s)" % (
        vocab_file, errors.one_line(e, 200)))
  if actual != recorded:
    raise ValueError(
        "adapter bundle %s was trained with another vocabulary: "
        "--vocab_file=%s has sha256 %s..., the bundle expects %s...; give "
        "the vocab.txt of the backbone it was trained on" % (
            bundle.path, vocab_file, actual[:12], recorded[:12]))
  return True


# BERT config entries that do not change what a trained model computes at
# eval time (dropout is off there; the init range only matters for new weights).
_EVAL_NEUTRAL_CONFIG_KEYS = ("hidden_dropout_prob",
                             "attention_probs_dropout_prob",
                             "initializer_range")


def check_bert_config(bundle, bert_config_dict, bert_config_file):
  """Refuses a --bert_config_file that differs from the bundle's.

  The fingerprint covers the weights, not how they are used: the same
  weights under another `hidden_act` or `layer_norm_eps` give other numbers.

  Raises:
    ValueError: one line naming the first differing entry.
  """
  recorded = bundle.metadata.get("bert_config")
  if not recorded:
    return  # bundles of version 1 did not record it
  for key in sorted(set(recorded) | set(bert_config_dict)):
    if key in _EVAL_NEUTRAL_CONFIG_KEYS:
      continue
    if recorded.get(key) != bert_config_dict.get(key):
      raise ValueError(
          "adapter bundle %s was trained with another BERT config: %s is %r "
          "there but %r in --bert_config_file=%s" % (
              bundle.path, key, recorded.get(key), bert_config_dict.get(key),
              bert_config_file))
