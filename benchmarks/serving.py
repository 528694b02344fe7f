# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""How fast the exported SavedModel serves raw text, on this machine.

Prints, for all-MiniLM-L6-v2 with adapters of size 64 (bundles trained for a
few steps on real GLUE rows: speed does not depend on how well they learned):
  - requests/s and latency p50/p95 at batch 1 and batch 32, with a SavedModel
    holding one task and one holding three (requests then go round-robin to
    the three signatures);
  - the latency cost of each method (--methods; mergeable ones also merged)
    at batch 1 and 32 against the same backbone exported with a head-only
    bundle (nothing added to the graph), all models in one process, one
    call to each per round in a shuffled order, with a 95% interval from
    resampling the rounds; a second copy of the head-only model shows the
    noise (its cost should be 0%);
  - size on disk of each SavedModel and the serving process's peak memory;
  - a stream of requests of 32 rows whose tasks mix 2, 3 and 7 tasks
    (--mixed_tasks), served by one SavedModel two ways, alternating in one
    process: one call of its `mixed` signature per request, or one call per
    task present (each task's rows to its own signature, as a server with
    per-task signatures must).

Requests are real dev rows (MRPC pairs, SST-2 and RTE), tokenized inside the
graph. Each SavedModel is served in a fresh process that loads it with
tf.saved_model.load, as a TF2 user would; the first --warmup calls are not
timed. Nothing else should run on the machine meanwhile.

  .venv/bin/python benchmarks/serving.py
"""

import collections
import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# `python benchmarks/<name>.py` puts benchmarks/ on sys.path, not the
# repository root.
sys.path.insert(0, REPO_ROOT)

# Before TensorFlow loads (the method registry imports it): its start-up
# noise is hidden.
from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

FLAGS = flags.FLAGS
flags.DEFINE_string("bert_dir",
                    os.path.join(REPO_ROOT, ".cache", "assets",
                                 "all-MiniLM-L6-v2"),
                    "Folder with bert_config.json, vocab.txt, bert_model.ckpt.")
flags.DEFINE_string("glue_dir",
                    os.path.join(os.path.dirname(REPO_ROOT), "shared", "glue"),
                    "GLUE data in glue_data layout.")
flags.DEFINE_integer("calls", 200, "Timed calls at batch 1 (batch 32: /8).")
flags.DEFINE_integer("warmup", 10, "Untimed first calls.")
flags.DEFINE_string("work_dir", None, "Scratch folder (default: a temp dir).")
flags.DEFINE_string("json_out", None, "Also write the figures here as JSON.")
flags.DEFINE_string("methods", "all",
                    "Methods whose latency cost is measured against the same "
                    "backbone without them (mergeable ones merged too): a "
                    "comma-separated list, all (every method that adds to "
                    "the graph) or empty (none).")

flags.DEFINE_list("mixed_tasks", ["2", "3", "7"],
                  "Numbers of tasks mixed in the stream of the mixed "
                  "signature's measurement (at most 7; empty: none).")

flags.DEFINE_string("peer_python", None,
                    "The PyTorch peer's python (../shared/peer/setup.sh: "
                    "/tmp/peer/bin/python): also time AdapterHub's Houlsby "
                    "model on raw SST-2 dev text (adapterhub_serve.py) right "
                    "after this project's SavedModel on the same rows.")

OPTION_FLAGS = ("bert_dir", "glue_dir", "calls", "warmup", "work_dir",
                "json_out", "methods", "mixed_tasks", "peer_python")
PEER_SCRIPT = os.path.join(os.path.dirname(REPO_ROOT), "shared", "peer",
                           "adapterhub_serve.py")
# task: the dev file's text columns
TASKS = {"MRPC": [3, 4], "SST-2": [0], "RTE": [1, 2]}
# Every task with real rows here, for the mixed stream, in the order they
# join it: (dev text columns, whether the dev file has a header).
MIXED_TASKS = collections.OrderedDict([
    ("MRPC", ([3, 4], True)), ("SST-2", ([0], True)), ("RTE", ([1, 2], True)),
    ("CoLA", ([3], False)), ("STS-B", ([7, 8], True)),
    ("WNLI", ([1, 2], True)), ("QNLI", ([1, 2], True))])
TRAIN_ROWS = 64

SERVE_CODE = r"""
import json, resource, sys, time
import numpy as np
import tensorflow as tf
import tensorflow_text  # the tokenizer's ops
(export_dir, plan) = (sys.argv[1], json.loads(sys.stdin.read()))
model = tf.saved_model.load(export_dir)
results = {}
for (name, batch, calls, warmup, requests) in plan:
  # Every request a different slice of real rows, tasks taking turns.
  functions = [(model.signatures[s], {k: tf.constant(v[i:i + batch])
                                      for (k, v) in inputs.items()})
               for i in range(0, 32, batch) for (s, inputs) in requests]
  times = []
  for i in range(warmup + calls):
    (function, inputs) = functions[i % len(functions)]
    start = time.perf_counter()
    function(**inputs)
    if i >= warmup:
      times.append(time.perf_counter() - start)
  times = np.array(times)
  results[name] = {"batch": batch, "calls": calls,
                   "requests_per_s": calls / times.sum(),
                   "examples_per_s": calls * batch / times.sum(),
                   "p50_ms": 1000 * np.percentile(times, 50),
                   "p95_ms": 1000 * np.percentile(times, 95)}
