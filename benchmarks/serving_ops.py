# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Op by op: what a tuning method adds to the serving graph, on this CPU.

Builds the inference graph (all-MiniLM-L6-v2 + a method + the head, as
served) for each --methods entry and for the backbone alone, feeds the same
real dev rows at each --batch_sizes, and prints:

  - the untimed-trace latency p50 of each graph, alternating calls, and the
    method's cost against the backbone alone;
  - from TensorFlow's step stats (one traced call per round), the ops that
    ran inside the method's variable scope: how many per call, their total
    time, and the five most costly op types there (after grappler's
    fusions, so a `_MklNativeFusedMatMul` is a matmul with its bias and
    activation).

  .venv/bin/python benchmarks/serving_ops.py
  .venv/bin/python benchmarks/serving_ops.py --methods=adapters,lora --precision=mixed_bfloat16

The method's variables keep their initial values: speed does not depend on
them. Nothing else should run on the machine meanwhile.
"""

import collections
import os
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import glue
from adapter_bert import methods
from adapter_bert.classifier import checkpoints
from adapter_bert.classifier import features as features_lib
from adapter_bert.classifier import model_fn
import modeling
import tokenization

FLAGS = flags.FLAGS

flags.DEFINE_string("bert_dir", os.path.join(REPO_ROOT, ".cache", "assets",
                                             "all-MiniLM-L6-v2"),
                    "The converted MiniLM (make assets).")
flags.DEFINE_string("glue_dir", os.path.join(REPO_ROOT, "..", "shared",
                                             "glue"), "GLUE data.")
flags.DEFINE_string("task", "MRPC", "GLUE task whose dev rows are served.")
def scopes_of(cls):
  """The variable scopes a method class (or a composed one's members)
  puts its additions under."""
  return {c.scope for c in (cls,) + tuple(getattr(cls, "members", ()))
          if c.scope is not None}


flags.DEFINE_list("methods", [m for m in methods.names()
                              if scopes_of(methods.get(m)) and
                              not methods.get(m).whole_model],
                  "Methods that add to the graph (not whole models).")
flags.DEFINE_list("batch_sizes", ["1", "32"], "Rows per call.")
flags.DEFINE_integer("rounds", 100, "Timed rounds (one call of each graph) "
                     "at batch 1; at batch b, rounds / b**0.5.")
flags.DEFINE_enum("precision", "float32", list(model_fn.PRECISIONS),
                  "The compute dtype served.")


class Served(object):
  """One inference graph in its own session, fed padded token ids."""

  def __init__(self, config, method, num_labels, checkpoint, dtype):
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.inputs = {name: tf.placeholder(tf.int32, [None, None], name=name)
                     for name in ("input_ids", "input_mask", "segment_ids")}
      hooks = method.for_model(False) if method is not None else None
      outputs = model_fn.create_model(config, False, self.inputs, num_labels,
                                      hooks, dtype)
      self.output = outputs.get("probabilities", outputs["predictions"])
      for (path, assignment) in checkpoints.checkpoint_assignment_maps(
          tf.global_variables(), [checkpoint]):
        if assignment:
          tf.train.init_from_checkpoint(path, assignment)
      init = tf.global_variables_initializer()
    self.session = tf.Session(graph=self.graph)
    self.session.run(init)

  def call(self, batch, trace=False):
    feed = {self.inputs[name]: batch[name] for name in self.inputs}
    if not trace:
      start = time.perf_counter()
      self.session.run(self.output, feed)
      return time.perf_counter() - start
    metadata = tf.RunMetadata()
    self.session.run(self.output, feed, options=tf.RunOptions(
        trace_level=tf.RunOptions.FULL_TRACE), run_metadata=metadata)
    return metadata


def node_stats(metadata):
  """[(node name, op type, microseconds)] of one traced call."""
  stats = []
  for device in metadata.step_stats.dev_stats:
    for node in device.node_stats:
      op = node.timeline_label.split("=", 1)[-1].strip().split("(")[0]
      stats.append((node.node_name, op.strip(),
                    node.all_end_rel_micros or node.op_end_rel_micros))
  return stats


def dev_batches(task, tokenizer, data_dir, batch_sizes, max_seq_length=128):
  """{batch size: padded id arrays} of the first rows of the dev file."""
  examples = task.read_examples(data_dir, task.dev[0])
  return {size: features_lib.batch_arrays(examples[:size], task.get_labels(),
                                          max_seq_length, tokenizer)
          for size in batch_sizes}


def scope_ops(metadata, scopes):
  """(ops per call, microseconds, {op type: microseconds}) in `scopes`."""
  by_type = collections.Counter()
  count = 0
  for (name, op, micros) in node_stats(metadata):
    if any("/%s/" % scope in "/" + name + "/" for scope in scopes):
      count += 1
      by_type[op] += micros
  return (count, sum(by_type.values()), by_type)


def compare(plain, served, batch, rounds, scopes):
  """Alternating calls of the two graphs; returns the figures."""
  for _ in range(10):  # warm-up: kernels, oneDNN primitives
    plain.call(batch)
    served.call(batch)
  times = ([], [])
  traces = []
  for round_index in range(rounds):
    pair = [(0, plain), (1, served)]
    if round_index % 2:
      pair.reverse()
    for (index, graph) in pair:
      times[index].append(graph.call(batch))
  for _ in range(5):
    traces.append(scope_ops(served.call(batch, trace=True), scopes))
  (p50_plain, p50_served) = (np.median(times[0]), np.median(times[1]))
  count = traces[0][0]
  micros = np.median([t[1] for t in traces])
  by_type = traces[-1][2]
  return (p50_plain, p50_served, count, micros, by_type)


def main(argv):
  del argv
  tf.disable_v2_behavior()
  config = modeling.BertConfig.from_json_file(
      os.path.join(FLAGS.bert_dir, "bert_config.json"))
  tokenizer = tokenization.FullTokenizer(
      os.path.join(FLAGS.bert_dir, "vocab.txt"), do_lower_case=True)
  task = glue.get_task(FLAGS.task)
  checkpoint = os.path.join(FLAGS.bert_dir, "bert_model.ckpt")
  (dtype, _) = model_fn.PRECISIONS[FLAGS.precision]
  batches = dev_batches(task, tokenizer,
                        os.path.join(FLAGS.glue_dir, FLAGS.task),
                        [int(b) for b in FLAGS.batch_sizes])
  plain = Served(config, None, task.num_labels, checkpoint, dtype)
  print("%s dev rows, %s, %d alternating rounds at batch 1 (fewer at larger "
        "batches); ops and time inside each method's scope from 5 traced "
        "calls" % (FLAGS.task, FLAGS.precision, FLAGS.rounds))
  for name in FLAGS.methods:
    method = methods.build(name, num_layers=config.num_hidden_layers)
    served = Served(config, method, task.num_labels, checkpoint, dtype)
    for (size, batch) in batches.items():
      (p50_plain, p50_served, count, micros, by_type) = compare(
          plain, served, batch, max(5, int(FLAGS.rounds / size ** 0.5)),
          scopes_of(type(method)))
      top = ", ".join("%s %.0f us" % (op, t)
                      for (op, t) in by_type.most_common(5))
      print("%-18s batch %-3d p50 %7.2f ms vs %7.2f ms alone (%+5.1f%%); "
            "%3d ops in its scope, %6.0f us traced: %s" % (
                name, size, 1e3 * p50_served, 1e3 * p50_plain,
                100.0 * (p50_served / p50_plain - 1), count, micros, top))
    served.session.close()


if __name__ == "__main__":
  app.run(main)
