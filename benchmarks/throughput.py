# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""How fast this machine trains, evaluates and predicts, in one run.

Prints, on the machine at hand:
  - the fp32 matmul peak (TensorFlow, 4096 x 4096, this job's threads);
  - train examples/s and real tokens/s, adapters and full fine-tuning, under
    the default padding (auto) and every row padded to --max_seq_length, in
    float32, and of adapters as run_classifier.py trains them by default
    (--precision=auto: bfloat16 on a CPU with AVX512_BF16 or AMX);
  - the adapter / full step-time ratio at the same padding;
  - useful GFLOP/s on real tokens, as a percentage of the matmul peak;
  - eval and predict examples/s;
  - feature conversion rows/s (tokenize + write), extrapolated to MNLI;
  - the peak RSS of each measurement (each runs in a process of its own).

Training runs through the real path: classifier.make_estimator, the cached
features and the input pipeline of run_classifier.py, on real GLUE rows and
real weights. Steps 1..--warmup_steps are not timed (graph building,
checkpoint restore, first-step allocation), as in the PyTorch reference.

  python benchmarks/throughput.py                 # MiniLM on real MRPC, batch 32
  python benchmarks/throughput.py --train_steps=60 --only=train_adapters_auto

Nothing else should run on the machine meanwhile: on 2 cores any other job
shows up in every figure.
"""

import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

# `python benchmarks/<name>.py` puts benchmarks/ on sys.path, not the
# repository root that holds adapter_bert/ and modeling.py: add it.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

# Before TensorFlow loads: its start-up noise is hidden.
from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import classifier
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert.methods import base
import modeling
import tokenization

FLAGS = flags.FLAGS

OPTION_FLAGS = ("bert_dir", "glue_dir", "task", "conversion_task",
                "max_seq_length", "batch_size", "eval_batch_size",
                "train_steps", "warmup_steps", "adapter_size")
flags.DEFINE_string("bert_dir",
                    os.path.join(REPO_ROOT, ".cache", "assets",
                                 "all-MiniLM-L6-v2"),
                    "Folder with bert_config.json, vocab.txt, bert_model.ckpt "
                    "(default: the MiniLM that `make assets` converts).")
flags.DEFINE_string("glue_dir",
                    os.path.join(os.path.dirname(REPO_ROOT), "shared", "glue"),
                    "GLUE data in glue_data layout.")
flags.DEFINE_string("task", "MRPC", "GLUE task to train on.")
flags.DEFINE_string("conversion_task", "SST-2",
                    "Task whose train split is converted to measure feature "
                    "conversion (SST-2: 67k rows).")
flags.DEFINE_integer("max_seq_length", 128, "As run_classifier.py.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("eval_batch_size", 64, "Eval and predict batch size.")
flags.DEFINE_integer("train_steps", 40, "Training steps per measurement.")
flags.DEFINE_integer("warmup_steps", 3, "Untimed first steps.")
flags.DEFINE_integer("adapter_size", 64, "Adapter bottleneck width.")
flags.DEFINE_list("only", None, "Run only these measurements (names as in "
                  "the table).")
flags.DEFINE_string("child", None, "Internal: run one measurement, print JSON.")
flags.DEFINE_string("work_dir", None, "Scratch folder (default: a temp dir).")
flags.DEFINE_string("json_out", None, "Also write all figures here as JSON.")

# The project's own method (the registry's first) and the reference it is
# measured against (plain fine-tuning), named as the figures are.
MAIN = methods.names()[0]
REFERENCE = methods.reference().name

# name: (kind, tuning mode, padding)
MEASUREMENTS = [
    ("matmul_peak", ("peak", None, None)),
    ("train_%s_auto" % MAIN, ("train", MAIN, "auto")),
    # What run_classifier.py does with no --padding or --precision flag:
    # --precision=auto, bfloat16 on a CPU with AVX512_BF16 or AMX.
    ("train_%s_default" % MAIN, ("train", MAIN, "auto")),
    ("train_%s_auto" % REFERENCE, ("train", REFERENCE, "auto")),
    ("train_%s_static" % MAIN, ("train", MAIN, "static")),
    ("train_%s_batch" % MAIN, ("train", MAIN, "batch")),
    ("train_%s_static" % REFERENCE, ("train", REFERENCE, "static")),
    # --strategy=mirrored over 2 logical CPU devices, the same global batch;
    # compare with train_adapters_static (each replica pads its half batch
    # alike only under static padding). Both logical devices share the same
    # cores: this measures the mechanism on CPU, not what GPUs would gain.
    ("train_%s_mirrored2" % MAIN, ("train", MAIN, "static")),
    # --precision=mixed_bfloat16, against train_adapters_static / eval_static.
    ("train_%s_bf16" % MAIN, ("train", MAIN, "static")),
    ("eval_auto", ("eval", MAIN, "auto")),
    ("eval_default", ("eval", MAIN, "auto")),  # as run_classifier.py
    # The same through Estimator.predict, as run_classifier.py evaluates on
    # TPU (a graph built and a checkpoint restored per call).
    ("eval_auto_estimator", ("eval", MAIN, "auto")),
    ("eval_static", ("eval", MAIN, "static")),
    ("eval_static_bf16", ("eval", MAIN, "static")),
    ("predict_auto", ("predict", MAIN, "auto")),
    ("conversion", ("convert", None, None)),
    ("conversion_pairs", ("convert_pairs", None, None)),
]
# Settings a measurement changes from the defaults of settings_for.
# Every other measurement is float32, on any machine.
SETTINGS_CHANGES = {
    "train_%s_default" % MAIN: {"precision": "auto"},
    "eval_default": {"precision": "auto"},
    "train_%s_mirrored2" % MAIN: {"strategy": "mirrored", "num_cpu_devices": 2},
    "train_%s_bf16" % MAIN: {"precision": "mixed_bfloat16"},
    "eval_static_bf16": {"precision": "mixed_bfloat16"},
}


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_peak_gflops(threads, size=4096, repeats=5):
  """Best of `repeats` fp32 [size, size] matmuls, in GFLOP/s."""
  with tf.Graph().as_default():
    a = tf.Variable(tf.random.normal([size, size]))
    b = tf.Variable(tf.random.normal([size, size]))
    product = tf.reduce_sum(tf.matmul(a, b))
    config = classifier.session_config(threads, 0, use_tpu=False)
    with tf.Session(config=config) as session:
      session.run(tf.global_variables_initializer())
      session.run(product)
      best = float("inf")
      for _ in range(repeats):
        start = time.time()
        session.run(product)
        best = min(best, time.time() - start)
  return 2.0 * size ** 3 / best / 1e9


def forward_flops_per_token(config, adapter_size, mean_attended):
  """Matmul FLOPs of one token's forward pass through the encoder.

  Args:
    mean_attended: mean number of keys a token attends to (its row's
      length, averaged over tokens).
  """
  h, i = config.hidden_size, config.intermediate_size
  per_layer = 2 * (4 * h * h + 2 * h * i)  # Q, K, V, output; FFN in and out
  per_layer += 2 * 2 * mean_attended * h  # scores and context
  per_layer += 2 * 2 * (2 * h * adapter_size) if adapter_size else 0
  return config.num_hidden_layers * per_layer


def useful_flops_per_token(config, tuning_mode, adapter_size, mean_attended):
  """FLOPs a dense, unpadded step must do per real token.

  Forward plus the input gradients through every layer (both methods train
  something in the lowest layer); full fine-tuning adds every weight
  gradient, adapters only their own. Counted for the whole last layer, as
  the PyTorch reference computes it (this project computes only its [CLS]
  row, see modeling.BertModel(pooled_only)).
  """
  size = adapter_size if tuning_mode == MAIN else 0
  forward = forward_flops_per_token(config, size, mean_attended)
  if methods.get(tuning_mode).whole_model:
    return 3 * forward
  adapter_weight_grads = config.num_hidden_layers * 2 * 2 * (2 * config.hidden_size * size)
  return 2 * forward + adapter_weight_grads


class StepTimer(tf.estimator.SessionRunHook):
  """Wall time of each training step after the first `skip`."""

  def __init__(self, skip):
    self.skip = skip
    self.times = []
    self._count = 0
    self._start = None

  def before_run(self, run_context):
    self._start = time.time()

  def after_run(self, run_context, run_values):
    self._count += 1
    if self._count > self.skip:
      self.times.append(time.time() - self._start)


def batch_widths(input_fn, batch_size, num_batches):
  """Padded widths and real tokens of the first batches the input_fn makes."""
  with tf.Graph().as_default():
    dataset = input_fn({"batch_size": batch_size})
    batch = tf.data.make_one_shot_iterator(dataset).get_next()
    widths, real = [], []
    with tf.Session() as session:
      for _ in range(num_batches):
        mask = session.run(batch["input_mask"])
        widths.append(mask.shape[1])
        real.append(int(mask.sum()))
  return widths, real


def settings_for(opts, work_dir, tuning_mode, padding, **changes):
  """The measurement's settings, --precision=auto resolved for this machine
  (logged with the reason)."""
  return classifier.with_resolved_precision(classifier.Settings(**dict(dict(
      task_name=opts.task, data_dir=os.path.join(opts.glue_dir, opts.task),
      output_dir=work_dir,
      bert_config_file=os.path.join(opts.bert_dir, "bert_config.json"),
      vocab_file=os.path.join(opts.bert_dir, "vocab.txt"),
      init_checkpoint=os.path.join(opts.bert_dir, "bert_model.ckpt"),
      max_seq_length=opts.max_seq_length, train_batch_size=opts.batch_size,
      eval_batch_size=opts.eval_batch_size,
      predict_batch_size=opts.eval_batch_size,
      learning_rate=3e-4 if tuning_mode == MAIN else 5e-5,
      tuning_mode=tuning_mode,
      adapter_size=opts.adapter_size if tuning_mode == MAIN else None,
      padding=padding, precision="float32", save_checkpoints_steps=10 ** 6,
      log_every_n_steps=10 ** 6), **changes)))


def prepare(settings):
  """The pieces classifier.run builds, for one measurement."""
  bert_config, tokenizer = classifier.load_backbone_inputs(settings)
  task = glue.get_task(settings.task_name)
  method = classifier.build_tuning_method(settings)
  feature_cache = classifier.FeatureCache(
      settings.output_dir, task, tokenizer, settings.vocab_file,
      settings.do_lower_case, settings.max_seq_length)
  padding = classifier.resolve_padding(settings.padding, settings.use_tpu)
  return bert_config, task, method, feature_cache, padding


def measure_train(opts, work_dir, tuning_mode, padding_flag, **changes):
  if changes.get("num_cpu_devices"):
    # Before this process's first eager op (batch_widths below).
    classifier.declare_cpu_devices(changes["num_cpu_devices"])
  s = settings_for(opts, work_dir, tuning_mode, padding_flag, **changes)
  bert_config, task, method, feature_cache, padding = prepare(s)
  examples = task.get_train_examples(s.data_dir)
  train_file = feature_cache.features_file(
      "train", examples, task.path(s.data_dir, task.train))
  input_fn = classifier.file_based_input_fn_builder(
      train_file, s.max_seq_length, is_training=True, drop_remainder=True,
      seed=s.seed, padding=padding)
  steps = opts.warmup_steps + opts.train_steps
  widths, real = batch_widths(input_fn, s.train_batch_size, steps)
  estimator = classifier.make_estimator(
      s, classifier.Model(bert_config, task.num_labels, method, s.precision),
      os.path.join(work_dir, "model"), [s.init_checkpoint],
      num_train_steps=1000, num_warmup_steps=100)
  timer = StepTimer(opts.warmup_steps)
  estimator.train(input_fn, max_steps=steps, hooks=[timer])
  seconds = float(np.sum(timer.times))
  timed = slice(opts.warmup_steps, steps)
  real_tokens = float(np.sum(real[timed]))
  padded_tokens = float(np.sum(np.array(widths[timed]) * s.train_batch_size))
  mean_attended = attended_per_token(train_file)
  flops = useful_flops_per_token(bert_config, tuning_mode, s.adapter_size,
                                 mean_attended)
  return {
      "examples_per_s": opts.train_steps * s.train_batch_size / seconds,
      "step_s": seconds / opts.train_steps,
      "step_s_median": float(np.median(timer.times)),
      "real_tokens_per_s": real_tokens / seconds,
      "padded_tokens_per_s": padded_tokens / seconds,
      "padding_share": 1.0 - real_tokens / padded_tokens,
      "useful_gflops": flops * real_tokens / seconds / 1e9,
      "useful_mflop_per_token": flops / 1e6,
      "padding": padding,
      "precision": s.precision,
  }


def attended_per_token(features_file):
  """Mean row length seen by a token: sum(len^2) / sum(len) over the rows."""
  lengths = []
  for record in tf.io.tf_record_iterator(features_file):
    example = tf.train.Example.FromString(record)
    lengths.append(len(example.features.feature["input_ids"].int64_list.value))
  lengths = np.array(lengths, dtype=np.float64)
  return float(np.sum(lengths ** 2) / np.sum(lengths))


def measure_predict(opts, work_dir, padding_flag, kind, estimator=False,
                    **changes):
  """Eval (dev) or predict (test) examples/s of the model with its method
  and head at their initial values (speed does not depend on them): as
  run_classifier.py does on CPU (one graph and session, built and restored
  in the timed span), or through `Estimator.predict`."""
  s = settings_for(opts, work_dir, MAIN, padding_flag, **changes)
  bert_config, task, method, feature_cache, padding = prepare(s)
  split = task.dev[0] if kind == "eval" else task.test[0]
  examples = task.read_examples(s.data_dir, split)
  # Features first, so that conversion is not timed.
  feature_cache.features_file("%s-%s" % (kind, split.name), examples,
                              task.path(s.data_dir, split),
                              sort_by_length=True)
  model = classifier.Model(bert_config, task.num_labels, method, s.precision)
  name = "%s-%s" % (kind, split.name)
  if not estimator:
    # Written before the timed span: run_classifier.py finds its trained
    # checkpoint on disk (the Estimator's path starts from the backbone's).
    untrained = untrained_checkpoint(model, work_dir)
  start = time.time()
  if estimator:
    outputs = classifier.predict_examples(
        classifier.make_estimator(s, model, os.path.join(work_dir, "model"),
                                  [s.init_checkpoint],
                                  predict_batch_size=s.eval_batch_size),
        feature_cache, name, examples, task.path(s.data_dir, split),
        s.eval_batch_size, False, padding)
  else:
    predictor = classifier.SessionPredictor(
        model, [untrained, s.init_checkpoint],
        feature_cache, padding,
        classifier.session_config(s.intra_op_parallelism_threads,
                                  s.inter_op_parallelism_threads, False))
    outputs = predictor.predict(name, examples, task.path(s.data_dir, split),
                                s.eval_batch_size)
  seconds = time.time() - start
  return {"examples_per_s": len(outputs) / seconds,
          "examples": len(outputs), "seconds": seconds, "padding": padding,
          "precision": s.precision,
          "note": "graph building and checkpoint restore included"}


def untrained_checkpoint(model, work_dir):
  """A checkpoint of what `model` adds to the backbone (its method's
  variables and the head) at their initial values: speed does not depend
  on them, and the session predictor refuses a variable no checkpoint
  holds."""
  path = os.path.join(work_dir, "untrained", "model.ckpt")
  with tf.Graph().as_default():
    ids = tf.zeros([1, 8], tf.int32)
    classifier.create_model(model.bert_config, False,
                            {"input_ids": ids, "input_mask": ids,
                             "segment_ids": ids}, model.num_labels,
                            model.method)
    added = [v for v in tf.global_variables()
             if model.method.adds(v.op.name) or base.is_head(v.op.name)]
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver(added).save(session, path)
  return path


def measure_conversion(opts, work_dir, task_name, split_name):
  """Tokenize + write features for one split; rows/s and tokens/row."""
  task = glue.get_task(task_name)
  data_dir = os.path.join(opts.glue_dir, task_name)
  tokenizer = tokenization.FullTokenizer(
      os.path.join(opts.bert_dir, "vocab.txt"), do_lower_case=True)
  split = [s for s in [task.train] + list(task.dev) if s.name == split_name][0]
  examples = task.read_examples(data_dir, split)
  start = time.time()
  classifier.file_based_convert_examples_to_features(
      examples, task.get_labels(), opts.max_seq_length, tokenizer,
      os.path.join(work_dir, "conversion.tf_record"))
  seconds = time.time() - start
  return {"rows": len(examples), "seconds": seconds,
          "rows_per_s": len(examples) / seconds,
          "task": "%s %s" % (task_name, split_name),
          "pairs": examples[0].text_b is not None}


def run_child(opts, name, work_dir):
  (kind, tuning_mode, padding) = dict(MEASUREMENTS)[name]
  if kind == "peak":
    result = {"gflops": matmul_peak_gflops(0)}
  elif kind == "train":
    result = measure_train(opts, work_dir, tuning_mode, padding,
                           **SETTINGS_CHANGES.get(name, {}))
  elif kind in ("eval", "predict"):
    result = measure_predict(opts, work_dir, padding, kind,
                             estimator=name.endswith("_estimator"),
                             **SETTINGS_CHANGES.get(name, {}))
  elif kind == "convert":
    result = measure_conversion(opts, work_dir, opts.conversion_task, "train")
  else:
    # QNLI's dev pairs (question + Wikipedia sentence) are longer than
    # MNLI's, so they bound MNLI's conversion time from above.
    result = measure_conversion(opts, work_dir, "QNLI", "dev")
  result["peak_rss_mb"] = peak_rss_mb()
  print("RESULT " + json.dumps(result))


def run_measurement(opts, name, work_dir):
  """Runs one measurement in a fresh process; returns its figures."""
  child_dir = os.path.join(work_dir, name)
  os.makedirs(child_dir, exist_ok=True)
  command = [sys.executable, os.path.abspath(__file__), "--child=" + name,
             "--work_dir=" + child_dir]
  for flag in OPTION_FLAGS:
    command.append("--%s=%s" % (flag, getattr(opts, flag)))
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  result = subprocess.run(command, capture_output=True, text=True, env=env)
  for line in result.stdout.splitlines():
    if line.startswith("RESULT "):
      return json.loads(line[len("RESULT "):])
  sys.stderr.write(result.stderr[-3000:])
  raise SystemExit("throughput.py: measurement %s failed (exit %d)" %
                   (name, result.returncode))


def report(results):
  """The figures, as the README quotes them."""
  lines = []
  peak = results.get("matmul_peak", {}).get("gflops")
  if peak:
    lines.append("matmul peak (fp32, 4096x4096): %.1f GFLOP/s" % peak)
  for name in ("train_%s_auto" % MAIN, "train_%s_default" % MAIN,
               "train_%s_auto" % REFERENCE,
               "train_%s_static" % MAIN, "train_%s_static" % REFERENCE,
               "train_%s_batch" % MAIN, "train_%s_mirrored2" % MAIN,
               "train_%s_bf16" % MAIN):
    r = results.get(name)
    if not r:
      continue
    share = (" = %.0f%% of peak" % (100 * r["useful_gflops"] / peak)
             if peak else "")
    lines.append(
        "%-22s %6.1f examples/s, %6.0f real tokens/s, step %.3f s "
        "(median %.3f), padding %2.0f%% of computed tokens (%s), %s, useful "
        "%.1f GFLOP/s%s, peak RSS %.0f MB" % (
            name, r["examples_per_s"], r["real_tokens_per_s"], r["step_s"],
            r["step_s_median"], 100 * r["padding_share"], r["padding"],
            r["precision"], r["useful_gflops"], share, r["peak_rss_mb"]))
  for padding in ("auto", "static"):
    a = results.get("train_%s_%s" % (MAIN, padding))
    f = results.get("train_%s_%s" % (REFERENCE, padding))
    if a and f:
      lines.append("adapter/full step time (%s padding): %.2f" %
                   (padding, a["step_s"] / f["step_s"]))
  a, s = results.get("train_%s_auto" % MAIN), results.get(
      "train_%s_static" % MAIN)
  if a and s:
    lines.append("adapters, auto vs static padding: %.2fx" %
                 (a["examples_per_s"] / s["examples_per_s"]))
  m, s = results.get("train_%s_mirrored2" % MAIN), results.get(
      "train_%s_static" % MAIN)
  if m and s:
    lines.append("mirrored over 2 logical CPU devices vs one device (static "
                 "padding, same global batch): %.2fx examples/s (both "
                 "replicas share this machine's CPU cores)" %
                 (m["examples_per_s"] / s["examples_per_s"]))
  for (name, base) in (("train_%s_bf16" % MAIN, "train_%s_static" % MAIN),
                       ("eval_static_bf16", "eval_static")):
    if results.get(name) and results.get(base):
      lines.append("mixed_bfloat16 vs float32 (%s): %.2fx examples/s" % (
          base, results[name]["examples_per_s"] /
          results[base]["examples_per_s"]))
  for name in ("eval_auto", "eval_default", "eval_auto_estimator",
               "eval_static", "eval_static_bf16", "predict_auto"):
    r = results.get(name)
    if r:
      lines.append("%-22s %6.1f examples/s (%d examples in %.1f s, %s "
                   "padding, %s, whole call), peak RSS %.0f MB" % (
                       name, r["examples_per_s"], r["examples"],
                       r["seconds"], r["padding"], r["precision"],
                       r["peak_rss_mb"]))
  (e, o) = (results.get("eval_auto_estimator"), results.get("eval_auto"))
  if e and o:
    lines.append("eval in one session vs through Estimator.predict: %.2fx "
                 "examples/s" % (o["examples_per_s"] / e["examples_per_s"]))
  for name in ("conversion", "conversion_pairs"):
    r = results.get(name)
    if r:
      lines.append(
          "feature conversion (%s): %d rows in %.1f s = %.0f rows/s; MNLI "
          "train's 392,702 pairs at that rate: %.0f s; peak RSS %.0f MB" % (
              r["task"], r["rows"], r["seconds"], r["rows_per_s"],
              392702 / r["rows_per_s"], r["peak_rss_mb"]))
  return "\n".join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  opts = collections.namedtuple("Options", OPTION_FLAGS)(
      *[FLAGS[name].value for name in OPTION_FLAGS])
  if FLAGS.child:
    run_child(opts, FLAGS.child, FLAGS.work_dir)
    return
  names = [name for (name, _) in MEASUREMENTS]
  if FLAGS.only:
    unknown = sorted(set(FLAGS.only) - set(names))
    if unknown:
      raise app.UsageError("--only: unknown %s (known: %s)" %
                           (", ".join(unknown), ", ".join(names)))
    names = [n for n in names if n in FLAGS.only]
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="throughput-")
  results = {}
  try:
    for name in names:
      start = time.time()
      results[name] = run_measurement(opts, name, work_dir)
      print("%s done in %.0f s" % (name, time.time() - start), flush=True)
  finally:
    if not FLAGS.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)
  print(report(results))
  if FLAGS.json_out:
    with open(FLAGS.json_out, "w") as f:
      json.dump(results, f, indent=2, sort_keys=True)


if __name__ == "__main__":
  app.run(main)