results["peak_rss_mb"] = resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(results))
"""


# The methods' latency costs: every model in one process, one call to each
# per round in a shuffled order, so that whatever else slows the machine
# slows all alike (separate sittings differed by more than the costs here).
PAIRED_CODE = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
import tensorflow_text  # the tokenizer's ops
(dirs, (signature, inputs, batch, calls, warmup)) = (
    sys.argv[1:], json.loads(sys.stdin.read()))
functions = [tf.saved_model.load(d).signatures[signature] for d in dirs]
requests = [{k: tf.constant(v[i:i + batch]) for (k, v) in inputs.items()}
            for i in range(0, 32, batch)]
times = np.zeros([calls, len(dirs)])
order = np.random.RandomState(0)
for i in range(warmup + calls):
  for j in order.permutation(len(functions)):
    start = time.perf_counter()
    functions[j](**requests[i % len(requests)])
    if i >= warmup:
      times[i - warmup, j] = time.perf_counter() - start
print("RESULT " + json.dumps(times.tolist()))
"""

# A stream of mixed requests served by the `mixed` signature and by the
# per-task signatures, alternating in one process; the first request's
# answers of both ways are compared.
MIXED_CODE = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
import tensorflow_text  # the tokenizer's ops
(export_dir, (stream, calls, warmup)) = (sys.argv[1],
                                         json.loads(sys.stdin.read()))
model = tf.saved_model.load(export_dir)
mixed = model.signatures["mixed"]

def per_task(rows):
  calls = []
  for key in sorted({r[0] for r in rows}):
    mine = [r for r in rows if r[0] == key]
    inputs = {"text_a": tf.constant([r[1] for r in mine])}
    if mine[0][3]:
      inputs["text_b"] = tf.constant([r[2] for r in mine])
    calls.append(([rows.index(r) for r in mine], model.signatures[key],
                  inputs))
  return calls

prepared = [({"task": tf.constant([r[0] for r in rows]),
              "text_a": tf.constant([r[1] for r in rows]),
              "text_b": tf.constant([r[2] for r in rows])}, per_task(rows))
            for rows in stream]
(inputs, split) = prepared[0]
together = mixed(**inputs)
difference = 0.0
for (positions, function, part) in split:
  alone = function(**part)
  for (name, value) in alone.items():
    if name in ("probabilities", "scores"):
      got = together[name].numpy()[positions]
      got = got[:, :value.shape[1]] if got.ndim == 2 else got
      difference = max(difference, float(np.abs(got - value.numpy()).max()))
times = np.zeros([calls, 2])
for i in range(warmup + calls):
  (inputs, split) = prepared[i % len(prepared)]
  for way in ((0, 1) if i % 2 == 0 else (1, 0)):
    start = time.perf_counter()
    if way == 0:
      mixed(**inputs)
    else:
      for (_, function, part) in split:
        function(**part)
    if i >= warmup:
      times[i - warmup, way] = time.perf_counter() - start
print("RESULT " + json.dumps({"times": times.tolist(),
                              "difference": difference}))
