# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The job of run_classifier.py, phase by phase: the checks, the locked output
folder, training, the bundle export, evaluation and prediction.

`run(settings)` checks everything that can be checked without writing, then
locks --output_dir and runs the phases on one `Job` record (the checked
inputs every phase reads).
"""

import collections
import contextlib
import dataclasses
import os
import time

from absl import logging
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import run_folder
from adapter_bert.classifier import checkpoints
from adapter_bert.classifier import devices
from adapter_bert.classifier import evaluation
from adapter_bert.classifier import features
from adapter_bert.classifier import hooks
from adapter_bert.classifier import inputs
from adapter_bert.classifier import model_fn
from adapter_bert.classifier import session_predictor
from adapter_bert.classifier import settings as settings_lib
from adapter_bert.methods import base
import modeling
import optimization
import tokenization

InputError = errors.InputError


@dataclasses.dataclass(frozen=True)
class Job(object):
  """One job once its inputs are checked: what every phase reads.

  Attributes:
    settings: the `Settings`, a bundle's merged in.
    bundle: the `bundles.Bundle` of --adapter_bundle, or None.
    bert_config: the backbone's `modeling.BertConfig`.
    tokenizer: its `tokenization.FullTokenizer`.
    task: the `glue.Task`.
    method: the `TuningMethod`.
    ablations: the sets of layers --ablate_adapters switches off, one per
      evaluation (`settings.ablations`); () without an ablation.
    padding: the padding policy on this device (never "auto").
    model_shapes: {variable name: shape} of the model
      (`model_fn.describe_model`).
    role: this process's `devices.WorkerRole`.
  """

  settings: object
  bundle: object
  bert_config: modeling.BertConfig
  tokenizer: tokenization.FullTokenizer
  task: glue.Task
  method: base.TuningMethod
  ablations: tuple
  padding: str
  model_shapes: dict
  role: devices.WorkerRole

  @property
  def model(self):
    return model_fn.Model(self.bert_config, self.task.num_labels,
                          self.method, self.settings.precision)

  def model_without(self, layers_off):
    """The model with the method's additions in `layers_off` bypassed."""
    return dataclasses.replace(
        self.model, method=self.method.with_layers_off(layers_off))

  @property
  def bundle_dir(self):
    """Where training (or --export_from_checkpoint) writes the bundle."""
    s = self.settings
    return (s.export_adapter_bundle or
            os.path.join(s.output_dir, "adapter_bundle"))

  def export_bundle(self, checkpoint):
    """Writes the adapter bundle of `checkpoint` to `bundle_dir`."""
    s = self.settings
    return checkpoints.export_adapter_bundle(
        checkpoint, self.bundle_dir, self.method, self.task, self.bert_config,
        bundles.FeatureSettings(s.max_seq_length, s.do_lower_case,
                                fileio.file_sha256(s.vocab_file)),
        self.model_shapes, s.init_checkpoint)

  def estimator(self, weights, layers_off=(), **kwargs):
    """`devices.make_estimator` of this job's model on `weights`."""
    return devices.make_estimator(
        self.settings, self.model_without(layers_off), weights.model_dir,
        list(weights.init_checkpoints),
        compact_checkpoints=weights.compact, **kwargs)

  @contextlib.contextmanager
  def predictors(self, weights, feature_cache):
    """Yields a `Predictors` of the trained model on `weights`, closed on
    exit."""
    predictors = Predictors(self, weights, feature_cache)
    try:
      yield predictors
    finally:
      predictors.close()


