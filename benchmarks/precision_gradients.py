# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Where bfloat16's gradients part from float32's, variable group by group.

Builds the real model (all-MiniLM-L6-v2 + a tuning method) twice on the same
weights, once per precision, feeds both the same real GLUE batch with dropout
off, and prints for each group of trained variables (per layer: adapter
kernels, adapter biases, LayerNorms; the head):

  rel_err   ||g_bf16 - g_f32|| / ||g_f32||
  norm      ||g_bf16|| / ||g_f32||  (under 1: bfloat16's step is shorter)
  cos       cosine of the two gradients
  signs     the fraction of elements whose signs differ (Adam's first
            steps move each element by about the learning rate in the
            direction of its gradient's sign)

with float64 NumPy sums of float32 gradients as neither's reference: the
point is the difference. `--experiment` keeps one part of the bfloat16
graph in float32 (see EXPERIMENTS) to find which part makes the difference.

  python benchmarks/precision_gradients.py
  python benchmarks/precision_gradients.py --experiment=attention_probs
  python benchmarks/precision_gradients.py --init_checkpoint=<trained run>/model.ckpt-345
"""

import collections
import os
import sys

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
from adapter_bert.methods import base
import modeling
import precision_parts
import tokenization

FLAGS = flags.FLAGS


flags.DEFINE_string("bert_dir", os.path.join(REPO_ROOT, ".cache", "assets",
                                             "all-MiniLM-L6-v2"),
                    "The converted MiniLM (make assets).")
flags.DEFINE_string("glue_dir", os.path.join(REPO_ROOT, "..", "shared",
                                             "glue"), "GLUE data.")
flags.DEFINE_string("task", "MRPC", "GLUE task (its train file).")
flags.DEFINE_enum("tuning_mode", methods.names()[0], methods.names(),
                  "The method.")
flags.DEFINE_string("init_checkpoint", None,
                    "A trained run's checkpoint (default: the backbone, "
                    "the method's variables at their initial values).")
flags.DEFINE_integer("batch_size", 32, "Rows of the batch.")
flags.DEFINE_integer("batch_index", 0, "Which batch of the train file.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per row.")
flags.DEFINE_enum("experiment", "none",
                  list(precision_parts.EXPERIMENTS),
                  "What stays float32 in the bfloat16 graph.")
flags.DEFINE_bool("dropout", False, "Build the graphs as for training: "
                  "dropout on, the same masks in both.")


def read_batch(task, tokenizer, data_dir, batch_size, batch_index,
               max_seq_length):
  """Batch `batch_index` of the task's train file, padded to its longest
  row (as --padding=batch)."""
  examples = task.read_examples(data_dir, task.train)
  start = batch_index * batch_size
  return features_lib.batch_arrays(examples[start:start + batch_size],
                                   task.get_labels(), max_seq_length,
                                   tokenizer)


def gradients(config, method, task, batch, dtype, checkpoint,
              dropout=False):
  """{variable name: float64 gradient of the batch's mean loss}.

  With `dropout`, as in training: the same masks in every graph (a mask is a
  function of the graph seed, the dropout site and the global step)."""
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    tf.train.get_or_create_global_step()
    tensors = {k: tf.constant(v) for (k, v) in batch.items()}
    outputs = model_fn.create_model(config, dropout, tensors,
                                    task.num_labels,
                                    method.for_model(dropout), dtype)
    variables = method.trained_variables(tf.trainable_variables())
    for (path, assignment) in checkpoints.checkpoint_assignment_maps(
        tf.trainable_variables(), checkpoint):
      if assignment:
        tf.train.init_from_checkpoint(path, assignment)
    grads = tf.gradients(outputs["loss"], variables)
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      values = session.run(grads)
  return collections.OrderedDict(
      (base.variable_name(v), np.asarray(g, np.float64))
      for (v, g) in zip(variables, values))


def group_of(name):
  layer = base.encoder_layer(name)
  where = "classifier" if base.is_head(name) else (
      "layer %d" % layer if layer is not None else "other")
  if base.is_layer_norm(name):
    kind = "LayerNorm"
  elif base.is_head(name):
    kind = "output"
  else:
    last = name.rsplit("/", 1)[-1]
    kind = "bias" if last.startswith("bias") else "kernel"
  return "%s %s" % (where, kind)


def main(argv):
  del argv
  tf.disable_v2_behavior()
  config = modeling.BertConfig.from_json_file(
      os.path.join(FLAGS.bert_dir, "bert_config.json"))
  tokenizer = tokenization.FullTokenizer(
      os.path.join(FLAGS.bert_dir, "vocab.txt"), do_lower_case=True)
  task = glue.get_task(FLAGS.task)
  method = methods.build(FLAGS.tuning_mode,
                         num_layers=config.num_hidden_layers)
  batch = read_batch(task, tokenizer,
                     os.path.join(FLAGS.glue_dir, FLAGS.task),
                     FLAGS.batch_size, FLAGS.batch_index,
                     FLAGS.max_seq_length)
  checkpoint = [FLAGS.init_checkpoint or
                os.path.join(FLAGS.bert_dir, "bert_model.ckpt")]
  if FLAGS.init_checkpoint:
    checkpoint.append(os.path.join(FLAGS.bert_dir, "bert_model.ckpt"))
  reference = gradients(config, method, task, batch, tf.float32, checkpoint,
                        FLAGS.dropout)
  precision_parts.EXPERIMENTS[FLAGS.experiment]()
  low = gradients(config, method, task, batch, tf.bfloat16, checkpoint,
                  FLAGS.dropout)
  groups = collections.OrderedDict()
  for name in reference:
    (a, b) = groups.setdefault(group_of(name), ([], []))
    a.append(reference[name].ravel())
    b.append(low[name].ravel())
  print("%s, %s, batch %d of %d rows (%d tokens wide), bfloat16 keeping "
        "float32 for: %s%s" % (FLAGS.task, FLAGS.tuning_mode,
                               FLAGS.batch_index, FLAGS.batch_size,
                               batch["input_ids"].shape[1], FLAGS.experiment,
                               ", dropout on" if FLAGS.dropout else ""))
  print("%-22s %10s %8s %8s %8s" % ("group", "rel_err", "norm", "cos",
                                    "signs"))
  rows = []
  for (group, (a, b)) in groups.items():
    (a, b) = (np.concatenate(a), np.concatenate(b))
    norm_a = np.linalg.norm(a)
    rows.append((np.linalg.norm(b - a) / norm_a, np.linalg.norm(b) / norm_a,
                 float(a @ b) / (norm_a * np.linalg.norm(b)),
                 np.mean(np.sign(a) != np.sign(b))))
    print("%-22s %10.4f %8.4f %8.4f %8.4f" % ((group,) + rows[-1]))
  print("%-22s %10.4f %8.4f %8.4f %8.4f" % (("mean of the groups",) +
                                             tuple(np.mean(rows, axis=0))))


if __name__ == "__main__":
  app.run(main)
