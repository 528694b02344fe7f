"""Padding policies: what the input pipeline builds under each, that eval and
predict do not depend on it, that bucketed training is repeatable, and the
cheaper model pieces that come with it ([CLS]-only last layer, dropout)."""

import os
import random
import zlib

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import new_session
from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import tiny_bert_config_dict
from conftest import write_sst2_task
from conftest import write_tiny_bert
from adapter_bert import classifier
from adapter_bert import glue
from adapter_bert import multitask
from adapter_bert.classifier import features
from adapter_bert.classifier import inputs
from adapter_bert.classifier import settings as settings_lib
from adapter_bert.methods import base
import adapters
import modeling
import tokenization

WORDS = "the a movie film was is it this not very good great fun bad dull".split()
SEQ_LENGTH = 32


def varied_rows(count, seed):
  """Sentences of 1 to 25 words, labelled by whether "good" is in them."""
  rng = random.Random(seed)
  rows = []
  for _ in range(count):
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 25))]
    rows.append((" ".join(words), str(int("good" in words))))
  return rows


def write_varied_sst2_task(data_dir, num_train=96, num_dev=21, num_test=19):
  return write_sst2_task(data_dir, num_train, num_dev, num_test,
                         rows=varied_rows)


def write_features(tiny_bert, path, rows, sort_by_length=False):
  """A features TFRecord of `rows` (text, label); returns the real lengths."""
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"], True)
  examples = [glue.InputExample(str(i), text, None, label)
              for (i, (text, label)) in enumerate(rows)]
  features.file_based_convert_examples_to_features(
      examples, ["0", "1"], SEQ_LENGTH, tokenizer, path, sort_by_length)
  return [sum(features.convert_single_example(
      i, e, ["0", "1"], SEQ_LENGTH, tokenizer).input_mask)
          for (i, e) in enumerate(examples)]


def read_batches(input_file, padding, is_training, num_batches=None,
                 batch_size=8, seed=7):
  """The batches an input_fn yields, as lists of numpy dicts."""
  input_fn = inputs.file_based_input_fn_builder(
      input_file, SEQ_LENGTH, is_training=is_training,
      drop_remainder=is_training, seed=seed, padding=padding)
  batches = []
  with tf.Graph().as_default():
    batch = tf.data.make_one_shot_iterator(
        input_fn({"batch_size": batch_size})).get_next()
    with new_session() as session:
      while num_batches is None or len(batches) < num_batches:
        try:
          batches.append(session.run(batch))
        except tf.errors.OutOfRangeError:
          break
  return batches


@pytest.fixture
def features_file(tiny_bert, tmp_path):
  path = str(tmp_path / "train.tf_record")
  lengths = write_features(tiny_bert, path, varied_rows(60, 5))
  return path, lengths


# ---------------------------------------------------------------- policies


def test_auto_padding_is_static_on_tpu_and_bucketed_elsewhere():
  assert inputs.resolve_padding("auto", use_tpu=True) == "static"
  assert inputs.resolve_padding("auto", use_tpu=False) == "bucket"
  for policy in ("static", "batch", "bucket"):
    assert inputs.resolve_padding(policy, use_tpu=False) == policy
  with pytest.raises(ValueError, match="TPUs need static shapes"):
    inputs.resolve_padding("bucket", use_tpu=True)
  with pytest.raises(ValueError, match="unknown"):
    inputs.resolve_padding("longest", use_tpu=False)


def test_dynamic_padding_on_tpu_is_a_one_line_flag_error(tiny_bert, tmp_path):
  settings = classifier.Settings(
      task_name="SST-2", data_dir=str(tmp_path), output_dir=str(tmp_path),
      bert_config_file=tiny_bert["bert_config_file"],
      vocab_file=tiny_bert["vocab_file"], do_train=True, use_tpu=True,
      padding="batch")
  assert_input_error(lambda: settings_lib.validate_settings(settings),
                     "--padding=batch", "static")


def test_records_hold_real_tokens_only_and_their_index(tiny_bert, tmp_path):
  path = str(tmp_path / "eval.tf_record")
  lengths = write_features(tiny_bert, path, varied_rows(30, 4),
                           sort_by_length=True)
  stored = []
  for record in tf.io.tf_record_iterator(path):
    feature = tf.train.Example.FromString(record).features.feature
    stored.append((feature["example_index"].int64_list.value[0],
                   len(feature["input_ids"].int64_list.value)))
  # Every example once, with its real length, longest first.
  assert sorted(i for (i, _) in stored) == list(range(30))
  assert all(length == lengths[i] for (i, length) in stored)
  assert [l for (_, l) in stored] == sorted(lengths, reverse=True)
  assert len(set(lengths)) > 5  # the rows really differ in length