class Predictors(object):
  """`predictors(batch_size, layers_off=())`: the job's trained model as an
  `evaluation.Predictor`-like object with `predict(split_name, examples,
  input_file)`.

  On CPU and GPU every call shares one graph and one session, built on the
  first call (`session_predictor`); on TPU each is a TPUEstimator.
  """

  def __init__(self, job, weights, feature_cache):
    self._job = job
    self._weights = weights
    self._feature_cache = feature_cache
    self._session = None  # the SessionPredictor, once built

  def __call__(self, batch_size, layers_off=()):
    return self.each(batch_size, [layers_off])[0]

  def each(self, batch_size, spans):
    """A predictor per set of layers off in `spans`; in one session, each
    split is predicted for all of them in one pass (`bound_each`)."""
    (job, s) = (self._job, self._job.settings)
    if not predicts_in_one_session(s):
      return [evaluation.Predictor(
          job.estimator(self._weights, layers_off,
                        predict_batch_size=batch_size),
          self._feature_cache, batch_size, s.use_tpu, job.padding)
              for layers_off in spans]
    if self._session is None:
      self._session = session_predictor.SessionPredictor(
          job.model, self._weights.checkpoints(), self._feature_cache,
          job.padding, devices.session_config(
              s.intra_op_parallelism_threads,
              s.inter_op_parallelism_threads, s.use_tpu))
    return self._session.bound_each(batch_size, spans)

  def close(self):
    if self._session is not None:
      self._session.close()
      self._session = None


def predicts_in_one_session(settings):
  """Whether evaluation and prediction share one graph and session (CPU,
  GPU), or go through TPUEstimator.predict (TPU: infeed and outfeed)."""
  return not settings.use_tpu


@dataclasses.dataclass(frozen=True)
class Weights(object):
  """Where the job's model finds its weights: the folder of its checkpoints,
  the checkpoints that initialise what those lack (first one first), and
  whether its checkpoints are compact (`checkpoints.compact_checkpoints`)."""

  model_dir: str
  init_checkpoints: tuple
  compact: bool

  def checkpoints(self):
    """Where each variable comes from, first holder first: the latest
    checkpoint of `model_dir` (if any), then `init_checkpoints`."""
    latest = tf.train.latest_checkpoint(self.model_dir)
    return ([latest] if latest else []) + list(self.init_checkpoints)


# ---------------------------------------------------------------- the checks


def load_backbone_inputs(settings):
  """The BERT config and tokenizer, checked against each other.

  Returns:
    (bert_config, tokenizer).
  """
  s = settings
  try:
    tokenization.validate_case_matches_checkpoint(s.do_lower_case,
                                                  s.init_checkpoint)
    bert_config = modeling.BertConfig.from_json_file(s.bert_config_file)
    tokenizer = tokenization.FullTokenizer(vocab_file=s.vocab_file,
                                           do_lower_case=s.do_lower_case)
    # [CLS]/[SEP]/[UNK] missing would otherwise fail mid-way through features.
    tokenizer.check_special_tokens()
  except ValueError as e:
    raise InputError(e)
  if s.max_seq_length > bert_config.max_position_embeddings:
    raise InputError(
        "--max_seq_length=%d is above max_position_embeddings=%d of "
        "--bert_config_file=%s" % (s.max_seq_length,
                                   bert_config.max_position_embeddings,
                                   s.bert_config_file))
  if len(tokenizer.vocab) != bert_config.vocab_size:
    raise InputError("--vocab_file=%s has %d tokens but --bert_config_file=%s "
                     "says vocab_size=%d" % (s.vocab_file, len(tokenizer.vocab),
                                             s.bert_config_file,
                                             bert_config.vocab_size))
  warn_on_case_mismatch(tokenizer.vocab, s.do_lower_case, s.vocab_file)
  return bert_config, tokenizer


def warn_on_case_mismatch(vocab, do_lower_case, vocab_file):
  """Warns when --do_lower_case contradicts the vocabulary: on an uncased
  vocab (no token with a capital letter), capitalised words all become
  [UNK] (14.7% of MRPC dev's tokens for MiniLM)."""
  # A capital is what lower-casing changes ("ℝ" is upper case with no
  # lower case: an uncased vocab keeps it).
  has_capitals = any(
      token != token.lower() for token in vocab
      if not (token.startswith("[") and token.endswith("]")))
  if not do_lower_case and not has_capitals:
    logging.warning("--do_lower_case=false, but --vocab_file=%s is uncased "
                    "(no token has a capital letter): every capitalised word "
                    "will be [UNK]; pass --do_lower_case=true", vocab_file)
  elif do_lower_case and has_capitals and len(vocab) > 1000:
    logging.warning("--do_lower_case=true, but --vocab_file=%s is cased: its "
                    "capitalised tokens are never used; pass "
                    "--do_lower_case=false for a cased model", vocab_file)


