# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A job's settings: the `Settings` record (its fields are run_classifier.py's
flags), the bundle's settings merged in, and their validation, by group."""

import dataclasses
import os

from absl import logging
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert import output_rules
from adapter_bert import run_folder
from adapter_bert.classifier import checkpoints
from adapter_bert.classifier import devices
from adapter_bert.classifier import inputs
from adapter_bert.classifier import model_fn
from adapter_bert.methods import base

InputError = errors.InputError


@dataclasses.dataclass(frozen=True)
class JobSettings(object):
  """Everything one job needs but the tuning method's options (`Settings`
  adds those). Field names and defaults are the flags'.

  Immutable: a bundle's settings are merged in by `with_bundle_settings`,
  which returns a new object, before anything is validated.
  """

  # Required (None here; `validate_settings` says which a job needs).
  task_name: str = None
  data_dir: str = None
  bert_config_file: str = None
  vocab_file: str = None
  output_dir: str = None
  # BERT's other flags.
  init_checkpoint: str = None
  do_lower_case: bool = True
  max_seq_length: int = 128
  do_train: bool = False
  do_eval: bool = False
  do_predict: bool = False
  train_batch_size: int = 32
  eval_batch_size: int = 8
  predict_batch_size: int = 8
  learning_rate: float = 5e-5
  num_train_epochs: float = 3.0
  warmup_proportion: float = 0.1
  adam_bias_correction: bool = False
  max_loss: float = 1e4  # the divergence guard (see optimization.py)
  save_checkpoints_steps: int = 1000
  iterations_per_loop: int = 1000
  use_tpu: bool = False
  tpu_name: str = None
  tpu_zone: str = None
  gcp_project: str = None
  master: str = None
  num_tpu_cores: int = 8
  # The tuning method (the registry's first by default); its options are
  # the fields `Settings` adds.
  tuning_mode: str = methods.names()[0]
  ablate_adapters: str = None  # eval only: "2-5", "0,3"...
  seed: int = 12345
  # Bundles.
  adapter_bundle: str = None
  export_adapter_bundle: str = None
  export_from_checkpoint: str = None
  overwrite_output_dir: bool = False
  allow_partial_init_checkpoint: bool = False
  # Task options and logging.
  xnli_language: str = "zh"
  log_every_n_steps: int = 100
  # Devices and speed.
  strategy: str = "one_device"
  num_cpu_devices: int = 0  # mirrored without GPUs: N logical CPU devices
  precision: str = "auto"  # resolved by with_resolved_precision
  padding: str = "auto"
  intra_op_parallelism_threads: int = 0
  inter_op_parallelism_threads: int = 0

  @classmethod
  def field_names(cls):
    return [f.name for f in dataclasses.fields(cls)]

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  @property
  def runs_model(self):
    return self.do_train or self.do_eval or self.do_predict

  def method_options(self):
    """{flag: value} of every method option given (None: not given)."""
    return {name: getattr(self, name) for name in methods.all_options()
            if getattr(self, name) is not None}


# One field per option of the registry's methods, None meaning "not given"
# (the method's own default applies): adapter_size, train_layernorm, ...
Settings = dataclasses.make_dataclass(
    "Settings",
    [(name, option.type, dataclasses.field(default=None))
     for (name, option) in methods.all_options().items()],
    bases=(JobSettings,), frozen=True)
Settings.__doc__ = (JobSettings.__doc__.split("\n")[0] + " The tuning "
                    "method's options are fields too, None when not given.")


def with_bundle_settings(settings, explicit=()):
  """Reads `settings.adapter_bundle` and merges the settings it records.

  The bundle's values (max_seq_length, do_lower_case, tuning method, adapter
  settings, XNLI language) replace the given ones: they are what its weights
  were trained with. An explicitly given value that differs is warned about.

  Args:
    settings: `Settings`.
    explicit: names of the settings the user gave explicitly (flags on the
      command line).

  Returns:
    (settings, bundle): the merged `Settings` and the `bundles.Bundle`, or
    the given settings and None without --adapter_bundle.
  """
  if not settings.adapter_bundle:
    return settings, None
  try:
    bundle = bundles.read_bundle(settings.adapter_bundle)
  except ValueError as e:
    raise InputError(e)
  if settings.task_name and (glue.normalize_task_name(bundle.task_name) !=
                             glue.normalize_task_name(settings.task_name)):
    raise InputError("--adapter_bundle=%s was trained for %s, not "
                     "--task_name=%s" % (settings.adapter_bundle,
                                         bundle.task_name, settings.task_name))
  recorded = bundle.settings()
  for (name, value) in sorted(recorded.items()):
    if name in explicit and getattr(settings, name) != value:
      logging.warning("--%s=%s ignored: adapter bundle %s was trained with %s",
                      name, getattr(settings, name), settings.adapter_bundle,
                      value)
  logging.info("Adapter bundle %s: %s, trained %d steps, %s parameters",
               settings.adapter_bundle, bundle.task_name, bundle.global_step,
               "{:,}".format(bundle.num_parameters))
  return settings.replace(**recorded), bundle


