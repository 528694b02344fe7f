# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""What runs around the training steps: session run hooks (a clean stop on
SIGTERM, the progress line and its TensorBoard scalars), the TPU host call
that carries those scalars off the device, and the scaffolds that make
checkpoints compact and mirrored copies equal."""

import signal
import threading
import time

from absl import logging
import tensorflow.compat.v1 as tf

from adapter_bert import console
from adapter_bert.methods import base
import optimization


class StopOnSignalHook(tf.estimator.SessionRunHook):
  """Turns SIGTERM and SIGINT into a clean stop after the current step.

  Preemptible GPU and TPU machines send SIGTERM before they go. The handler
  only records the signal; after the step that is running, the session is
  asked to stop, and the Estimator's checkpoint hook then saves the last
  step as it does at the end of training. `job.run` reports it and exits
  non-zero; the same command resumes from that checkpoint.
  """

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.received = None
    self.step = None
    self._previous = {}

  def begin(self):
    self._global_step = tf.train.get_global_step()
    # Handlers can only be set from the main thread (a library caller may
    # train in another one: then signals keep their usual meaning).
    if threading.current_thread() is threading.main_thread():
      for number in self.SIGNALS:
        self._previous[number] = signal.signal(number, self._handle)

  def _handle(self, number, frame):  # pylint: disable=unused-argument
    self.received = signal.Signals(number).name

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(self._global_step)

  def after_run(self, run_context, run_values):
    if self.received:
      self.step = int(run_values.results) + 1
      run_context.request_stop()

  def end(self, session):
    for (number, handler) in self._previous.items():
      signal.signal(number, handler)
    self._previous = {}


class AfterSaveListener(tf.estimator.CheckpointSaverListener):
  """Calls `callback()` after every checkpoint the Estimator saves."""

  def __init__(self, callback):
    self._callback = callback

  def after_save(self, session, global_step_value):
    del session, global_step_value  # Unused.
    self._callback()


class ThroughputHook(tf.estimator.SessionRunHook):
  """Every `every_n_steps` steps: logs the progress line and writes the
  TensorBoard scalars.

  The line: `step 120/343 (35%): loss = 0.4123, 2.41 steps/s, 77.1
  examples/s, ETA 1m32s` (the rates and the ETA over the last window). The
  scalars, in `summary_dir`: train/loss, train/learning_rate and
  train/examples_per_second (the Estimator's own `loss` is beside them).
  """

  def __init__(self, loss, learning_rate, batch_size, every_n_steps,
               total_steps=None, summary_dir=None):
    """Args:
      loss, learning_rate: scalar Tensors read at each step.
      total_steps: (optional) the step training ends at, for the progress.
      summary_dir: (optional) where the scalars go; None writes none (a
        non-chief worker).
    """
    self._loss = loss
    self._learning_rate = learning_rate
    self._batch_size = batch_size
    self._every_n_steps = max(1, every_n_steps)
    self._total_steps = total_steps
    self._summary_dir = summary_dir

  def begin(self):
    self._global_step = tf.train.get_global_step()
    self._last_time = None
    self._last_step = None
    self._writer = (tf.summary.FileWriterCache.get(self._summary_dir)
                    if self._summary_dir else None)

  def before_run(self, run_context):
    return tf.estimator.SessionRunArgs(
        [self._global_step, self._loss, self._learning_rate])

  def after_run(self, run_context, run_values):
    (step, loss, learning_rate) = run_values.results
    now = time.time()
    if self._last_time is None:
      (self._last_time, self._last_step) = (now, step)
      return
    if step - self._last_step >= self._every_n_steps:
      steps_per_sec = (step - self._last_step) / (now - self._last_time)
      examples_per_sec = steps_per_sec * self._batch_size
      where = "step %d" % step
      eta = ""
      if self._total_steps:
        where += "/%d (%.0f%%)" % (self._total_steps,
                                   100.0 * step / self._total_steps)
        eta = ", ETA " + console.duration(
            max(0, self._total_steps - step) / steps_per_sec)
      logging.info("%s: loss = %.4f, %.2f steps/s, %.1f examples/s%s", where,
                   loss, steps_per_sec, examples_per_sec, eta)
      if self._writer is not None:
        self._writer.add_summary(tf.Summary(value=[
            tf.Summary.Value(tag=tag, simple_value=float(value))
            for (tag, value) in (("train/loss", loss),
                                 ("train/learning_rate", learning_rate),
                                 ("train/examples_per_second",
                                  examples_per_sec))]), step)
      (self._last_time, self._last_step) = (now, step)

  def end(self, session):
    if self._writer is not None:
      self._writer.flush()


def tpu_host_call(model_dir, **scalars):
  """A TPUEstimator host call writing `scalars` as TensorBoard summaries.

  On a TPU the training loop runs `iterations_per_loop` steps on the device
  without returning; the host call's tensors travel out through the outfeed
  every step and the host writes them to `model_dir` (as TPUEstimator's own
  global_step/sec and examples/sec), where TensorBoard reads them.

  Args:
    model_dir: the folder of the event files.
    **scalars: {name: float32 scalar Tensor} computed on the device.

  Returns:
    (host_fn, tensors), for TPUEstimatorSpec(host_call=...).
  """
  names = sorted(scalars)
  # Host-call tensors need a leading (batch-like) axis.
  tensors = [tf.reshape(tf.cast(tf.train.get_global_step(), tf.int64), [1])]
  tensors += [tf.reshape(tf.cast(scalars[name], tf.float32), [1])
              for name in names]

  def host_fn(global_step, *values):
    step = global_step[0]
    with tf.compat.v2.summary.create_file_writer(model_dir).as_default():
      with tf.compat.v2.summary.record_if(True):
        for (name, value) in zip(names, values):
          # The tags of ThroughputHook's scalars on CPU and GPU.
          tf.compat.v2.summary.scalar("train/" + name, value[0], step=step)
        return tf.summary.all_v2_summary_ops()

  return (host_fn, tensors)


def compact_scaffold(method, keep_checkpoint_max):
  """A Scaffold whose checkpoints hold only what training changes.

  The saver takes every global variable but the frozen model weights: the
  trained variables, their Adam slots and the global step. The frozen weights
  are initialised from the pre-trained checkpoint (their initializers, set by
  init_from_checkpoint) by the local init op, which the session manager runs
  at every start, after a checkpoint was restored or not. A BERT-base adapter
  run then writes ~30 MB per checkpoint instead of ~470 MB.

  Args:
    method: the `TuningMethod`; what it does not train is frozen.
    keep_checkpoint_max: checkpoints kept, as the Estimator's own saver.

  Returns:
    tf.train.Scaffold.
  """
  # The model_fn (and so this) runs once per replica under tf.distribute:
  # one scaffold serves them all, so no replica's initializers run after
  # another's replica_sync_op.
  built = tf.get_collection(_COMPACT_SCAFFOLD)
  if built:
    return built[0]
  frozen = [v for v in tf.trainable_variables()
            if not method.trains(base.variable_name(v))]
  frozen_ids = {id(v) for v in frozen}
  saved = [v for v in tf.global_variables() if id(v) not in frozen_ids]
  saver = tf.train.Saver(saved, sharded=True, max_to_keep=keep_checkpoint_max,
                         save_relative_paths=True)
  # Through the graph collection, not the Scaffold argument: under
  # tf.distribute the Estimator tests that argument's truth (`if op:`), which
  # a Tensor refuses; the collection is read by every path alike.
  tf.add_to_collection(tf.GraphKeys.READY_FOR_LOCAL_INIT_OP,
                       tf.report_uninitialized_variables(saved))
  local_init_op = tf.group(tf.variables_initializer(frozen),
                           tf.train.Scaffold.default_local_init_op())
  if optimization.replica_count() > 1:
    with tf.control_dependencies([local_init_op]):
      local_init_op = replica_sync_op()
  scaffold = tf.train.Scaffold(
      init_op=tf.variables_initializer(saved),
      local_init_op=local_init_op,
      saver=saver)
  tf.add_to_collection(_COMPACT_SCAFFOLD, scaffold)
  return scaffold


_COMPACT_SCAFFOLD = "adapter_bert_compact_scaffold"


def replica_sync_op():
  """Copies every mirrored variable's first copy into its other copies.

  Under MirroredStrategy a variable has one copy per device, and the copies
  after the first take their initial value from the first one's *original*
  initializer. `init_from_checkpoint` replaces only the first copy's, so the
  other replicas would start from random weights (measured: different losses
  from step 0). This op, run by the session manager after every
  initialisation or restore, makes every copy the first one's.
  """
  strategy = tf.distribute.get_strategy()
  assignments = []
  for variable in tf.global_variables():
    copies = strategy.experimental_local_results(variable)
    for copy in copies[1:]:
      assignments.append(copy.assign(copies[0].read_value()))
  return tf.group(*assignments, name="replica_sync")