def run(settings, explicit=()):
  """The whole job of run_classifier.py: train, export, evaluate, predict.

  Args:
    settings: `Settings`.
    explicit: names of the settings the user gave explicitly; only used to
      warn when an adapter bundle overrides one of them.

  Returns:
    {dev split name: eval results dict} for every split evaluated.

  Raises:
    InputError: any user error, as one line. Nothing half-written is left.
  """
  job = checked_job(settings, explicit)
  s = job.settings
  with contextlib.ExitStack() as stack:
    try:
      stack.enter_context(run_folder.locked(
          s.output_dir, run_folder.LOCK if job.role.is_chief else
          "%s-%s-%d" % (run_folder.LOCK, job.role.task_type,
                        job.role.task_index)))
    except run_folder.FolderInUse as e:
      raise InputError(e)
    return run_in_folder(job)


def checked_job(settings, explicit=()):
  """Every check that writes nothing: settings, backbone, task, tuning
  method, init checkpoint and output paths.

  Returns:
    the `Job`.
  """
  settings, bundle = settings_lib.with_bundle_settings(settings, explicit)
  settings = settings_lib.with_resolved_precision(settings)
  settings_lib.validate_settings(settings)
  s = settings
  bert_config, tokenizer = load_backbone_inputs(s)
  if bundle:
    check_bundle_vocab(bundle, s.vocab_file)
  task = glue.get_task(s.task_name, language=s.xnli_language)
  if task.is_pair and s.max_seq_length < 5:
    raise InputError(
        "--max_seq_length=%d is too short for %s, a task of text pairs: "
        "[CLS] a [SEP] b [SEP] needs at least 5 tokens to keep a word of "
        "each text" % (s.max_seq_length, task.name))
  method = settings_lib.build_tuning_method(s, bert_config.num_hidden_layers)
  ablations = settings_lib.ablations(s, method, bert_config.num_hidden_layers)
  if s.max_seq_length + method.position_offset() > (
      bert_config.max_position_embeddings):
    raise InputError(
        "--max_seq_length=%d + the %d positions --tuning_mode=%s puts before "
        "the tokens is above max_position_embeddings=%d of "
        "--bert_config_file=%s" % (s.max_seq_length, method.position_offset(),
                                   method.name,
                                   bert_config.max_position_embeddings,
                                   s.bert_config_file))
  padding = inputs.resolve_padding(s.padding, s.use_tpu)
  logging.info("Padding: %s (--padding=%s)", padding, s.padding)

  model_shapes = model_fn.describe_model(bert_config, method, task.num_labels,
                                         s.max_seq_length)
  try:
    method.check(list(model_shapes))
  except ValueError as e:
    raise InputError(e)
  if s.init_checkpoint:
    checkpoints.check_init_checkpoint(
        s.init_checkpoint, model_shapes, method, s.bert_config_file,
        allow_partial=s.allow_partial_init_checkpoint)
    pooler_warning = s.do_train and checkpoints.untrained_pooler_warning(
        s.init_checkpoint, method)
    if pooler_warning:
      logging.warning("%s", pooler_warning)
  elif s.do_train and not method.whole_model:
    logging.warning("No --init_checkpoint: training on a randomly "
                    "initialised, frozen BERT.")
  logging.info("%s", model_fn.parameter_summary(model_shapes, method))
  # Every check above writes nothing; the first output comes next.
  settings_lib.check_output_paths(s, method)
  # Under multi_worker every worker runs this job in the same folder: the
  # chief writes the run's files, the others only train beside it.
  role = devices.worker_role(s.strategy)
  return Job(s, bundle, bert_config, tokenizer, task, method, ablations,
             padding, model_shapes, role)


def warn_if_unfinished(folder, checkpoint, doing):
  """Warns when `checkpoint` is short of the steps the run folder's
  manifest planned (a run stopped, or killed, before its end)."""
  try:
    planned = (run_folder.read_manifest(folder) or {}).get(
        "information", {}).get("num_train_steps")
    step = int(checkpoint.rsplit("-", 1)[1])
  except (ValueError, IndexError, AttributeError):
    return
  if isinstance(planned, int) and step < planned:
    logging.warning("%s checkpoint %s of an unfinished run: training stopped "
                    "at step %d of %d; rerun the training command to finish "
                    "it", doing.capitalize(), checkpoint, step, planned)