def validate_settings(settings):
  """Checks settings before any work; raises InputError naming the flag.

  The checks run by group, in this order: the job and its paths, the
  training numbers, the devices (padding, strategy, precision, threads),
  then the input files.
  """
  _check_job(settings)
  _check_training_numbers(settings)
  _check_devices(settings)
  _check_files(settings)


def _check_job(s):
  """Required flags, and the phases that do not go together."""
  required = ["bert_config_file", "task_name", "vocab_file", "output_dir"]
  if s.runs_model:
    required.append("data_dir")
  for name in required:
    if not getattr(s, name):
      raise InputError("--%s is required" % name)
  if not (s.runs_model or s.export_from_checkpoint):
    raise InputError("at least one of --do_train, --do_eval or --do_predict "
                     "must be true")
  if s.adapter_bundle and (s.do_train or s.export_from_checkpoint):
    raise InputError("--adapter_bundle is for --do_eval/--do_predict; to "
                     "train more, keep training in the bundle's --output_dir")
  if s.ablate_adapters and (s.do_train or s.do_predict or
                            s.export_from_checkpoint):
    raise InputError("--ablate_adapters=%s is for --do_eval of a trained "
                     "model alone (no --do_train, --do_predict or "
                     "--export_from_checkpoint)" % s.ablate_adapters)
  if s.overwrite_output_dir and not s.do_train:
    raise InputError("--overwrite_output_dir starts a training run again; it "
                     "needs --do_train=true")
  if s.overwrite_output_dir and s.export_from_checkpoint:
    raise InputError("--overwrite_output_dir and --export_from_checkpoint "
                     "do not go together: the export reads a checkpoint the "
                     "overwrite could delete")
  if s.adapter_bundle and not s.init_checkpoint:
    raise InputError("--adapter_bundle needs --init_checkpoint: the backbone "
                     "it goes on")


def _check_training_numbers(s):
  """Sizes, counts, the schedule and the divergence guard."""
  for name in ("max_seq_length", "train_batch_size", "eval_batch_size",
               "predict_batch_size", "save_checkpoints_steps",
               "iterations_per_loop", "log_every_n_steps"):
    if getattr(s, name) <= 0:
      raise InputError("--%s must be positive, got %d" %
                       (name, getattr(s, name)))
  if s.max_seq_length < 3:
    raise InputError("--max_seq_length must be at least 3 ([CLS] x [SEP])")
  if s.do_train and not 0 < s.num_train_epochs < float("inf"):
    raise InputError("--num_train_epochs must be a positive finite number, "
                     "got %r" % s.num_train_epochs)
  if not 0.0 <= s.warmup_proportion <= 1.0:
    raise InputError("--warmup_proportion must be in [0, 1]")
  for name in ("learning_rate", "max_loss"):
    value = getattr(s, name)
    # `not value > 0` also catches NaN, which passes `value <= 0`.
    if not (value > 0 and value != float("inf")):
      raise InputError("--%s must be a positive finite number, got %r" %
                       (name, value))


def _check_devices(s):
  """Padding, strategy, precision, logical CPU devices and thread pools,
  against each other and this machine."""
  try:
    inputs.resolve_padding(s.padding, s.use_tpu)
  except ValueError as e:
    raise InputError(e)
  if s.strategy not in devices.STRATEGIES:
    raise InputError("--strategy=%s: unknown (known: %s)" % (
        s.strategy, ", ".join(devices.STRATEGIES)))
  if s.strategy != "one_device" and s.use_tpu:
    raise InputError("--strategy=%s is for CPUs and GPUs; on Cloud TPU, "
                     "--use_tpu=true shards over the TPU cores itself" %
                     s.strategy)
  if s.strategy == "multi_worker" and not os.environ.get("TF_CONFIG"):
    raise InputError("--strategy=multi_worker needs TF_CONFIG (the cluster "
                     "and this worker's task) in the environment")
  if s.precision not in model_fn.PRECISIONS:
    raise InputError("--precision=%s: unknown (known: %s)" % (
        s.precision, ", ".join(model_fn.PRECISIONS)))
  if s.precision == "mixed_float16" and s.use_tpu:
    raise InputError("--precision=mixed_float16 is for GPUs; Cloud TPUs "
                     "compute in bfloat16: give --precision=mixed_bfloat16")
  _check_cpu_devices(s)
  for name in ("intra_op_parallelism_threads", "inter_op_parallelism_threads"):
    if getattr(s, name) < 0:
      raise InputError("--%s must be >= 0 (0: TensorFlow's choice), got %d" %
                       (name, getattr(s, name)))