def test_static_padding_pads_every_row_to_max_seq_length(features_file):
  (path, lengths) = features_file
  batches = read_batches(path, "static", is_training=False)
  assert sum(len(b["input_ids"]) for b in batches) == len(lengths)
  for b in batches:
    assert b["input_ids"].shape[1] == SEQ_LENGTH
    real = b["input_mask"].sum(axis=1)
    assert list(real) == [lengths[i] for i in b["example_index"]]


def test_batch_padding_pads_to_the_longest_row_rounded_to_eight(
    features_file):
  (path, lengths) = features_file
  batches = read_batches(path, "batch", is_training=False)
  assert sum(len(b["input_ids"]) for b in batches) == len(lengths)
  widths = set()
  for b in batches:
    longest = max(lengths[i] for i in b["example_index"])
    width = b["input_ids"].shape[1]
    widths.add(width)
    assert width == min(SEQ_LENGTH, -(-longest // 8) * 8), (width, longest)
    # The mask marks exactly the real tokens; padding ids are 0.
    assert list(b["input_mask"].sum(axis=1)) == [lengths[i] for i in
                                                 b["example_index"]]
    assert np.all(b["input_ids"][b["input_mask"] == 0] == 0)
  assert len(widths) > 1  # some batches are narrower than others


def test_in_memory_batch_is_cut_to_its_longest_row(tiny_bert):
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"], True)
  rows = varied_rows(9, seed=4)
  examples = [glue.InputExample(str(i), text, None, label)
              for (i, (text, label)) in enumerate(rows)]
  batch = features.batch_arrays(examples, ["0", "1"], SEQ_LENGTH, tokenizer)
  # [CLS] + word pieces + [SEP], counted from the tokenizer itself.
  lengths = [min(SEQ_LENGTH, len(tokenizer.tokenize(text)) + 2)
             for (text, _) in rows]
  assert batch["input_ids"].shape == (9, max(lengths))
  assert list(batch["input_mask"].sum(axis=1)) == lengths
  assert np.all(batch["input_ids"][batch["input_mask"] == 0] == 0)
  assert np.all(batch["input_ids"][:, 0] ==
                tokenizer.convert_tokens_to_ids(["[CLS]"])[0])
  assert list(batch["label_ids"]) == [int(label) for (_, label) in rows]
  assert {a.dtype for a in batch.values()} == {np.dtype(np.int32)}


def test_bucketed_training_batches_rows_of_similar_length(features_file):
  (path, lengths) = features_file
  batches = read_batches(path, "bucket", is_training=True, num_batches=40)
  boundaries = [0] + inputs.length_bucket_boundaries(SEQ_LENGTH) + [
      SEQ_LENGTH + 1]
  seen = set()
  for b in batches:
    assert len(b["input_ids"]) == 8  # full batches
    rows = [lengths[i] for i in b["example_index"]]
    bucket = [j for j in range(len(boundaries) - 1)
              if boundaries[j] <= rows[0] < boundaries[j + 1]]
    assert all(bucket and boundaries[bucket[0]] <= r <
               boundaries[bucket[0] + 1] for r in rows), rows
    assert b["input_ids"].shape[1] == min(SEQ_LENGTH, -(-max(rows) // 8) * 8)
    seen.update(b["example_index"])
  # Over many batches every row comes up, and not in file order.
  assert seen == set(range(len(lengths)))
  first = list(batches[0]["example_index"])
  assert first != sorted(first)


def test_bucketed_batches_are_fixed_by_the_seed(features_file):
  (path, _) = features_file
  def order(seed):
    return [list(b["example_index"]) for b in
            read_batches(path, "bucket", True, num_batches=12, seed=seed)]
  assert order(7) == order(7)
  assert order(7) != order(8)


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def varied_bert(tmp_path_factory):
  """A tiny BERT with large random weights: its [CLS] output differs a lot
  from row to row, so a row mix-up or a padding effect would show."""
  return write_tiny_bert(str(tmp_path_factory.mktemp("varied_bert")),
                         initializer_range=0.5)


@pytest.fixture(scope="module")
def trained_run(varied_bert, tmp_path_factory):
  """A tiny adapter model trained on rows of varied length (bucketed)."""
  tiny_bert = varied_bert
  base = tmp_path_factory.mktemp("padding")
  data_dir = write_varied_sst2_task(str(base / "data"))
  output_dir = str(base / "train")
  run_classifier_in_process(tiny_bert, data_dir, output_dir,
                            max_seq_length=SEQ_LENGTH, num_train_epochs=2.0,
                            adapter_init_scale=0.1, padding="bucket",
                            do_eval=False)
  return {"data_dir": data_dir, "output_dir": output_dir, "base": base}


def read_probabilities(path):
  with open(path) as f:
    return np.array([[float(x) for x in line.split("\t")] for line in f])


@pytest.mark.slow
def test_eval_and_predict_do_not_depend_on_padding(varied_bert, trained_run):
  tiny_bert = varied_bert
  results = {}
  for padding in ("static", "batch", "bucket"):
    output_dir = str(trained_run["base"] / ("eval-" + padding))
    run_classifier_in_process(
        tiny_bert, trained_run["data_dir"], output_dir,
        max_seq_length=SEQ_LENGTH, do_train=False, do_eval=True,
        do_predict=True, padding=padding, eval_batch_size=4,
        predict_batch_size=4,
        adapter_bundle=os.path.join(trained_run["output_dir"],
                                    "adapter_bundle"))
    results[padding] = (
        read_eval_results(output_dir),
        read_probabilities(os.path.join(output_dir, "test_results.tsv")))
  (static_eval, static_probs) = results["static"]
  assert static_probs.shape == (19, 2)
  # The model learned something row-specific, so order mix-ups would show.
  # (50 times the tolerance below.)
  assert np.std(static_probs[:, 1]) > 5e-4
  for padding in ("batch", "bucket"):
    (eval_results, probs) = results[padding]
    np.testing.assert_allclose(probs, static_probs, atol=1e-5, rtol=0)
    assert eval_results["eval_accuracy"] == static_eval["eval_accuracy"]
    assert abs(eval_results["eval_loss"] - static_eval["eval_loss"]) < 1e-5


def test_predictions_come_back_in_example_order(varied_bert, trained_run):
  """Against an independent path: the multi-task predictor's plain session,
  in example order, every row padded to max_seq_length."""
  tiny_bert = varied_bert
  output_dir = str(trained_run["base"] / "order")
  run_classifier_in_process(
      tiny_bert, trained_run["data_dir"], output_dir,
      max_seq_length=SEQ_LENGTH, do_train=False, do_eval=False,
      do_predict=True, predict_batch_size=4,
      adapter_bundle=os.path.join(trained_run["output_dir"], "adapter_bundle"))
  probs = read_probabilities(os.path.join(output_dir, "test_results.tsv"))
  predictor = multitask.MultiTaskPredictor(
      modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"]),
      tiny_bert["init_checkpoint"], tiny_bert["vocab_file"], batch_size=1)
  predictor.add_task(os.path.join(trained_run["output_dir"], "adapter_bundle"))
  task = glue.get_task("SST-2")
  examples = task.read_examples(trained_run["data_dir"], task.test[0])
  expected = np.array([o["probabilities"] for o in
                       predictor.predict("SST-2", examples)])
  np.testing.assert_allclose(probs, expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_bucketed_training_is_deterministic_for_a_seed(varied_bert,
                                                     trained_run):
  tiny_bert = varied_bert
  def train(name, seed):
    output_dir = str(trained_run["base"] / name)
    run_classifier_in_process(tiny_bert, trained_run["data_dir"], output_dir,
                              max_seq_length=SEQ_LENGTH, num_train_epochs=1.0,
                              padding="bucket", do_eval=False, seed=seed)
    values = checkpoint_values(tf.train.latest_checkpoint(output_dir))
    return {k: v for (k, v) in values.items() if "adapters" in k}

  first = train("seed-a", 3)
  again = train("seed-a-again", 3)
  other = train("seed-b", 4)
  assert first and sorted(first) == sorted(again)
  for name in first:
    np.testing.assert_array_equal(first[name], again[name], err_msg=name)
  assert any(not np.array_equal(first[n], other[n]) for n in first)


# ---------------------------------------------------------------- the model


def run_pooled(tiny_bert, pooled_only, input_ids, input_mask):
  config = modeling.BertConfig.from_dict(tiny_bert_config_dict())
  with tf.Graph().as_default():
    model = modeling.BertModel(
        config, False, tf.constant(input_ids), tf.constant(input_mask),
        hooks=adapters.AdaptersMethod.create({"adapter_size": 8,
                                              "adapter_init_scale": 0.1}),
        pooled_only=pooled_only)
    names = sorted(base.variable_name(v) for v in tf.global_variables())
    saver = tf.train.Saver(
        [v for v in tf.global_variables() if "adapters" not in v.name])
    tf.set_random_seed(1)
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      saver.restore(session, tiny_bert["init_checkpoint"])
      # The same adapter values in both graphs.
      for v in tf.global_variables():
        if "adapters" in v.name:
          rng = np.random.RandomState(zlib.crc32(v.name.encode("utf-8")))
          v.load(rng.normal(0, 0.1, v.shape.as_list()), session)
      pooled, sequence = session.run([model.get_pooled_output(),
                                      model.get_sequence_output()])
  return names, pooled, sequence


def test_first_token_only_last_layer_gives_the_same_pooled_output(tiny_bert):
  rng = np.random.RandomState(0)
  input_ids = rng.randint(5, 30, size=[3, 11]).astype(np.int32)
  input_mask = np.ones_like(input_ids)
  input_mask[1, 6:] = 0
  full_names, full_pooled, full_sequence = run_pooled(tiny_bert, False,
                                                      input_ids, input_mask)
  names, pooled, sequence = run_pooled(tiny_bert, True, input_ids,
                                       input_mask)
  assert names == full_names  # the same variables, so the same checkpoints
  np.testing.assert_allclose(pooled, full_pooled, atol=1e-6, rtol=0)
  assert sequence.shape == (3, 1, 32) and full_sequence.shape == (3, 11, 32)
  np.testing.assert_allclose(sequence[:, 0], full_sequence[:, 0], atol=1e-6,
                             rtol=0)


def test_dropout_rate_scale_and_seed():
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(5)
    x = tf.ones([400, 500])
    dropped = modeling.dropout(x, 0.1)
    odd = modeling.dropout(tf.ones([400, 501]), 0.1)  # the float path
    with new_session(graph) as session:
      (first, odd_value) = session.run([dropped, odd])
      again = session.run(dropped)
    with new_session(graph) as session:
      replay = session.run(dropped)
  for value in (first, odd_value):
    zeros = np.mean(value == 0)
    assert abs(zeros - 0.1) < 0.005, zeros
  threshold = round(0.1 * 65536)
  np.testing.assert_allclose(first[first != 0], 65536 / (65536 - threshold),
                             rtol=1e-6)
  assert not np.array_equal(first, again)  # a new mask every step
  np.testing.assert_array_equal(first, replay)  # ... fixed by the graph seed


def _masks_at_steps(steps, graph_seed=5, width=500):
  """Two dropout sites' outputs in a fresh graph with a global step, at each
  of `steps` (as a resumed process would see them)."""
  with tf.Graph().as_default() as graph:
    tf.set_random_seed(graph_seed)
    step = tf.train.get_or_create_global_step()
    x = tf.ones([40, width])
    with tf.variable_scope("layer_0"):
      first = modeling.dropout(x, 0.1)
    with tf.variable_scope("layer_1"):
      second = modeling.dropout(x, 0.1)
    values = []
    with new_session(graph) as session:
      for k in steps:
        session.run(step.assign(k))
        values.append(session.run([first, second]))
  return values


@pytest.mark.parametrize("width", [500, 501])
def test_dropout_masks_are_a_function_of_seed_site_and_step(width):
  uninterrupted = _masks_at_steps([0, 1, 2, 3], width=width)
  resumed = _masks_at_steps([2, 3], width=width)  # a new process at step 2
  for (a, b) in zip(uninterrupted[2:], resumed):
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
  (site_0, site_1) = uninterrupted[0]
  assert not np.array_equal(site_0, site_1)  # each site its own mask
  assert not np.array_equal(uninterrupted[0][0], uninterrupted[1][0])
  other_seed = _masks_at_steps([0], graph_seed=6, width=width)[0]
  assert not np.array_equal(other_seed[0], site_0)


def test_dropout_gradient_is_the_mask():
  with tf.Graph().as_default():
    x = tf.Variable(tf.ones([64, 32]))
    y = modeling.dropout(x, 0.25)
    (grad,) = tf.gradients(tf.reduce_sum(y * 3.0), [x])
    with new_session() as session:
      session.run(tf.global_variables_initializer())
      (y_value, grad_value) = session.run([y, grad])
  np.testing.assert_allclose(grad_value, 3.0 * y_value, rtol=1e-6)


@pytest.mark.parametrize("width", [500, 501])
def test_bfloat16_dropout_keeps_float32_masks_and_scale(width):
  """A seed drops the same elements in bfloat16 as in float32, and scales
  what it keeps by 1 / (1 - rate) rounded once (not by a bfloat16 constant:
  1.109375, 0.16% low)."""
  values = {}
  inputs = np.random.RandomState(0).uniform(1, 2, [300, width])
  for dtype in (tf.float32, tf.bfloat16):
    with tf.Graph().as_default() as graph:
      tf.set_random_seed(5)
      tf.train.get_or_create_global_step()
      x = tf.constant(inputs, dtype)
      dropped = tf.cast(modeling.dropout(x, 0.1), tf.float32)
      with new_session(graph) as session:
        session.run(tf.global_variables_initializer())
        values[dtype] = (session.run(dropped), session.run(
            tf.cast(x, tf.float32)))
  np.testing.assert_array_equal(values[tf.float32][0] == 0,
                                values[tf.bfloat16][0] == 0)
  (dropped, x) = values[tf.bfloat16]
  kept = dropped != 0
  # Each kept value is x / 0.9 rounded to bfloat16 (8 bits): unbiased on
  # average over many values, where a bfloat16 scale is 0.16% low on all.
  ratio = np.mean(dropped[kept] / x[kept]) * 0.9
  assert abs(ratio - 1) < 2e-4, ratio