def check_bundle_vocab(bundle, vocab_file):
  """Refuses a --vocab_file other than the bundle's; warns if the bundle
  (version 4 or older) recorded none."""
  try:
    checked = bundles.check_vocab(bundle, vocab_file)
  except ValueError as e:
    raise InputError(e)
  if not checked:
    logging.warning("adapter bundle %s records no vocabulary (made by an "
                    "older version): --vocab_file=%s cannot be checked; it "
                    "must be the one it was trained with", bundle.path,
                    vocab_file)


def check_run_folder(folder, manifest, training, what="--output_dir"):
  """Refuses a run folder whose manifest differs (run_folder.check_manifest);
  warns about checkpoints made before manifests existed."""
  try:
    recorded = run_folder.check_manifest(folder, manifest, training, what)
  except ValueError as e:
    raise InputError("%s; %s" % (e, (
        "rerun with its settings, use another --output_dir, or add "
        "--overwrite_output_dir=true to start it again" if training else
        "give the settings it was trained with")))
  if recorded is None:
    logging.warning("%s=%s has checkpoints but no %s (written before run "
                    "manifests): its settings cannot be checked", what, folder,
                    run_folder.MANIFEST)


# ---------------------------------------------------------------- the phases


def run_in_folder(job):
  """The job once the checks passed and the output folder is locked."""
  s = job.settings
  manifest = (None if job.bundle else settings_lib.manifest_settings(
      s, job.task, job.bert_config, job.method, job.model_shapes))
  if s.overwrite_output_dir and job.role.is_chief:
    clear_previous_run(s.output_dir)
  if s.export_from_checkpoint:
    export_from_checkpoint(job, manifest)
    if not s.runs_model:
      return {}
  prepare_output_dir(s.output_dir, job.role.is_chief)
  feature_cache = features.FeatureCache(s.output_dir, job.task, job.tokenizer,
                                        s.vocab_file, s.do_lower_case,
                                        s.max_seq_length)
  weights = model_weights(job, manifest)
  # Every dev and test file is read (and checked) before training: a broken
  # test file is found now, not after an hour of training.
  eval_sets = (evaluation.read_splits(job.task, s.data_dir, job.task.dev)
               if s.do_eval else [])
  predict_sets = (evaluation.read_splits(job.task, s.data_dir, job.task.test)
                  if s.do_predict else [])
  if s.do_predict and not (s.do_train or s.do_eval):
    job.task.check_labelled_data(s.data_dir)  # else read above already
  log_precision(s)
  if s.do_train and not train(job, weights, feature_cache, manifest):
    return {}  # a worker that is not the chief: the chief writes the rest
  with job.predictors(weights, feature_cache) as predictor:
    (all_results, outputs) = evaluate(job, weights, predictor, eval_sets)
    outputs += predict(job, predictor, predict_sets)
  # Every result file of the job at once: a failure in a later split leaves
  # none of the earlier ones' files claiming to be this run's.
  for (path, text) in outputs:
    fileio.write_text(path, text)
    logging.info("Wrote %s", path)
  if job.bundle:
    fileio.remove_quietly(weights.model_dir)
  return all_results


def clear_previous_run(output_dir):
  """--overwrite_output_dir: removes a previous run's files, if any."""
  if (tf.io.gfile.exists(run_folder.manifest_path(output_dir)) or
      tf.train.latest_checkpoint(output_dir)):
    removed = run_folder.clear(output_dir)
    logging.info("--overwrite_output_dir: removed %d files and folders of "
                 "the previous run in %s", len(removed), output_dir)