def _check_cpu_devices(s):
  """--num_cpu_devices, and mirroring on a machine without GPUs."""
  if s.num_cpu_devices < 0 or s.num_cpu_devices == 1:
    raise InputError("--num_cpu_devices must be 0 (none) or at least 2, got "
                     "%d" % s.num_cpu_devices)
  if s.num_cpu_devices and s.strategy != "mirrored":
    raise InputError("--num_cpu_devices=%d is for --strategy=mirrored" %
                     s.num_cpu_devices)
  if (s.strategy == "mirrored" and not s.num_cpu_devices and
      not devices.gpu_available()):
    raise InputError(
        "--strategy=mirrored: this machine has no GPU; give "
        "--num_cpu_devices=N to mirror over N logical CPU devices (it shows "
        "the mechanism, not a speed-up)")
  if s.num_cpu_devices and s.train_batch_size % s.num_cpu_devices:
    raise InputError(
        "--train_batch_size=%d is the global batch; it must split evenly over "
        "the %d replicas of --num_cpu_devices" % (s.train_batch_size,
                                                  s.num_cpu_devices))


def _check_files(s):
  """The vocabulary, the BERT config and the data folder exist."""
  for name in ("vocab_file", "bert_config_file"):
    if not tf.io.gfile.exists(getattr(s, name)):
      raise InputError("--%s=%s: no such file" % (name, getattr(s, name)))
  if s.runs_model and not tf.io.gfile.isdir(s.data_dir):
    raise InputError("--data_dir=%s: no such directory" % s.data_dir)


def check_output_paths(settings, method):
  """Every folder the job writes to takes files, before any work (an
  unwritable --export_adapter_bundle is not found after an hour of
  training), and no output destroys what the job did not write
  (adapter_bert.outputs)."""
  s = settings
  folders = [("output_dir", s.output_dir, s.output_dir)]
  if s.export_adapter_bundle:
    folders.append(("export_adapter_bundle", s.export_adapter_bundle,
                    os.path.dirname(s.export_adapter_bundle.rstrip("/")) or
                    "."))
  _check_apart(s, bundle_target(s, method))
  for (flag, value, folder) in folders:
    try:
      fileio.check_writable_folder(folder)
    except ValueError as e:
      where = "" if folder == value else " (its folder %s)" % folder
      raise InputError("--%s=%s%s: %s" % (flag, value, where, e))


def bundle_target(settings, method):
  """The bundle folder the job writes, or None if it writes none."""
  s = settings
  if s.export_from_checkpoint or (s.do_train and (
      s.export_adapter_bundle or not method.whole_model)):
    return s.export_adapter_bundle or os.path.join(s.output_dir,
                                                   "adapter_bundle")
  return None


def _check_apart(s, bundle_dir):
  """The outputs against the inputs and each other (adapter_bert.outputs)."""
  flag = "export_adapter_bundle"
  if bundle_dir:
    output_rules.check_export_target(bundle_dir, output_rules.ADAPTER_BUNDLE,
                                     flag)
    output_rules.check_bundle_beside_run(flag, bundle_dir, s.output_dir)
  source = s.export_from_checkpoint
  if source:
    try:
      source = bundles.resolve_checkpoint(source)
    except ValueError as e:
      raise InputError("--export_from_checkpoint=%s: %s" % (source, e))
  files = (output_rules.checkpoint_inputs("init_checkpoint",
                                          s.init_checkpoint) +
           [("vocab_file", s.vocab_file),
            ("bert_config_file", s.bert_config_file),
            ("data_dir", s.data_dir)])
  output_rules.check_apart(
      [("output_dir", s.output_dir), (flag, bundle_dir)],
      input_folders=[("adapter_bundle", s.adapter_bundle)], input_files=files)
  # The checkpoint exported from may be --output_dir's own (a run folder
  # holds its checkpoints); the bundle replaces its folder, so not there.
  output_rules.check_apart(
      [(flag, bundle_dir)],
      input_files=output_rules.checkpoint_inputs("export_from_checkpoint",
                                                 source))