"""

# The peer's request order: request i is rows[(i * batch) % (n - batch):]
# [:batch] of the whole dev set (adapterhub_serve.py), so both serve the
# same rows.
PEER_ROWS_CODE = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
import tensorflow_text  # the tokenizer's ops
(export_dir, (rows, batches, calls, warmup)) = (sys.argv[1],
                                                json.loads(sys.stdin.read()))
serve = tf.saved_model.load(export_dir).signatures["sst2"]
results = {}
for batch in batches:
  times = []
  for i in range(warmup + calls):
    start = (i * batch) % max(1, len(rows) - batch)
    texts = tf.constant(rows[start:start + batch])
    began = time.perf_counter()
    serve(text_a=texts)
    if i >= warmup:
      times.append(time.perf_counter() - began)
  times = np.array(times)
  results["batch%d" % batch] = {"requests_per_s": calls / times.sum(),
                                "p50_ms": 1000 * np.percentile(times, 50),
                                "p95_ms": 1000 * np.percentile(times, 95)}
results["probabilities"] = serve(text_a=tf.constant(rows[:64]))[
    "probabilities"].numpy().tolist()  # to compare exports
print("RESULT " + json.dumps(results))
"""


def read_rows(path, columns, count=None, header=True):
  with open(path, encoding="utf-8") as f:
    rows = [r for r in f.read().split("\n")[1 if header else 0:] if r]
  return [[r.split("\t")[c] for c in columns] for r in rows[:count]]


def run(command, **kwargs):
  result = subprocess.run(command, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                          **kwargs)
  if result.returncode:
    sys.stderr.write(result.stderr[-3000:])
    raise SystemExit("serving.py: %s failed (exit %d)" % (
        os.path.basename(command[1]), result.returncode))
  return result


def train_bundle(opts, work_dir, task, tuning_mode):
  """A bundle trained for a few steps on the task's first real rows."""
  data_dir = os.path.join(work_dir, "data", task)
  if not os.path.exists(data_dir):
    os.makedirs(data_dir)
    source = os.path.join(opts.glue_dir, task, "train.tsv")
    if not os.path.exists(source):  # QNLI here: dev rows (speed only)
      source = os.path.join(opts.glue_dir, task, "dev.tsv")
    with open(source, encoding="utf-8") as f:
      lines = f.read().split("\n")[:TRAIN_ROWS + 1]
    with open(os.path.join(data_dir, "train.tsv"), "w", encoding="utf-8") as f:
      f.write("\n".join(lines) + "\n")
  output_dir = os.path.join(work_dir, "train", "%s-%s" % (task, tuning_mode))
  bundle = os.path.join(output_dir, "adapter_bundle")
  if not os.path.exists(os.path.join(bundle, "adapter_bundle.json")):
    run([sys.executable, os.path.join(REPO_ROOT, "run_classifier.py"),
         "--task_name=" + task, "--data_dir=" + data_dir,
         "--output_dir=" + output_dir, "--do_train=true",
         "--tuning_mode=" + tuning_mode, "--max_seq_length=128",
         "--train_batch_size=16", "--learning_rate=1e-3",
         "--num_train_epochs=1"] + backbone_flags(opts))
  return bundle


def backbone_flags(opts):
  return ["--vocab_file=" + os.path.join(opts.bert_dir, "vocab.txt"),
          "--bert_config_file=" + os.path.join(opts.bert_dir,
                                               "bert_config.json"),
          "--init_checkpoint=" + os.path.join(opts.bert_dir,
                                              "bert_model.ckpt")]


def export(opts, work_dir, name, bundles, merge=False, mixed=False,
           precision="float32"):
  export_dir = os.path.join(work_dir, "saved_models", name)
  if not os.path.exists(os.path.join(export_dir, "saved_model.pb")):
    run([sys.executable,
         os.path.join(REPO_ROOT, "scripts", "export_savedmodel.py"),
         "--adapter_bundles=" + ",".join(bundles),
         "--export_dir=" + export_dir, "--merge=%s" % str(merge).lower(),
         "--mixed_signature=%s" % str(mixed).lower(),
         "--precision=" + precision] + backbone_flags(opts))
  return export_dir