def export_from_checkpoint(job, manifest):
  """--export_from_checkpoint: the bundle of an existing checkpoint, checked
  to be the model the settings describe."""
  s = job.settings
  source = s.export_from_checkpoint
  # A prefix is known by its .index file (on ram:// it answers isdir() too).
  if (not tf.io.gfile.isdir(source) or
      tf.io.gfile.exists(source + ".index")):
    source = os.path.dirname(source)
  if tf.train.latest_checkpoint(source):
    checkpoints.check_latest_checkpoint(source, "--export_from_checkpoint")
    # The task, method and sizes must be those it was trained with.
    check_run_folder(source, manifest, training=False,
                     what="--export_from_checkpoint")
    warn_if_unfinished(source, bundles.resolve_checkpoint(
        s.export_from_checkpoint), "exporting")
  # A compact checkpoint's backbone must be the one it was trained on.
  checkpoints.compact_checkpoints(source, s.init_checkpoint, job.method,
                                  job.model_shapes, will_train=False)
  job.export_bundle(s.export_from_checkpoint)


def prepare_output_dir(output_dir, is_chief=True):
  """Creates --output_dir and removes what killed runs left there: our own
  temporary files, and (by the chief, which holds the folder's lock while
  no other job writes there) TensorFlow's, with event files cut back to
  their last whole record."""
  tf.io.gfile.makedirs(output_dir)
  orphans = fileio.remove_orphans(output_dir)
  if is_chief:
    orphans += fileio.remove_tensorflow_leftovers(output_dir)
  if orphans:
    logging.info("Removed or repaired %d files that killed runs left in %s: "
                 "%s", len(orphans), output_dir, ", ".join(orphans))


def model_weights(job, manifest):
  """Where eval/predict find their weights: the training checkpoints in
  --output_dir, or a bundle on the backbone in a fresh model_dir of its own
  (so no stale checkpoint there can shadow the bundle); checks them.

  Returns:
    `Weights`.
  """
  s = job.settings
  if job.bundle:
    try:
      bundles.check_bert_config(job.bundle, job.bert_config.to_dict(),
                                s.bert_config_file)
      bundles.check_backbone(job.bundle, s.init_checkpoint)
    except ValueError as e:
      raise InputError(e)
    model_dir = os.path.join(s.output_dir, "bundle_model")
    fileio.remove_quietly(model_dir)
    # With a bundle nothing is restored from model_dir: no compact saver.
    return Weights(model_dir, (job.bundle.checkpoint, s.init_checkpoint),
                   False)
  latest = tf.train.latest_checkpoint(s.output_dir)
  if not s.do_train and not latest:
    raise InputError("--output_dir=%s holds no trained checkpoint to evaluate "
                     "or predict with; add --do_train=true, or give "
                     "--adapter_bundle" % s.output_dir)
  if latest:
    checkpoints.check_latest_checkpoint(s.output_dir)
    check_run_folder(s.output_dir, manifest, training=s.do_train)
    if not s.do_train:
      warn_if_unfinished(s.output_dir, latest, "evaluating and predicting")
  compact = checkpoints.compact_checkpoints(
      s.output_dir, s.init_checkpoint, job.method, job.model_shapes,
      s.do_train and job.role.is_chief)
  return Weights(s.output_dir,
                 (s.init_checkpoint,) if s.init_checkpoint else (), compact)


def log_precision(settings):
  """What --precision changes, and a warning where it only slows down."""
  s = settings
  if s.precision == "float32":
    return
  logging.info(
      "--precision=%s: the encoder computes in %s; variables, LayerNorm, "
      "softmax and the loss stay float32%s", s.precision,
      model_fn.PRECISIONS[s.precision][0].name,
      "; dynamic loss scaling" if model_fn.PRECISIONS[s.precision][1] else "")
  # (validate_settings refused float16 on TPU.)
  if s.precision == "mixed_float16" and not devices.gpu_available():
    logging.warning("--precision=mixed_float16 without a GPU: CPUs have no "
                    "fast float16 kernels, so this runs slower than "
                    "float32 (it is meant for GPUs)")


# ---------------------------------------------------------------- training


# What training runs on: the examples' features file, the schedule, and the
# step it starts at (a resumed run's).
TrainingPlan = collections.namedtuple(
    "TrainingPlan", ["path", "features_file", "num_train_steps",
                     "num_warmup_steps", "start_step"])


