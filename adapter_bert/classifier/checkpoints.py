# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Checkpoints: which one initialises what, the checks of the backbone and of
a run's latest checkpoint, compact checkpoints and the backbone's
fingerprint, and the export of an adapter bundle."""

import collections
import json
import os
import re

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert.methods import base

InputError = errors.InputError


def checkpoint_assignment_maps(variables, checkpoints):
  """Which checkpoint initialises which variable.

  Each variable comes from the first of `checkpoints` that holds it (an
  adapter bundle before the backbone); variables none holds (adapters and head
  when training starts) keep their initializers. Shapes were checked before
  (`check_init_checkpoint`).

  Returns:
    list of (checkpoint, {name: name}) pairs, for tf.train.init_from_checkpoint.
  """
  remaining = [base.variable_name(v) for v in variables]
  maps = []
  for checkpoint in checkpoints:
    in_checkpoint = dict(fileio.checkpoint_variables(checkpoint))
    assignment_map = collections.OrderedDict(
        (name, name) for name in remaining if name in in_checkpoint)
    remaining = [name for name in remaining if name not in assignment_map]
    logging.info("Initialised %d of %d variables from %s", len(assignment_map),
                 len(variables), checkpoint)
    maps.append((checkpoint, assignment_map))
  return maps


def check_init_checkpoint(init_checkpoint, model_shapes, method,
                          bert_config_file, allow_partial=False):
  """Refuses a checkpoint that does not fit the model built from the config.

  Every backbone variable (not new in `method`) must be in the checkpoint,
  with the model's shape, and its data must be all there; every BERT
  variable of the checkpoint must be in the model unless `allow_partial`.
  """
  try:
    fileio.check_checkpoint_data(init_checkpoint)
  except ValueError as e:
    raise InputError("--init_checkpoint=%s: %s" % (init_checkpoint, e))
  try:
    in_checkpoint = dict(fileio.checkpoint_variables(init_checkpoint))
  except (tf.errors.OpError, ValueError) as e:
    raise InputError("--init_checkpoint=%s: cannot read it (%s)" %
                     (init_checkpoint, errors.one_line(e)))
  shared = [name for name in model_shapes if name in in_checkpoint]
  if not any(name.startswith("bert/") for name in shared):
    raise InputError("--init_checkpoint=%s: holds no BERT variable "
                     "(bert/...)" % init_checkpoint)
  for name in shared:
    if list(in_checkpoint[name]) != list(model_shapes[name]):
      raise InputError(
          "--bert_config_file=%s does not match --init_checkpoint=%s: %s has "
          "shape %s in the checkpoint but %s in the model" %
          (bert_config_file, init_checkpoint, name, in_checkpoint[name],
           model_shapes[name]))
  missing = [name for name in model_shapes if not method.is_new(name) and
             name not in in_checkpoint]
  if missing:
    raise InputError("--init_checkpoint=%s lacks %d pre-trained variables "
                     "the model needs, e.g. %s" %
                     (init_checkpoint, len(missing), missing[0]))
  # BERT weights the model leaves out mean a config smaller than the
  # checkpoint (fewer layers...): a cut-down model, unless that is meant.
  unused = sorted(name for name in in_checkpoint
                  if name.startswith("bert/") and name not in model_shapes and
                  not name.endswith(("/adam_m", "/adam_v")))
  if unused and not allow_partial:
    raise InputError(
        "--init_checkpoint=%s holds %d BERT variables the model of "
        "--bert_config_file=%s does not use (e.g. %s); give the checkpoint's "
        "own config, or --allow_partial_init_checkpoint=true for a cut-down "
        "model" %
        (init_checkpoint, len(unused), bert_config_file, unused[0]))
  if unused:
    logging.warning("--init_checkpoint=%s: %d BERT variables left unused "
                    "(--allow_partial_init_checkpoint), e.g. %s",
                    init_checkpoint, len(unused), unused[0])


POOLER_KERNEL = "bert/pooler/dense/kernel"
POOLER_BIAS = "bert/pooler/dense/bias"


def untrained_pooler_warning(init_checkpoint, method):
  """A warning (one line) when the checkpoint's pooler looks untrained and
  `method` keeps its weights frozen; None otherwise.

  BERT's pooler is trained by next-sentence prediction, and the paper's
  adapter-bert code keeps it frozen. A sentence-embedding checkpoint trained
  through mean pooling (all-MiniLM-L6-v2) ships the pooler it was created
  with: its bias is exactly zero, which no training leaves. Frozen, it is a
  fixed random projection of [CLS] between the model and the head.
  """
  if method.trains(POOLER_KERNEL):
    return None
  try:
    bias = tf.train.load_checkpoint(init_checkpoint).get_tensor(POOLER_BIAS)
  except (tf.errors.OpError, ValueError):
    return None  # no pooler to judge (check_init_checkpoint has ruled)
  if np.any(np.asarray(bias) != 0):
    return None
  return ("--init_checkpoint=%s: its pooler looks untrained (%s is all "
          "zeros, as in sentence-embedding checkpoints trained through mean "
          "pooling) and --tuning_mode=%s keeps it frozen, so the head reads "
          "[CLS] through a fixed random projection; --train_pooler=true "
          "trains it (docs/methods.md#the-pooler)" % (
              init_checkpoint, POOLER_BIAS, method.name))


# The backbone record beside compact checkpoints in --output_dir.
BACKBONE_RECORD = "backbone.json"


def compact_checkpoints(output_dir, init_checkpoint, method, model_shapes,
                        will_train):
  """Decides whether checkpoints in `output_dir` are compact; checks them.

  Every tuning method but a whole-model one (`full`) saves compact training
  checkpoints when there is an `init_checkpoint` to take the frozen weights
  from: the trained variables, their Adam slots and the step. Training
  records the backbone's fingerprint in `BACKBONE_RECORD` before its first
  checkpoint; every later start (resume, eval, predict, export) recomputes it
  on `init_checkpoint` and refuses a backbone that differs.

  Returns:
    whether the checkpoints of this run are (or will be) compact.

  Raises:
    InputError: compact checkpoints in `output_dir` with no, or another,
      backbone, or with a tuning method that saves whole models.
  """
  compact = not method.whole_model and bool(init_checkpoint)
  record_path = os.path.join(output_dir, BACKBONE_RECORD)
  latest = tf.train.latest_checkpoint(output_dir)
  saved = ({name for (name, _) in fileio.checkpoint_variables(latest)}
           if latest else set())
  missing = [name for name in model_shapes if name not in saved]
  if not latest or not missing:
    # No checkpoint yet, or whole ones (they carry their own backbone, and
    # the compact ones training adds to them need the record).
    if compact and will_train:
      frozen = sorted(n for n in model_shapes if not method.trains(n))
      fingerprint = backbone_fingerprint(init_checkpoint, frozen)
      fileio.write_json(record_path, {"init_checkpoint": init_checkpoint,
                                      "fingerprint": fingerprint,
                                      "variables": frozen})
    return compact
  missing_trained = [name for name in missing if method.trains(name)]
  if missing_trained and not method.whole_model:
    raise InputError(
        "--output_dir=%s holds checkpoints without %d variables "
        "--tuning_mode=%s trains (e.g. %s): another tuning method wrote them; "
        "use another --output_dir" % (output_dir, len(missing_trained),
                                      method.name, missing_trained[0]))
  if not compact:
    raise InputError(
        "--output_dir=%s holds compact checkpoints (trained variables only); "
        "%s" % (output_dir, "--tuning_mode=%s saves whole models: use another "
                "--output_dir" % method.name if init_checkpoint else
                "give --init_checkpoint, the backbone they were trained on"))
  if not tf.io.gfile.exists(record_path):
    raise InputError("--output_dir=%s holds compact checkpoints but no %s to "
                     "tell their backbone" % (output_dir, BACKBONE_RECORD))
  try:
    record = json.loads(fileio.read_text(record_path))
    expected = record["fingerprint"]
    names = record["variables"]
  except (ValueError, KeyError, TypeError) as e:
    raise InputError("%s: corrupt (%s)" % (record_path, errors.one_line(e)))
  fingerprint = backbone_fingerprint(init_checkpoint, names)
  if fingerprint != expected:
    raise InputError(
        "--init_checkpoint=%s is not the backbone the checkpoints in "
        "--output_dir=%s were trained on (fingerprint %s..., they expect "
        "%s..., from %s)" % (init_checkpoint, output_dir, fingerprint[:12],
                             expected[:12], record.get("init_checkpoint")))
  logging.info("Compact checkpoints in %s: backbone %s checked (fingerprint "
               "%s...)", output_dir, init_checkpoint, fingerprint[:12])
  return compact


def check_latest_checkpoint(folder, what="--output_dir"):
  """Refuses a folder whose latest checkpoint is cut short or holds NaN/Inf
  (the state of a diverged run is never resumed, evaluated or exported)."""
  latest = tf.train.latest_checkpoint(folder)
  if not latest:
    return
  try:
    fileio.check_checkpoint_data(latest)
  except ValueError as e:
    raise InputError("%s=%s: checkpoint %s: %s" % (what, folder, latest, e))
  try:
    bundles.check_finite_checkpoint(latest, "%s=%s" % (what, folder))
  except bundles.DamagedCheckpoint as e:
    raise InputError(e)
  except ValueError as e:
    raise InputError("%s; start again in a new --output_dir" % e)


def diverged_message(error, settings):
  """One line for a run the divergence guard stopped."""
  match = re.search(r"\[step\] \[(\d+)\] \[loss\] \[([^\]]*)\]", str(error))
  (step, loss) = match.groups() if match else ("?", "?")
  latest = tf.train.latest_checkpoint(settings.output_dir)
  return ("training diverged at step %s: loss %s (NaN, Inf or above "
          "--max_loss=%g, or non-finite gradients); that step changed "
          "nothing, and the last good checkpoint is %s; try a lower "
          "--learning_rate (now %g)" % (
              step, loss, settings.max_loss, latest or "none (no step "
              "finished)", settings.learning_rate))


def checkpoint_step(model_dir):
  """The global step of the latest checkpoint in `model_dir`, or 0."""
  latest = tf.train.latest_checkpoint(model_dir)
  if not latest:
    return 0
  reader = fileio.checkpoint_reader(latest)
  return int(reader.get_tensor("global_step")) if reader.has_tensor(
      "global_step") else 0


def backbone_fingerprint(init_checkpoint, names):
  """bundles.backbone_fingerprint of `names` in `init_checkpoint`."""
  try:
    return bundles.backbone_fingerprint(
        fileio.checkpoint_reader(init_checkpoint), names)
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise InputError("--init_checkpoint=%s: %s" % (init_checkpoint,
                                                   errors.one_line(e, 200)))


def export_adapter_bundle(checkpoint, bundle_dir, method, task, bert_config,
                          feature_settings, model_shapes,
                          backbone_checkpoint=None):
  """Writes the adapter bundle of `checkpoint` and logs what it saves.

  `feature_settings` (`bundles.FeatureSettings`) are those it was trained
  with; `backbone_checkpoint` holds the frozen weights a compact checkpoint
  lacks.

  Raises:
    InputError: a checkpoint unreadable, cut short, or of another shape than
      the model the flags describe (--adapter_size, the task's labels...).
  """
  try:
    prefix = bundles.resolve_checkpoint(checkpoint)
    fileio.check_checkpoint_data(prefix)
  except ValueError as e:
    raise InputError("cannot export an adapter bundle from %s: %s" %
                     (checkpoint, errors.one_line(e)))
  saved = dict(fileio.checkpoint_variables(prefix))
  for (name, shape) in model_shapes.items():
    if method.trains(name) and name in saved and (
        list(saved[name]) != list(shape)):
      raise InputError(
          "checkpoint %s is not the model the flags describe: %s has shape "
          "%s there but %s in the model of --tuning_mode=%s, --task_name=%s "
          "(%d labels) and --bert_config_file; give the settings it was "
          "trained with" % (
              prefix, name, list(saved[name]), list(shape), method.label(),
              task.name, len(task.get_labels())))
  try:
    info = bundles.export_bundle(checkpoint, bundle_dir, method, task,
                                 bert_config, feature_settings,
                                 model_variables=list(model_shapes),
                                 backbone_checkpoint=backbone_checkpoint)
  except (ValueError, tf.errors.OpError) as e:
    raise InputError("cannot export an adapter bundle from %s: %s" %
                     (checkpoint, errors.one_line(e)))
  # The same model fine-tuned without additions, in float32; Adam adds two
  # slots per variable.
  model_bytes = 4 * sum(int(np.prod(shape)) for (name, shape) in
                        model_shapes.items() if not method.adds(name))
  logging.info(
      "Adapter bundle %s: %s on disk (%s parameters). A full fine-tuned "
      "checkpoint of this model: %s, or %s with Adam state.", bundle_dir,
      fileio.human_bytes(info["bytes"]), "{:,}".format(info["num_parameters"]),
      fileio.human_bytes(model_bytes), fileio.human_bytes(3 * model_bytes))
  return info
