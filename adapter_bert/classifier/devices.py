# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Devices: tf.distribute strategies, the session's devices and threads, this
process's role in a cluster, and the TPUEstimator built on them."""

import collections
import json
import os

import tensorflow.compat.v1 as tf

from adapter_bert import errors
from adapter_bert.classifier import model_fn

InputError = errors.InputError


STRATEGIES = ("one_device", "mirrored", "multi_worker")


def session_config(intra_op_threads, inter_op_threads, use_tpu,
                   num_cpu_devices=0):
  """The session's devices and thread pools; 0 means the default.

  The default inter-op pool is 1 thread on a machine with no GPU: matmuls
  already use every core, and one op at a time was measured faster there
  than TensorFlow's default (one thread per core; benchmarks/README.md).
  Elsewhere TensorFlow chooses.

  Args:
    num_cpu_devices: logical CPU devices for a mirrored strategy over CPUs.
      They must be declared here: devices set with `tf.config` do not reach
      the Estimator's session. Replicas then run ops side by side and wait on
      each other in all-reduces, which deadlocks a small inter-op pool, so it
      gets at least 8 threads per device.
  """
  device_count = {}
  if num_cpu_devices > 1:
    device_count = {"CPU": num_cpu_devices}
    inter_op_threads = max(inter_op_threads, 8 * num_cpu_devices)
  elif not inter_op_threads and not use_tpu and not gpu_available():
    inter_op_threads = 1
  if not (intra_op_threads or inter_op_threads or device_count):
    return None
  return tf.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                        inter_op_parallelism_threads=inter_op_threads,
                        device_count=device_count,
                        allow_soft_placement=True)


def declare_cpu_devices(count):
  """Splits the CPU into `count` logical devices in TF's eager context.

  The Estimator's session gets its devices from `session_config`; this is
  for MirroredStrategy's constructor, which checks its devices against the
  eager context. It must run before that context starts (before the first
  eager op); afterwards the context keeps what it has, and a constructor
  given missing devices fails with TF's own message.
  """
  cpus = tf.config.list_physical_devices("CPU")
  try:
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)
  except RuntimeError:
    pass  # the context started already


def build_strategy(strategy, num_cpu_devices=0):
  """The tf.distribute strategy of --strategy, or None for one device.

  mirrored: synchronous replicas on this machine, one per GPU (or one per
  logical CPU device with `num_cpu_devices`). multi_worker: the same across
  the machines `TF_CONFIG` lists. The settings were checked against this
  machine by `settings.validate_settings`.
  """
  if strategy == "one_device":
    return None
  if strategy == "mirrored":
    if num_cpu_devices > 1:
      declare_cpu_devices(num_cpu_devices)
      return tf.distribute.MirroredStrategy(
          ["/cpu:%d" % i for i in range(num_cpu_devices)])
    return tf.distribute.MirroredStrategy()  # every local GPU
  if strategy == "multi_worker":
    return tf.distribute.experimental.MultiWorkerMirroredStrategy()
  raise ValueError("unknown strategy %r (known: %s)" % (
      strategy, ", ".join(STRATEGIES)))


def gpu_available():
  return bool(tf.config.list_physical_devices("GPU"))


# CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic, which
# oneDNN uses for bfloat16 matmuls.
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo="/proc/cpuinfo"):
  """The CPU's feature flags, or an empty set where the file is absent."""
  try:
    with open(cpuinfo) as f:
      for line in f:
        if line.startswith("flags"):
          return set(line.split(":", 1)[1].split())
  except OSError:
    pass
  return set()


def native_bfloat16(use_tpu, cpuinfo="/proc/cpuinfo"):
  """Whether this machine computes bfloat16 natively, and why (or why not).

  TPUs do; GPUs of compute capability 8.0 and later (Ampere on) do; CPUs
  that report AVX512_BF16 or AMX do. Elsewhere bfloat16 is emulated, slower
  than float32.

  Returns:
    (bool, a phrase for the log).
  """
  if use_tpu:
    return (True, "a Cloud TPU")
  for gpu in tf.config.list_physical_devices("GPU"):
    capability = tf.config.experimental.get_device_details(gpu).get(
        "compute_capability")
    if capability and tuple(capability) >= (8, 0):
      return (True, "a GPU of compute capability %d.%d" % tuple(capability))
  if tf.config.list_physical_devices("GPU"):
    return (False, "GPUs older than compute capability 8.0")
  found = sorted(cpu_flags(cpuinfo) & set(BFLOAT16_CPU_FLAGS))
  if found:
    return (True, "a CPU that reports %s" % " and ".join(found))
  return (False, "no TPU, no GPU and a CPU without AVX512_BF16 or AMX")