def train(job, weights, feature_cache, manifest):
  """Trains (or resumes), then exports the bundle (the chief).

  Returns:
    whether this process goes on to evaluate and predict (False for a
    worker that is not the chief).
  """
  s = job.settings
  plan = training_plan(job, feature_cache)
  train_input_fn = inputs.file_based_input_fn_builder(
      input_file=plan.features_file, seq_length=s.max_seq_length,
      is_training=True, drop_remainder=True, seed=s.seed,
      padding=job.padding, skip_batches=plan.start_step)
  if job.role.is_chief:
    run_folder.write_manifest(s.output_dir, manifest, {
        "init_checkpoint": s.init_checkpoint, "train_file": plan.path,
        "vocab_file": s.vocab_file,
        "num_train_steps": plan.num_train_steps})
  # The chief records the training time at every checkpoint, and at the
  # end: a stopped run's part counts too (its steps are saved), and a run
  # killed outright keeps the time of the steps it saved. A resume of a
  # finished run trains nothing and records nothing.
  clock = None
  if job.role.is_chief and plan.start_step < plan.num_train_steps:
    clock = run_folder.TrainingClock(s.output_dir)
  start = time.time()
  listeners = []
  if clock:
    listeners.append(hooks.AfterSaveListener(
        lambda: record_training_time(clock, time.time() - start)))
  try:
    fit(job, job.estimator(weights, num_train_steps=plan.num_train_steps,
                           num_warmup_steps=plan.num_warmup_steps),
        train_input_fn, plan.num_train_steps, listeners)
  finally:
    seconds = time.time() - start
    total = record_training_time(clock, seconds)
    if total is None:
      logging.info("Training took %.1f s", seconds)
    else:
      logging.info("Training took %.1f s (%.1f s in all invocations of "
                   "this run)", seconds, total)
  role = job.role
  if not role.is_chief:
    # The Estimator gave this worker a scratch model_dir of its own.
    fileio.remove_quietly(os.path.join(
        s.output_dir, "tmp_%s_%d" % (role.task_type, role.task_index)))
    logging.info("%s %d of %d (not the chief): trained; the chief writes "
                 "the checkpoints, the bundle and the results",
                 role.task_type, role.task_index, role.num_workers)
    return False
  if not job.method.whole_model or s.export_adapter_bundle:
    job.export_bundle(s.output_dir)
  else:
    # A whole-model bundle is the model again, and no backbone takes it.
    logging.info("tuning_mode=%s: the checkpoint is the model; no adapter "
                 "bundle written (--export_adapter_bundle writes one)",
                 job.method.name)
  return True


def record_training_time(clock, seconds):
  """Records this invocation's `seconds` with `clock` (None: nothing to
  record); returns the run's total, or None. A failure to write is a
  warning: it must never hide why training ended, nor stop it."""
  if clock is None:
    return None
  try:
    return clock.record(seconds)
  except (tf.errors.OpError, OSError) as e:
    logging.warning("could not record the training time in %s (%s)",
                    clock.path, errors.one_line(e))
    return None