def mixed_stream(opts, tasks, batch, count=16, seed=0):
  """`count` requests of `batch` real dev rows, each row's task drawn at
  random among `tasks`: [[task key, text_a, text_b, is pair]]."""
  import random  # pylint: disable=g-import-not-at-top
  rows = {}
  for task in tasks:
    (columns, header) = MIXED_TASKS[task]
    rows[task] = read_rows(os.path.join(opts.glue_dir, task, "dev.tsv"),
                           columns, count=64, header=header)
  rng = random.Random(seed)
  stream = []
  for _ in range(count):
    request = []
    for _ in range(batch):
      task = rng.choice(tasks)
      row = rng.choice(rows[task])
      request.append([task.lower().replace("-", ""), row[0],
                      row[1] if len(row) == 2 else "", len(row) == 2])
    stream.append(request)
  return stream


def mixed_costs(opts, work_dir, main_method):
  """The mixed signature against per-task calls on mixed streams."""
  figures = {}
  for count in [int(c) for c in opts.mixed_tasks if c]:
    tasks = list(MIXED_TASKS)[:count]
    export_dir = export(opts, work_dir, "mixed-%d" % count, [
        train_bundle(opts, work_dir, t, main_method) for t in tasks],
                        mixed=True)
    for batch in (1, 32):
      calls = opts.calls if batch == 1 else max(opts.calls // 8, 10)
      result = run([sys.executable, "-c", MIXED_CODE, export_dir],
                   input=json.dumps([mixed_stream(opts, tasks, batch), calls,
                                     opts.warmup]))
      line = [l for l in result.stdout.splitlines()
              if l.startswith("RESULT ")]
      answer = json.loads(line[0][len("RESULT "):])
      costs = cost_figures(answer["times"], ["mixed", "per-task"])
      figures["mixed_%d_batch%d" % (count, batch)] = dict(
          costs, difference=answer["difference"])
      (m, p) = (costs["mixed"], costs["per-task"])
      print("%d tasks mixed, batch %-2d (%d requests): mixed signature "
            "%6.1f requests/s (p50 %6.1f ms, p95 %6.1f ms); per-task calls "
            "%6.1f requests/s (p50 %6.1f ms, p95 %6.1f ms): %.2fx; outputs "
            "within %.1e" % (
                count, batch, calls, 1000 / m["mean_ms"], m["p50_ms"],
                m["p95_ms"], 1000 / p["mean_ms"], p["p50_ms"], p["p95_ms"],
                p["mean_ms"] / m["mean_ms"], answer["difference"]))
  return figures


def size_mb(folder):
  return sum(os.path.getsize(os.path.join(root, name))
             for (root, _, names) in os.walk(folder) for name in names) / 2**20


def requests_for(opts, tasks):
  requests = []
  for task in tasks:
    rows = read_rows(os.path.join(opts.glue_dir, task, "dev.tsv"),
                     TASKS[task], count=32)
    inputs = {"text_a": [r[0] for r in rows]}
    if len(TASKS[task]) == 2:
      inputs["text_b"] = [r[1] for r in rows]
    requests.append((task.lower().replace("-", ""), inputs))
  return requests


def serve(opts, export_dir, tasks):
  plan = [("batch1", 1, opts.calls, opts.warmup, requests_for(opts, tasks)),
          ("batch32", 32, max(opts.calls // 8, 10), opts.warmup // 2 or 1,
           requests_for(opts, tasks))]
  result = run([sys.executable, "-c", SERVE_CODE, export_dir],
               input=json.dumps(plan))
  line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
  return json.loads(line[0][len("RESULT "):])


def compared_methods(names):
  """The methods whose latency cost is measured, and the baseline.

  Args:
    names: comma-separated methods, or "all": every registered method that
      adds to the graph and is not a whole model.

  Returns:
    (the project's own method, the registry's first; [(name, mergeable)];
    a method that puts nothing in the graph and is not a whole model: the
    same backbone without additions).
  """
  # Imported here: the registry loads TensorFlow, which only the timed
  # children need otherwise.
  from adapter_bert import methods  # pylint: disable=g-import-not-at-top
  registry = methods.registry()
  # What a method adds with its default options (a composed method: what
  # its members add).
  adds = {name: any(c.scope is not None
                    for c in (cls,) + tuple(getattr(cls, "members", ())))
          for (name, cls) in registry.items()}
  plain = [name for (name, cls) in registry.items()
           if not adds[name] and not cls.whole_model]
  if names == "all":
    chosen = [name for (name, cls) in registry.items()
              if adds[name] and not cls.whole_model]
  else:
    chosen = [name for name in names.split(",") if name]
    for name in chosen:
      cls = methods.get(name)  # unknown: one line naming the known ones
      if cls.whole_model:
        raise ValueError("--methods=%s: a whole model, not served on the "
                         "shared backbone" % name)
  return (methods.names()[0],
          [(name, registry[name].mergeable) for name in chosen], plain[0])


def cost_figures(times, labels, baseline=0, resamples=2000):
  """p50 latency of each model and its cost against the baseline, with a
  95% interval from resampling the rounds.

  Args:
    times: [rounds, models] seconds, one call to each model per round.
    labels: the models' names.

  Returns:
    {label: {"p50_ms", "p95_ms", "mean_ms", "cost_percent", "cost_low",
    "cost_high"}}.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  times = np.asarray(times)
  rng = np.random.RandomState(1)
  picks = rng.randint(0, len(times), size=[resamples, len(times)])
  medians = np.median(times[picks], axis=1)  # [resamples, models]
  costs = 100 * (medians / medians[:, baseline:baseline + 1] - 1)
  p50 = np.median(times, axis=0)
  figures = {}
  for (j, label) in enumerate(labels):
    figures[label] = {
        "p50_ms": 1000 * p50[j],
        "p95_ms": 1000 * np.percentile(times[:, j], 95),
        "mean_ms": 1000 * times[:, j].mean(),
        "cost_percent": 100 * (p50[j] / p50[baseline] - 1),
        "cost_low": np.percentile(costs[:, j], 2.5),
        "cost_high": np.percentile(costs[:, j], 97.5)}
  return figures


def method_costs(opts, work_dir, plain_dir, chosen, plain_method):
  """Each method's latency cost against the same backbone without it, at
  batch 1 and 32, all models in one process (see PAIRED_CODE). A second
  copy of the baseline measures the noise: its 'cost' should be 0%."""
  models = [("no additions (head-only bundle)", plain_dir),
            ("no additions, second copy (noise)",
             export(opts, work_dir, "plain-copy",
                    [train_bundle(opts, work_dir, "MRPC", plain_method)]))]
  for (name, mergeable) in chosen:
    bundle = train_bundle(opts, work_dir, "MRPC", name)
    models.append((name, export(opts, work_dir, "method-" + name, [bundle])))
    if mergeable:
      models.append((name + ", merged", export(
          opts, work_dir, "method-%s-merged" % name, [bundle], merge=True)))
  (signature, inputs) = requests_for(opts, ["MRPC"])[0]
  figures = {}
  for batch in (1, 32):
    calls = opts.calls if batch == 1 else max(opts.calls // 8, 10)
    result = run([sys.executable, "-c", PAIRED_CODE] +
                 [d for (_, d) in models],
                 input=json.dumps([signature, inputs, batch, calls,
                                   opts.warmup]))
    line = [l for l in result.stdout.splitlines() if l.startswith("RESULT ")]
    costs = cost_figures(json.loads(line[0][len("RESULT "):]),
                         [label for (label, _) in models])
    figures["method_costs_batch%d" % batch] = costs
    print("latency cost at batch %d (MRPC, %d rounds, one call to each model "
          "per round in one process, 95%% interval from the rounds):" % (
              batch, calls))
    for (label, r) in costs.items():
      print("  %-36s p50 %7.1f ms  p95 %7.1f ms  cost %+6.1f%% [%+.1f%%, "
            "%+.1f%%]" % (label, r["p50_ms"], r["p95_ms"], r["cost_percent"],
                          r["cost_low"], r["cost_high"]))
  return figures


def beside_the_peer(opts, work_dir, main_method):
  """This project's SavedModel and AdapterHub's eager PyTorch model, each
  with a Houlsby adapter (m = 64 on MiniLM) and its head, on the same raw
  SST-2 dev sentences, one right after the other. Ours is exported in
  float32 and, on a machine that computes bfloat16 natively, also with
  --precision=mixed_bfloat16."""
  bundle = train_bundle(opts, work_dir, "SST-2", main_method)
  rows = [r[0] for r in read_rows(os.path.join(opts.glue_dir, "SST-2",
                                               "dev.tsv"), [0])]
  from adapter_bert.classifier import devices  # pylint: disable=g-import-not-at-top
  precisions = ["float32"]
  if devices.native_bfloat16(False)[0]:
    precisions.append("mixed_bfloat16")
  ours = {}
  for precision in precisions:
    export_dir = export(opts, work_dir, "sst2-" + precision, [bundle],
                        precision=precision)
    result = run([sys.executable, "-c", PEER_ROWS_CODE, export_dir],
                 input=json.dumps([rows, [1, 32], opts.calls, opts.warmup]))
    ours[precision] = json.loads([l for l in result.stdout.splitlines()
                                  if l.startswith("RESULT ")][0][
                                      len("RESULT "):])
  result = run([opts.peer_python, PEER_SCRIPT, "--task=sst-2",
                "--data_dir=" + os.path.join(opts.glue_dir, "SST-2"),
                "--batch_sizes=1,32", "--calls=%d" % opts.calls,
                "--warmup=%d" % opts.warmup, "--threads=2"], cwd="/tmp")
  theirs = json.loads(result.stdout.strip().splitlines()[-1])
  for batch in (1, 32):
    t = theirs["batch%d_adapters" % batch]
    for precision in precisions:
      o = ours[precision]["batch%d" % batch]
      print("SST-2 dev, raw text, batch %-2d (%d calls): this SavedModel "
            "(%s) p50 %6.1f ms (%6.1f requests/s); AdapterHub %s eager p50 "
            "%6.1f ms (%6.1f requests/s): %.2fx its p50" % (
                batch, opts.calls, precision, o["p50_ms"],
                o["requests_per_s"], theirs["torch"], t["p50_ms"],
                t["requests_per_s"], o["p50_ms"] / t["p50_ms"]))
  if len(precisions) > 1:
    (p32, p16) = (np.array(ours[p]["probabilities"]) for p in precisions)
    print("SST-2 dev, first %d rows: mixed_bfloat16's probabilities within "
          "%.1e of float32's, %d labels of %d the same" % (
              len(p32), np.abs(p16 - p32).max(),
              (p16.argmax(1) == p32.argmax(1)).sum(), len(p32)))
  return {"peer_ours": ours, "peer_adapterhub": theirs}


def main(argv):
  del argv
  opts = collections.namedtuple("Options", OPTION_FLAGS)(
      *[FLAGS[name].value for name in OPTION_FLAGS])
  try:
    (main_method, chosen, plain_method) = compared_methods(opts.methods)
  except ValueError as e:
    raise SystemExit("serving.py: %s" % e)
  work_dir = opts.work_dir or tempfile.mkdtemp(prefix="serving-")
  adapters = [train_bundle(opts, work_dir, task, main_method)
              for task in TASKS]
  head = train_bundle(opts, work_dir, "MRPC", plain_method)
  models = {
      "adapters, 1 task (MRPC)": (export(opts, work_dir, "one", adapters[:1]),
                                  ["MRPC"]),
      "adapters, 3 tasks (MRPC, SST-2, RTE)": (
          export(opts, work_dir, "three", adapters), list(TASKS)),
      "no adapters (head-only bundle), MRPC": (
          export(opts, work_dir, "plain", [head]), ["MRPC"]),
  }
  figures = {}
  for (name, (export_dir, tasks)) in models.items():
    figures[name] = serve(opts, export_dir, tasks)
    figures[name]["size_mb"] = size_mb(export_dir)
    for batch in ("batch1", "batch32"):
      r = figures[name][batch]
      print("%-38s %-7s %7.1f requests/s (%6.1f examples/s), p50 %6.1f ms, "
            "p95 %6.1f ms" % (name, batch, r["requests_per_s"],
                              r["examples_per_s"], r["p50_ms"], r["p95_ms"]))
    print("%-38s on disk %.1f MB, serving process peak RSS %.0f MB" % (
        name, figures[name]["size_mb"], figures[name]["peak_rss_mb"]))
  figures.update(mixed_costs(opts, work_dir, main_method))
  if opts.peer_python:
    figures.update(beside_the_peer(opts, work_dir, main_method))
  if chosen:
    figures.update(method_costs(
        opts, work_dir, models["no adapters (head-only bundle), MRPC"][0],
        chosen, plain_method))
  if opts.json_out:
    with open(opts.json_out, "w") as f:
      json.dump(figures, f, indent=1)


if __name__ == "__main__":
  app.run(main)