# ---------------------------------------------------------------- tuning
# The settings' tuning method, its ablated layers and what a run folder's
# manifest records about it.


def build_tuning_method(settings, num_layers=None):
  """The settings' `TuningMethod` (adapter_bert/methods/).

  Args:
    num_layers: the model's encoder layers (some methods need them).
  """
  try:
    return methods.build(settings.tuning_mode, settings.method_options(),
                         num_layers)
  except ValueError as e:
    raise InputError(e)


def ablations(settings, method, num_layers):
  """The sets of layers --ablate_adapters switches off, one per evaluation
  (none: no ablation), checked against the model.

  Returns:
    tuple of tuples of layer indices.

  Raises:
    InputError: a bad list, or a tuning method that adds nothing to switch
      off.
  """
  spec = settings.ablate_adapters
  if not spec:
    return ()
  if not method.adds_anything:
    raise InputError("--ablate_adapters=%s: --tuning_mode=%s builds no "
                     "adapters" % (spec, method.name))
  if spec == base.EACH_SPAN:
    sets = tuple(tuple(range(first, last + 1))
                 for (first, last) in base.layer_spans(num_layers))
  else:
    try:
      sets = (tuple(base.parse_layer_list(spec, num_layers)),)
    except ValueError as e:
      raise InputError("--ablate_adapters=%s: %s" % (spec, e))
  for layers in sets:
    logging.info("Evaluating with the additions of %s in layers %s switched "
                 "off (pre-trained path there)", method.name,
                 base.format_layer_list(layers))
  return sets


# --precision=auto: bfloat16 where the hardware computes it natively.
AUTO_PRECISION = "auto"


def with_resolved_precision(settings, cpuinfo="/proc/cpuinfo"):
  """The settings with --precision=auto replaced by what it means here,
  logged with the reason: the precision a resumed run's run.json records
  (a run keeps its arithmetic), else mixed_bfloat16 on hardware that
  computes bfloat16 natively (`devices.native_bfloat16`), else float32."""
  s = settings
  if s.precision != AUTO_PRECISION:
    return s
  recorded = None
  if s.do_train and s.output_dir and not s.overwrite_output_dir:
    try:
      manifest = run_folder.read_manifest(s.output_dir)
    except ValueError:
      manifest = None  # refused, naming the file, by the manifest's check
    if manifest:
      recorded = manifest["settings"].get("precision", "float32")
  if recorded in model_fn.PRECISIONS:
    (precision, reason) = (recorded, "the run in --output_dir=%s resumes "
                           "with the precision it started with" %
                           s.output_dir)
  else:
    (native, why) = devices.native_bfloat16(s.use_tpu, cpuinfo)
    precision = "mixed_bfloat16" if native else "float32"
    reason = "this machine has %s" % why
  logging.info("--precision=auto: %s (%s)", precision, reason)
  return dataclasses.replace(s, precision=precision)


def manifest_settings(settings, task, bert_config, method, model_shapes):
  """What `run_folder.MANIFEST` records about this job (see run_folder)."""
  s = settings
  fingerprint = None
  if s.init_checkpoint:
    fingerprint = checkpoints.backbone_fingerprint(
        s.init_checkpoint, [n for n in model_shapes if not method.is_new(n)])
  values = {
      "task_name": task.name,
      "xnli_language": task.language,
      "bert_config": bert_config.to_dict(),
      "vocab_sha256": fileio.file_sha256(s.vocab_file),
      "do_lower_case": s.do_lower_case,
      "max_seq_length": s.max_seq_length,
      "init_checkpoint_fingerprint": fingerprint,
      "train_sha256": None,
      "train_batch_size": s.train_batch_size,
      "learning_rate": s.learning_rate,
      "num_train_epochs": s.num_train_epochs,
      "warmup_proportion": s.warmup_proportion,
      "adam_bias_correction": s.adam_bias_correction,
      "seed": s.seed,
      "padding": inputs.resolve_padding(s.padding, s.use_tpu),
      "precision": s.precision,
  }
  values.update(methods.settings_record(method))
  if s.do_train:
    values["train_sha256"] = fileio.file_sha256(task.path(s.data_dir,
                                                          task.train))
  return values