def training_plan(job, feature_cache):
  """Reads the training examples, writes (or reuses) their features and
  logs the plan.

  Returns:
    `TrainingPlan`.
  """
  s = job.settings
  task = job.task
  train_path = task.path(s.data_dir, task.train)
  train_examples = task.get_train_examples(s.data_dir)
  if not train_examples:
    raise InputError("%s: no training examples" % train_path)
  num_train_steps = max(1, int(len(train_examples) / s.train_batch_size *
                               s.num_train_epochs))
  num_warmup_steps = int(num_train_steps * s.warmup_proportion)
  train_file = feature_cache.features_file("train", train_examples,
                                           train_path)
  logging.info("***** Running training *****")
  logging.info("  Num examples = %d", len(train_examples))
  logging.info("  Batch size = %d", s.train_batch_size)
  if s.strategy != "one_device":
    replicas = (s.num_cpu_devices or len(tf.config.list_physical_devices(
        "GPU")) or 1) if s.strategy == "mirrored" else None
    logging.info("  --strategy=%s: %s", s.strategy, (
        "%d replicas of %d examples each (the global batch of %d is split "
        "over them; the schedule counts global batches)" % (
            replicas, s.train_batch_size // replicas, s.train_batch_size)
        if replicas else "the global batch of %d is split over every "
        "worker's replicas" % s.train_batch_size))
  logging.info("  Num steps = %d", num_train_steps)
  # A resumed run skips the batches it consumed before; with dropout a
  # function of the step (modeling.dropout_seed) it then ends exactly as
  # an uninterrupted run.
  start_step = checkpoints.checkpoint_step(s.output_dir)
  if start_step:
    logging.info("Resuming at step %d of %d", start_step, num_train_steps)
  return TrainingPlan(train_path, train_file, num_train_steps,
                      num_warmup_steps, start_step)


def fit(job, trainer, train_input_fn, num_train_steps, listeners=()):
  """Runs the training steps; a signal stops them cleanly after a step.
  `listeners`: `CheckpointSaverListener`s of the Estimator's checkpoints.

  Raises:
    InputError: the divergence guard stopped training, or a signal did.
  """
  s = job.settings
  stopper = hooks.StopOnSignalHook()
  try:
    if s.strategy == "multi_worker":
      # The Estimator runs several workers only through train_and_evaluate
      # (its "distribute coordinator"); with no evaluator task in TF_CONFIG
      # the eval spec is never used: evaluation runs after training, here.
      tf.estimator.train_and_evaluate(
          trainer,
          tf.estimator.TrainSpec(train_input_fn, max_steps=num_train_steps,
                                 hooks=[stopper],
                                 saving_listeners=list(listeners)),
          tf.estimator.EvalSpec(train_input_fn, steps=1))
    else:
      trainer.train(input_fn=train_input_fn, max_steps=num_train_steps,
                    hooks=[stopper], saving_listeners=list(listeners))
  except tf.errors.InvalidArgumentError as e:
    if optimization.DIVERGED_MARKER not in str(e):
      raise
    raise InputError(checkpoints.diverged_message(e, s))
  if stopper.received and stopper.step < num_train_steps:
    raise InputError(
        "stopped by %s at step %d of %d; saved %s; run the same command "
        "again to resume" % (stopper.received, stopper.step, num_train_steps,
                             tf.train.latest_checkpoint(s.output_dir)))


# ---------------------------------------------------------------- results


def evaluate(job, weights, predictor, eval_sets):
  """Every dev split's metrics, once per ablation (`Job.ablations`).

  Args:
    predictor: the `Predictors` of `Job.predictors`.

  Returns:
    ({split name: results} (the last ablation's), [(path, text)] of the
    result files).
  """
  s = job.settings
  all_results = collections.OrderedDict()
  outputs = []  # (path, text): written together at the end
  if not eval_sets:
    return (all_results, outputs)
  global_step = (job.bundle.global_step if job.bundle else
                 checkpoints.checkpoint_step(weights.model_dir))
  spans = job.ablations or [()]
  for (layers_off, model) in zip(spans,
                                 predictor.each(s.eval_batch_size, spans)):
    for data in eval_sets:
      results = evaluation.evaluate_split(model, job.task, data, global_step)
      text = evaluation.format_eval_results(results)
      stem = "eval_results"
      if layers_off:
        # Ablations of one model are evaluated side by side: each its file.
        stem += "_ablated_" + base.format_layer_list(layers_off)
      logging.info("***** Eval results: %s %s (%s) *****", job.task.name,
                   data.split.name, stem)
      for line in text.splitlines():
        logging.info("  %s", line)
      outputs.append((os.path.join(s.output_dir, evaluation.result_file_name(
          stem, data.split, data is eval_sets[0], "txt")), text))
      all_results[data.split.name] = results
  return (all_results, outputs)


def predict(job, predictor, predict_sets):
  """Every test split's predictions: [(path, text)] of their files.

  Args:
    predictor: the `Predictors` of `Job.predictors`.
  """
  s = job.settings
  if not predict_sets:
    return []
  predictor = predictor(s.predict_batch_size)
  outputs = []
  for data in predict_sets:
    outputs.extend(evaluation.predict_test_split(
        predictor, job.task, data, data.split is job.task.test[0],
        s.output_dir))
  return outputs
