# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Measures what one task costs on disk: adapter bundle vs full fine-tuning.

Builds BERT-base (or --bert_config_file) with random weights, writes:
  1. a training checkpoint with adapters, and exports its adapter bundle;
  2. a full fine-tuned checkpoint (no adapters), without optimizer state;
  3. the same with Adam's two slots per variable, as training leaves it;
  4. an adapter training checkpoint as run_classifier.py writes it (compact:
     the trained variables, their Adam slots and the step), and the whole
     one (every weight too) an Estimator's default saver would write;
and prints the size of each on disk. The weights' values do not change the
sizes (float32, uncompressed), so random weights measure the real thing.

  python benchmarks/bundle_size.py                     # BERT-base, adapters of 64
  python benchmarks/bundle_size.py --adapter_size=256
"""

import json
import os
import shutil
import sys
import tempfile

# `python benchmarks/<name>.py` puts benchmarks/ on sys.path, not the
# repository root that holds adapter_bert/ and modeling.py: add it.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Before TensorFlow loads: its start-up noise is hidden.
from adapter_bert import console  # pylint: disable=g-import-not-at-top,wrong-import-position
console.quiet_tensorflow_startup()

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import classifier
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods
import modeling
import optimization

FLAGS = flags.FLAGS
flags.DEFINE_string("bert_config_file", None,
                    "bert_config.json of the model to measure (default: "
                    "BERT-base).")
flags.DEFINE_integer("adapter_size", 64, "Bottleneck width m of each adapter.")
flags.DEFINE_integer("num_labels", 2, "Classes of the head.")
flags.DEFINE_string("work_dir", None, "Scratch folder (default: a temp dir).")

BERT_BASE = {
    "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1, "hidden_size": 768,
    "initializer_range": 0.02, "intermediate_size": 3072,
    "max_position_embeddings": 512, "num_attention_heads": 12,
    "num_hidden_layers": 12, "type_vocab_size": 2, "vocab_size": 30522,
}


def save_model(path, bert_config, hooks, num_labels, with_adam,
               method=None, compact=False):
  """Builds the classifier with `hooks` (a method's additions, or None for
  plain BERT), optionally Adam slots for the variables `method` trains
  (default: all), and saves everything, or with `compact` the training
  checkpoint of classifier.compact_scaffold."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.Graph().as_default():
    input_ids = tf.zeros([1, 8], dtype=tf.int32)
    outputs = classifier.create_model(
        bert_config, True, {"input_ids": input_ids, "input_mask": input_ids,
                            "segment_ids": input_ids,
                            "label_ids": tf.zeros([1], dtype=tf.int32)},
        num_labels, hooks)
    trained = tf.trainable_variables()
    if method:
      trained = method.trained_variables(trained)
    if with_adam:
      optimization.create_optimizer(outputs["loss"], 1e-4, 10, 1, False,
                                    trained)
    else:
      tf.train.get_or_create_global_step()
    if compact:
      saver = classifier.compact_scaffold(method, 1).saver
    else:
      saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      saver.save(session, path, write_meta_graph=False)
  return fileio.directory_size(os.path.dirname(path))


def main(argv):
  del argv
  if FLAGS.bert_config_file:
    bert_config = modeling.BertConfig.from_json_file(FLAGS.bert_config_file)
  else:
    bert_config = modeling.BertConfig.from_dict(BERT_BASE)
  measure(bert_config, FLAGS.adapter_size, FLAGS.num_labels, FLAGS.work_dir)


def measure(bert_config, adapter_size, num_labels, work_dir=None):
  """Writes the three kinds of checkpoint and prints their sizes."""
  # The project's own method: the registry's first.
  method = methods.build(methods.names()[0], {"adapter_size": adapter_size})
  scratch = work_dir or tempfile.mkdtemp(prefix="bundle_size_")
  human = fileio.human_bytes
  try:
    with_adapters = os.path.join(scratch, "with_adapters", "model.ckpt")
    save_model(with_adapters, bert_config, method, num_labels,
               with_adam=False)
    info = bundles.export_bundle(
        os.path.dirname(with_adapters), os.path.join(scratch, "bundle"),
        method, glue.get_task("MRPC"), bert_config,
        bundles.FeatureSettings(max_seq_length=128, do_lower_case=True))
    full = save_model(os.path.join(scratch, "fine_tuned", "model.ckpt"),
                      bert_config, None, num_labels, with_adam=False)
    full_adam = save_model(os.path.join(scratch, "full_adam", "model.ckpt"),
                           bert_config, None, num_labels, with_adam=True)
    compact = save_model(os.path.join(scratch, "compact", "model.ckpt"),
                         bert_config, method, num_labels,
                         with_adam=True, method=method, compact=True)
    whole = save_model(os.path.join(scratch, "whole", "model.ckpt"),
                       bert_config, method, num_labels,
                       with_adam=True, method=method)
    print(json.dumps({
        "hidden_size": bert_config.hidden_size,
        "num_hidden_layers": bert_config.num_hidden_layers,
        "adapter_size": adapter_size,
    }))
    print("adapter bundle:                       %10s (%s parameters)" %
          (human(info["bytes"]), "{:,}".format(info["num_parameters"])))
    print("full fine-tuned checkpoint:           %10s" % human(full))
    print("full fine-tuned checkpoint with Adam: %10s" % human(full_adam))
    print("bundle / full: 1/%.0f; bundle / full with Adam: 1/%.0f" %
          (full / info["bytes"], full_adam / info["bytes"]))
    print("adapter training checkpoint, compact: %10s (trained variables, "
          "their Adam slots, the step)" % human(compact))
    print("adapter training checkpoint, whole:   %10s (every weight too)" %
          human(whole))
  finally:
    if not work_dir:
      shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
  app.run(main)
