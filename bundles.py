# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Adapter bundles: what one task adds to a frozen backbone, on its own.

A bundle is a folder:

    adapter_bundle.json                 task, labels, max_seq_length,
                                        do_lower_case, adapter settings,
                                        tuning mode, backbone fingerprint
    variables.index                     a TF checkpoint holding exactly the
    variables.data-00000-of-00001       variables the tuning mode trained

With the `adapters` tuning mode that is the adapters, every LayerNorm and the
classifier head (2.4M parameters, ~9.7 MB for BERT-base with adapters of size
64); no frozen weight and no optimizer state. The fingerprint is a hash of the
frozen weights' names, shapes and values, so a bundle is never silently
loaded onto another backbone.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow.compat.v1 as tf

import adapters

BUNDLE_JSON = "adapter_bundle.json"
VARIABLES_PREFIX = "variables"
BUNDLE_FORMAT = "adapter-bert-bundle"
BUNDLE_VERSION = 1


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


def model_variable_names(reader):
  """The model's variables in a checkpoint: no Adam slots, no global step."""
  return sorted(
      name for name in reader.get_variable_to_shape_map()
      if not name.endswith(("/adam_m", "/adam_v")) and name != "global_step")


def backbone_fingerprint(reader, names):
  """sha256 over the names, shapes, dtypes and values of `names`.

  Args:
    reader: a `tf.train.load_checkpoint` reader.
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


def directory_size(path):
  """Bytes of every file under a folder."""
  total = 0
  for (root, _, files) in os.walk(path):
    total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
  return total


def export_bundle(checkpoint_path, bundle_dir, tuning_mode, metadata):
  """Writes the bundle of a training checkpoint, atomically.

  Args:
    checkpoint_path: a checkpoint prefix, or a folder (its latest checkpoint).
    bundle_dir: the bundle folder to write (replaced if it exists).
    tuning_mode: which variables trained (see `adapters.TUNING_MODES`).
    metadata: dict of task_name, labels, max_seq_length, do_lower_case,
      adapter (settings or None) and bert_config, stored as given.

  Returns:
    dict with the bundle's path, size in bytes and number of parameters.

  Raises:
    ValueError: the checkpoint cannot be read or holds no trained variable.
  """
  checkpoint_path = resolve_checkpoint(checkpoint_path)
  reader = tf.train.load_checkpoint(checkpoint_path)
  names = model_variable_names(reader)
  trained = [n for n in names if adapters.is_trained(n, tuning_mode)]
  frozen = [n for n in names if n not in trained]
  if not trained:
    raise ValueError("checkpoint %s holds no variable trained in tuning mode "
                     "%r" % (checkpoint_path, tuning_mode))
  values = {name: reader.get_tensor(name) for name in trained}
  global_step = (int(reader.get_tensor("global_step"))
                 if reader.has_tensor("global_step") else 0)

  full_metadata = dict(metadata)
  full_metadata.update({
      "format": BUNDLE_FORMAT,
      "version": BUNDLE_VERSION,
      "tuning_mode": tuning_mode,
      "global_step": global_step,
      "source_checkpoint": checkpoint_path,
      "backbone_fingerprint": backbone_fingerprint(reader, frozen),
      "backbone_variables": frozen,
      "variables": {name: list(values[name].shape) for name in trained},
      "num_parameters": int(sum(v.size for v in values.values())),
  })

  parent = os.path.dirname(os.path.abspath(bundle_dir))
  os.makedirs(parent, exist_ok=True)
  temp_dir = os.path.join(parent, ".%s.tmp-%d" % (os.path.basename(
      os.path.abspath(bundle_dir)), os.getpid()))
  shutil.rmtree(temp_dir, ignore_errors=True)
  os.makedirs(temp_dir)
  try:
    write_checkpoint(values, os.path.join(temp_dir, VARIABLES_PREFIX))
    with open(os.path.join(temp_dir, BUNDLE_JSON), "w") as f:
      json.dump(full_metadata, f, indent=2, sort_keys=True)
      f.write("\n")
    _replace_directory(temp_dir, bundle_dir)
  except BaseException:
    shutil.rmtree(temp_dir, ignore_errors=True)
    raise
  return {"path": bundle_dir, "bytes": directory_size(bundle_dir),
          "num_parameters": full_metadata["num_parameters"]}


def write_checkpoint(values, prefix):
  """Writes a TF1 checkpoint holding exactly `values` ({name: numpy array}).

  Values are fed through placeholders, so none is baked into the graph (whose
  GraphDef is capped at 2 GB). convert_hf_checkpoint.py writes with this too.
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