def make_estimator(settings, model, model_dir, init_checkpoints,
                   num_train_steps=None, num_warmup_steps=None,
                   predict_batch_size=None, compact_checkpoints=False):
  """A TPUEstimator; on CPU/GPU it runs as a normal Estimator.

  Args:
    settings: `Settings` (device, batch sizes, learning rate, seed...).
    model: the `model_fn.Model` it trains or predicts with.
    model_dir: where checkpoints are written and read.
    init_checkpoints: checkpoints that initialise the variables, first one
      first (see `checkpoints.checkpoint_assignment_maps`).
    num_train_steps, num_warmup_steps: the schedule, for training (None: an
      estimator that only predicts).
    predict_batch_size: evaluation predicts too, so it passes
      eval_batch_size here; default settings.predict_batch_size.
    compact_checkpoints: checkpoints hold only the trained variables, their
      optimizer slots and the step (`hooks.compact_scaffold`).
  """
  s = settings
  config = run_config(s, model_dir)
  training = None
  if num_train_steps is not None:
    training = model_fn.Training(
        learning_rate=s.learning_rate, num_train_steps=num_train_steps,
        num_warmup_steps=num_warmup_steps, max_loss=s.max_loss,
        batch_size=s.train_batch_size,
        log_every_n_steps=s.log_every_n_steps,
        adam_bias_correction=s.adam_bias_correction)
  return tf.estimator.tpu.TPUEstimator(
      use_tpu=s.use_tpu,
      model_fn=model_fn.model_fn_builder(
          model, init_checkpoints, use_tpu=s.use_tpu, training=training,
          compact_checkpoints=compact_checkpoints,
          keep_checkpoint_max=config.keep_checkpoint_max),
      config=config,
      train_batch_size=s.train_batch_size,
      predict_batch_size=predict_batch_size or s.predict_batch_size)


def run_config(settings, model_dir):
  """The estimator's RunConfig: devices, strategy, seed, checkpoint and log
  intervals, and the TPU's loop."""
  s = settings
  tpu_cluster_resolver = None
  if s.use_tpu and s.tpu_name:
    tpu_cluster_resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        s.tpu_name, zone=s.tpu_zone, project=s.gcp_project)
  return tf.estimator.tpu.RunConfig(
      cluster=tpu_cluster_resolver,
      session_config=session_config(s.intra_op_parallelism_threads,
                                    s.inter_op_parallelism_threads,
                                    s.use_tpu, s.num_cpu_devices),
      train_distribute=build_strategy(s.strategy, s.num_cpu_devices),
      master=s.master,
      model_dir=model_dir,
      tf_random_seed=s.seed,
      save_checkpoints_steps=s.save_checkpoints_steps,
      # On CPU/GPU our ThroughputHook logs instead: TPUEstimator's own rate
      # hooks would fire every step there.
      log_step_count_steps=s.log_every_n_steps if s.use_tpu else None,
      tpu_config=tf.estimator.tpu.TPUConfig(
          iterations_per_loop=s.iterations_per_loop,
          num_shards=s.num_tpu_cores,
          per_host_input_for_training=(
              tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2)))


WorkerRole = collections.namedtuple(
    "WorkerRole", ["task_type", "task_index", "num_workers", "is_chief"])


def worker_role(strategy):
  """This process's place in a multi-worker cluster (TF_CONFIG).

  The chief is the "chief" task, or worker 0 when the cluster has none (the
  rule of tf.distribute and the Estimator). Outside multi_worker every
  process is its own chief.

  Raises:
    InputError: TF_CONFIG that is not the JSON of a cluster and a task.
  """
  if strategy != "multi_worker":
    return WorkerRole("worker", 0, 1, True)
  try:
    config = json.loads(os.environ.get("TF_CONFIG", ""))
    cluster = config["cluster"]
    task_type = config["task"]["type"]
    task_index = int(config["task"].get("index", 0))
    num_workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise InputError("TF_CONFIG is not the JSON of a cluster and this task "
                     "(%s)" % errors.one_line(e, 100))
  is_chief = task_type == "chief" or (
      task_type == "worker" and task_index == 0 and "chief" not in cluster)
  return WorkerRole(task_type, task_index, num_workers, is_chief)