def _replace_directory(source, target):
  """Moves `source` to `target`; an existing target is swapped out first."""
  backup = None
  if os.path.exists(target):
    backup = target.rstrip("/") + ".old-%d" % os.getpid()
    os.rename(target, backup)
  os.rename(source, target)
  if backup:
    shutil.rmtree(backup, ignore_errors=True)


def resolve_checkpoint(path):
  """A checkpoint prefix from a prefix or a folder holding checkpoints."""
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if not latest:
      raise ValueError("%s holds no checkpoint" % path)
    return latest
  return path


def read_bundle(bundle_dir):
  """Reads and checks a bundle; every problem is a one-line ValueError.

  A bundle trained with tuning_mode "full" is refused: it is a whole model,
  not something to put on a backbone.
  """
  json_path = os.path.join(bundle_dir, BUNDLE_JSON)
  prefix = os.path.join(bundle_dir, VARIABLES_PREFIX)
  if not os.path.isdir(bundle_dir):
    raise ValueError("adapter bundle %s: no such folder" % bundle_dir)
  try:
    with open(json_path) as f:
      metadata = json.load(f)
  except OSError as e:
    raise ValueError("adapter bundle %s: cannot read %s (%s)" %
                     (bundle_dir, BUNDLE_JSON, e.strerror or e))
  except ValueError as e:
    raise ValueError("adapter bundle %s: %s is corrupt (%s)" %
                     (bundle_dir, BUNDLE_JSON, e))
  if not isinstance(metadata, dict) or metadata.get("format") != BUNDLE_FORMAT:
    raise ValueError("adapter bundle %s: %s is not an adapter-bert bundle" %
                     (bundle_dir, BUNDLE_JSON))
  if metadata.get("version") != BUNDLE_VERSION:
    raise ValueError("adapter bundle %s: version %r, this code reads %d" %
                     (bundle_dir, metadata.get("version"), BUNDLE_VERSION))
  for key in ("task_name", "tuning_mode", "backbone_fingerprint",
              "backbone_variables", "variables", "max_seq_length",
              "do_lower_case"):
    if key not in metadata:
      raise ValueError("adapter bundle %s: %s lacks %r" %
                       (bundle_dir, BUNDLE_JSON, key))
  if metadata["tuning_mode"] == "full":
    raise ValueError(
        "adapter bundle %s was trained with --tuning_mode=full: it is a whole "
        "fine-tuned model, not adapters for a frozen backbone; use its "
        "source checkpoint %s as --init_checkpoint instead" %
        (bundle_dir, metadata.get("source_checkpoint")))
  try:
    reader = tf.train.load_checkpoint(prefix)
    values = {name: reader.get_tensor(name) for name in metadata["variables"]}
  except (tf.errors.OpError, ValueError, IndexError) as e:
    # A truncated data file surfaces as IndexError ("Read less bytes").
    raise ValueError("adapter bundle %s: variables are missing, corrupt or "
                     "truncated (%s)" % (bundle_dir,
                                         " ".join(str(e).split())[:200]))
  for (name, shape) in metadata["variables"].items():
    if list(values[name].shape) != list(shape):
      raise ValueError("adapter bundle %s: %s has shape %s, %s says %s" %
                       (bundle_dir, name, list(values[name].shape),
                        BUNDLE_JSON, shape))
  return Bundle(bundle_dir, metadata, prefix, values)


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
      reader = tf.train.load_checkpoint(init_checkpoint)
      fingerprint = backbone_fingerprint(reader, names)
    except (tf.errors.OpError, ValueError, IndexError) as e:
      raise ValueError("adapter bundle %s does not fit --init_checkpoint=%s: "
                       "%s" % (bundle.path, init_checkpoint,
                               " ".join(str(e).split())[:200]))
    if fingerprints is not None:
      fingerprints[key] = fingerprint
  if fingerprint != bundle.metadata["backbone_fingerprint"]:
    raise ValueError(
        "adapter bundle %s was trained on another backbone: --init_checkpoint="
        "%s has fingerprint %s..., the bundle expects %s..." %
        (bundle.path, init_checkpoint, fingerprint[:12],
         bundle.metadata["backbone_fingerprint"][:12]))
