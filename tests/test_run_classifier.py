"""run_classifier.py and the classifier library: features, the cache key,
end-to-end runs, errors."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import REPO_ROOT
from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import read_eval_results
from conftest import run_classifier_cli
from conftest import run_classifier_in_process
from conftest import write_file
from conftest import write_mrpc_task
from conftest import write_sst2_task
from conftest import write_tiny_bert
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert.classifier import evaluation
from adapter_bert.classifier import features
import tokenization

ADAPTERS = methods.build("adapters", {"adapter_size": 8})


# ---------------------------------------------------------------- features


def test_convert_single_example_layout(tiny_bert):
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"], True)
  example = glue.InputExample("x", "the movie was good",
                                        "it was fun", "1")
  feature = features.convert_single_example(0, example, ["0", "1"], 12,
                                            tokenizer)
  tokens = tokenizer.convert_ids_to_tokens(feature.input_ids)
  assert tokens == ["[CLS]", "the", "movie", "was", "good", "[SEP]", "it",
                    "was", "fun", "[SEP]", "[PAD]", "[PAD]"]
  assert feature.segment_ids == [0] * 6 + [1] * 4 + [0] * 2
  assert feature.input_mask == [1] * 10 + [0] * 2
  assert feature.label_id == 1


def test_truncation_keeps_max_seq_length(tiny_bert):
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"], True)
  long_text = " ".join(["good"] * 30)
  example = glue.InputExample("x", long_text, "bad bad", "0")
  feature = features.convert_single_example(0, example, ["0", "1"], 10,
                                            tokenizer)
  tokens = tokenizer.convert_ids_to_tokens(feature.input_ids)
  # The longer text loses tokens first; the short one survives whole.
  assert tokens == ["[CLS]"] + ["good"] * 5 + ["[SEP]", "bad", "bad", "[SEP]"]
  assert feature.num_truncated == 30 + 2 + 3 - 10
  short = glue.InputExample("y", "good", "bad", "0")
  assert features.convert_single_example(
      0, short, ["0", "1"], 10, tokenizer).num_truncated == 0


def test_truncation_is_reported_and_warned_when_most_lose_text(
    tmp_path, tiny_bert, caplog):
  import logging
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"], True)
  examples = [glue.InputExample(str(i), " ".join(["good"] * n), None, "0")
              for (i, n) in enumerate([3, 12, 20])]
  for (length, level, fragment) in (
      (32, logging.INFO, "no example truncated at --max_seq_length=32"),
      (16, logging.INFO, "1 of 3 examples (33.3%) truncated at "
       "--max_seq_length=16, by 6.0 word pieces on average (at most 6)"),
      (8, logging.WARNING, "2 of 3 examples (66.7%) truncated at "
       "--max_seq_length=8, by 10.0 word pieces on average (at most 14); "
       "most examples lose text")):
    caplog.clear()
    with caplog.at_level(logging.INFO):
      features.file_based_convert_examples_to_features(
          examples, ["0", "1"], length, tokenizer,
          str(tmp_path / ("f%d.tf_record" % length)))
    matching = [r for r in caplog.records if fragment in r.getMessage()]
    assert matching and matching[0].levelno == level, [
        r.getMessage() for r in caplog.records]


def test_feature_cache_key_changes_with_everything_that_shapes_features(
    tmp_path, tiny_bert):
  data = write_file(str(tmp_path / "train.tsv"), ["sentence\tlabel", "a\t1"])
  base = dict(input_file=data, vocab_file=tiny_bert["vocab_file"],
              do_lower_case=True, max_seq_length=16, task_name="sst-2",
              label_list=["0", "1"], num_padding=0)
  key = features.feature_cache_key(**base)
  assert features.feature_cache_key(**base) == key
  for (name, value) in [("do_lower_case", False), ("max_seq_length", 32),
                        ("task_name", "cola"), ("num_padding", 3),
                        ("sort_by_length", True)]:
    changed = dict(base, **{name: value})
    assert features.feature_cache_key(**changed) != key, name
  other_vocab = write_file(str(tmp_path / "vocab.txt"), ["[PAD]", "a"])
  assert features.feature_cache_key(
      **dict(base, vocab_file=other_vocab)) != key
  write_file(data, ["sentence\tlabel", "b\t1"])  # same name, new contents
  assert features.feature_cache_key(**base) != key


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "drop_check", "edit"])
def test_a_damaged_feature_cache_is_built_again(tmp_path, tiny_bert, damage):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  results = run_classifier_in_process(tiny_bert, data_dir, output_dir)
  [dev_file] = [os.path.join(output_dir, n) for n in os.listdir(output_dir)
                if n.startswith("eval-dev-") and n.endswith(".tf_record")]
  with open(dev_file + ".check.json") as f:
    assert json.load(f)["records"] == 13
  intact = open(dev_file, "rb").read()
  if damage == "truncate":  # a full disk or an interrupted copy
    open(dev_file, "wb").write(intact[:len(intact) // 2])
  elif damage == "drop_check":  # killed between the records and their check
    os.remove(dev_file + ".check.json")
  else:  # same length, other bytes
    open(dev_file, "wb").write(intact[:-9] + b"x" * 9)
  again = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                    do_train=False)
  assert again == results
  assert open(dev_file, "rb").read() == intact


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_train_eval_predict_end_to_end(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  result = run_classifier_cli(tiny_bert, data_dir, output_dir,
                              do_predict=True, num_train_epochs=2.0,
                              log_every_n_steps=4)
  assert result.returncode == 0, result.stderr[-3000:]

  results = read_eval_results(output_dir)
  assert sorted(results) == ["eval_accuracy", "eval_loss", "global_step",
                             "loss"]
  assert results["global_step"] == 64 // 8 * 2
  assert 0.0 <= results["eval_accuracy"] <= 1.0
  assert results["eval_loss"] > 0.0

  with open(os.path.join(output_dir, "test_results.tsv")) as f:
    rows = [[float(p) for p in line.split("\t")] for line in f]
  assert len(rows) == 7
  for row in rows:
    assert len(row) == 2 and abs(sum(row) - 1.0) < 1e-5

  # The log reports parameter counts and training throughput.
  assert re.search(r"Parameters: [\d,]+ trained of [\d,]+ total", result.stderr)
  assert re.search(r"steps/s, [\d.]+ examples/s", result.stderr)

  # Frozen weights are not in the (compact) checkpoint: they are read from
  # --init_checkpoint at every start. Trained ones moved.
  initial = checkpoint_values(tiny_bert["init_checkpoint"])
  final = checkpoint_values(tf.train.latest_checkpoint(output_dir))
  for name in initial:
    assert ADAPTERS.trains(name) == (name in final), name
  moved = [name for name in final if "/adapters/weights" in name and
           "adam" not in name]
  assert moved and all(not np.allclose(final[name], 0.0, atol=1e-2) or
                       name not in initial for name in moved)
  layer_norms = [n for n in initial if "LayerNorm" in n]
  assert any(not np.array_equal(initial[n], final[n]) for n in layer_norms)
  # Adam slots exist only for the trained variables.
  slots = {n[:-len("/adam_m")] for n in final if n.endswith("/adam_m")}
  assert slots == {n for n in final if "adam" not in n and
                   ADAPTERS.trains(n)}


@pytest.mark.slow
def test_adapter_bert_readme_command_runs_as_is(tmp_path, tiny_bert):
  """The MRPC command of the adapter-bert README, on a tiny model and task."""
  data_dir = write_mrpc_task(str(tmp_path / "MRPC"))
  output_dir = str(tmp_path / "adapter_bert_mrpc")
  command = [
      sys.executable, os.path.join(REPO_ROOT, "run_classifier.py"),
      "--task_name=MRPC", "--do_train=true", "--do_eval=true",
      "--data_dir=%s" % data_dir,
      "--vocab_file=%s" % tiny_bert["vocab_file"],
      "--bert_config_file=%s" % tiny_bert["bert_config_file"],
      "--init_checkpoint=%s" % tiny_bert["init_checkpoint"],
      "--max_seq_length=128", "--train_batch_size=32", "--learning_rate=3e-4",
      "--num_train_epochs=5.0", "--output_dir=%s/" % output_dir]
  result = subprocess.run(command, capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  results = read_eval_results(output_dir)
  assert results["global_step"] == int(40 / 32 * 5.0)
  assert "eval_accuracy" in results
  # No --precision: auto, resolved for this machine and logged with why.
  assert re.search(r"--precision=auto: (float32|mixed_bfloat16) \(",
                   result.stderr + result.stdout)


@pytest.mark.slow
def test_full_tuning_mode_trains_frozen_weights_too(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"), num_train=16)
  output_dir = str(tmp_path / "out")
  result = run_classifier_cli(tiny_bert, data_dir, output_dir,
                              tuning_mode="full", adapter_placement="none")
  assert result.returncode == 0, result.stderr[-3000:]
  initial = checkpoint_values(tiny_bert["init_checkpoint"])
  final = checkpoint_values(tf.train.latest_checkpoint(output_dir))
  kernel = "bert/encoder/layer_0/attention/self/query/kernel"
  assert not np.array_equal(initial[kernel], final[kernel])
  assert not any("/adapters/" in name for name in final)
  assert not os.path.exists(os.path.join(output_dir, "adapter_bundle"))


# ---------------------------------------------------------------- bad input


def test_missing_vocab_file_is_one_line_error(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir,
                                        str(tmp_path / "out"),
                                        vocab_file=str(tmp_path / "nope.txt")),
      "--vocab_file=", "nope.txt")


def test_config_not_matching_checkpoint_is_refused(tmp_path, tiny_bert):
  other = write_tiny_bert(str(tmp_path / "wide"), hidden_size=48)
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"),
          bert_config_file=other["bert_config_file"]),
      "does not match --init_checkpoint", "bert/embeddings/word_embeddings")
  assert not os.path.exists(str(tmp_path / "out" / "eval_results.txt"))


def test_max_seq_length_above_positions_is_refused(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"), max_seq_length=129),
      "--max_seq_length=129", "max_position_embeddings=128")
  # Prefix tuning puts its p positions before the tokens (as PEFT does).
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"), max_seq_length=120,
          tuning_mode="prefix", prefix_length=10, adapter_size=None),
      "--max_seq_length=120 + the 10 positions --tuning_mode=prefix",
      "max_position_embeddings=128")
  assert not os.path.exists(str(tmp_path / "out"))


def test_unknown_task_is_refused(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"), task_name="glue-ish"),
      "--task_name=glue-ish")


def test_short_tsv_row_names_file_and_line(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  with open(os.path.join(data_dir, "train.tsv"), "a") as f:
    f.write("a row without its label\n")
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out")),
      os.path.join(data_dir, "train.tsv") + ":66:")


def test_unreadable_checkpoint_is_refused(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"),
          init_checkpoint=str(tmp_path / "missing.ckpt")),
      "--init_checkpoint=", "missing.ckpt")


def test_eval_without_a_trained_checkpoint_is_refused(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"), do_train=False),
      "holds no trained checkpoint")


@pytest.mark.slow
def test_metrics_count_every_dev_example_once(tmp_path, tiny_bert):
  """13 dev examples in batches of 8: accuracy must be k/13, not k/16."""
  data_dir = write_sst2_task(str(tmp_path / "data"), num_dev=13)
  output_dir = str(tmp_path / "out")
  result = run_classifier_cli(tiny_bert, data_dir, output_dir,
                              num_train_epochs=0.25, eval_batch_size=8)
  assert result.returncode == 0, result.stderr[-3000:]
  correct = read_eval_results(output_dir)["eval_accuracy"] * 13
  assert abs(correct - round(correct)) < 1e-4, correct


def test_tpu_padding_examples_have_zero_weight(tiny_bert):
  examples = [glue.InputExample(str(i), "good", None, "1") for i in range(13)]
  padded = evaluation.pad_for_tpu(examples, 8, use_tpu=True)
  assert len(padded) == 16 and padded[:13] == examples
  tokenizer = tokenization.FullTokenizer(tiny_bert["vocab_file"], True)
  feature = features.convert_single_example(0, padded[-1], ["0", "1"], 8,
                                            tokenizer)
  assert not feature.is_real_example and feature.input_mask == [0] * 8
  assert len(evaluation.pad_for_tpu(examples, 8, use_tpu=False)) == 13


# The metric names each task's eval_results.txt must hold (GLUE's official).
REAL_SUBSET_METRICS = {
    "MRPC": ["eval_accuracy", "eval_f1"],
    "STS-B": ["eval_pearson", "eval_spearman"],
    "CoLA": ["eval_accuracy", "eval_mcc"],
}


def copy_head(source, target, num_lines):
  with open(source, encoding="utf-8") as f:
    lines = [next(f) for _ in range(num_lines)]
  os.makedirs(os.path.dirname(target), exist_ok=True)
  with open(target, "w", encoding="utf-8") as f:
    f.writelines(lines)


@pytest.mark.real
@pytest.mark.parametrize("task_name", sorted(REAL_SUBSET_METRICS))
def test_real_glue_subset_end_to_end(tmp_path, tiny_bert, glue_dir, task_name):
  """Train, eval and predict a tiny model on the first rows of a real task."""
  data_dir = str(tmp_path / task_name)
  for (split, num_lines) in (("train", 41), ("dev", 21), ("test", 11)):
    copy_head(os.path.join(glue_dir, task_name, split + ".tsv"),
              os.path.join(data_dir, split + ".tsv"), num_lines)
  output_dir = str(tmp_path / "out")
  result = run_classifier_cli(tiny_bert, data_dir, output_dir,
                              task_name=task_name, do_predict=True,
                              max_seq_length=32)
  assert result.returncode == 0, result.stderr[-3000:]

  results = read_eval_results(output_dir)
  assert sorted(results) == sorted(REAL_SUBSET_METRICS[task_name] +
                                   ["eval_loss", "global_step", "loss"])
  with open(os.path.join(output_dir, task_name + ".tsv")) as f:
    rows = f.read().splitlines()
  assert rows[0] == "index\tprediction"
  assert [r.split("\t")[0] for r in rows[1:]] == [str(i) for i in range(10)]


# The official files' header: 12 columns in train, 16 in dev (label1-label5,
# gold_label), the first 10 in test.
MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
               "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
               "sentence1", "sentence2", "label1", "label2", "label3",
               "label4", "label5"]


def write_mnli_task(glue_dir, num_rows=8):
  """MNLI in its official column layout, with the diagnostic set beside it."""
  labels = ["entailment", "neutral", "contradiction"]
  pairs = [("the movie was good .", "it was fun .", labels[i % 3])
           for i in range(num_rows)]
  parses = ["(x)"] * 4

  def train_row(i, a, b, label):  # 12 columns
    return [str(i), "p%d" % i, "q%d" % i, "fiction"] + parses + [a, b, label,
                                                                 label]

  def dev_row(i, a, b, label):  # 16 columns
    return train_row(i, a, b, label)[:-1] + [label] * 4 + [label]

  def test_row(i, a, b, _):  # 10 columns
    return train_row(i, a, b, "")[:10]

  mnli = os.path.join(glue_dir, "MNLI")
  for (name, make_row, width) in (
      ("train.tsv", train_row, 12), ("dev_matched.tsv", dev_row, 16),
      ("dev_mismatched.tsv", dev_row, 16), ("test_matched.tsv", test_row, 10),
      ("test_mismatched.tsv", test_row, 10)):
    header = "\t".join(MNLI_HEADER[:width - 1] + ["gold_label"] if width > 10
                       else MNLI_HEADER[:width])
    write_file(os.path.join(mnli, name),
               [header] + ["\t".join(make_row(i, *p)) for (i, p) in
                           enumerate(pairs)])
  write_file(os.path.join(glue_dir, "diagnostic", "diagnostic.tsv"),
             ["index\tsentence1\tsentence2"] +
             ["%d\t%s\t%s" % (i, a, b) for (i, (a, b, _)) in
              enumerate(pairs[:5])])
  return mnli


@pytest.mark.slow
def test_mnli_matched_mismatched_and_diagnostic_in_one_run(tmp_path,
                                                           tiny_bert):
  data_dir = write_mnli_task(str(tmp_path / "glue"))
  output_dir = str(tmp_path / "out")
  result = run_classifier_cli(tiny_bert, data_dir, output_dir,
                              task_name="mnli", do_predict=True)
  assert result.returncode == 0, result.stderr[-3000:]
  for name in ("eval_results.txt", "eval_results_mismatched.txt"):
    with open(os.path.join(output_dir, name)) as f:
      assert f.read().startswith("eval_accuracy = ")
  for (name, num_rows) in (("MNLI-m.tsv", 8), ("MNLI-mm.tsv", 8),
                           ("AX.tsv", 5)):
    with open(os.path.join(output_dir, name)) as f:
      rows = f.read().splitlines()
    assert rows[0] == "index\tprediction" and len(rows) == num_rows + 1
    assert {r.split("\t")[1] for r in rows[1:]} <= {
        "entailment", "neutral", "contradiction"}
  for name in ("test_results.tsv", "test_results_MNLI-mm.tsv",
               "test_results_AX.tsv"):
    assert os.path.exists(os.path.join(output_dir, name)), name


def test_vocab_without_special_tokens_is_refused(tmp_path, tiny_bert):
  from conftest import TINY_VOCAB
  vocab = write_file(str(tmp_path / "vocab.txt"),
                     ["[PAD]", "[UNK]", "[UNUSED]", "[SEP]", "[MASK]"] +
                     TINY_VOCAB[5:])  # same size, no [CLS]
  data_dir = write_sst2_task(str(tmp_path / "data"))
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "out"), vocab_file=vocab),
      vocab, "[CLS]")


# Refused before any work (fast); 5 trains (slow).
@pytest.mark.parametrize("length,refused", [
    (3, True), (4, True), pytest.param(5, False, marks=pytest.mark.slow)])
def test_a_pair_task_needs_room_for_a_word_of_each_text(tmp_path, tiny_bert,
                                                        length, refused):
  data_dir = write_mrpc_task(str(tmp_path / "data"))
  def run():
    return run_classifier_in_process(tiny_bert, data_dir,
                                     str(tmp_path / "out"), task_name="MRPC",
                                     max_seq_length=length,
                                     num_train_epochs=0.2)
  if refused:
    assert_input_error(run, "--max_seq_length=%d is too short for MRPC, a "
                       "task of text pairs" % length)
  else:
    assert "eval_accuracy" in run()["dev"]


def test_a_broken_test_file_is_found_before_training(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  # Another task's test file in SST-2's folder.
  write_file(os.path.join(data_dir, "test.tsv"),
             ["index\t#1 ID\t#2 ID\t#1 String\t#2 String", "0\t1\t2\ta\tb"])
  output_dir = str(tmp_path / "out")
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        do_predict=True),
      os.path.join(data_dir, "test.tsv") + ":1:",
      "this is not SST-2's test.tsv")
  assert not tf.train.latest_checkpoint(output_dir)
  assert not os.path.exists(os.path.join(output_dir, "eval_results.txt"))


def test_a_case_flag_that_contradicts_the_vocab_is_warned(caplog):
  from adapter_bert.classifier import job
  uncased = ["[PAD]", "[UNK]", "[CLS]", "the", "movie", "ℝ", "##s"]
  cased = uncased + ["Movie"] + ["w%d" % i for i in range(1000)]
  caplog.set_level("WARNING")
  job.warn_on_case_mismatch(uncased, True, "u.txt")
  job.warn_on_case_mismatch(cased, False, "c.txt")
  assert not caplog.records
  job.warn_on_case_mismatch(uncased, False, "u.txt")
  assert "--vocab_file=u.txt is uncased" in caplog.text
  assert "capitalised word will be [UNK]" in caplog.text
  caplog.clear()
  job.warn_on_case_mismatch(cased, True, "c.txt")
  assert "--vocab_file=c.txt is cased" in caplog.text


def test_an_untrained_pooler_that_stays_frozen_is_warned(tmp_path, tiny_bert):
  from adapter_bert.classifier import checkpoints
  # A freshly initialised BERT, as saved by write_tiny_bert: zero biases.
  checkpoint = tiny_bert["init_checkpoint"]
  warning = checkpoints.untrained_pooler_warning(
      checkpoint, methods.build("adapters"))
  assert warning.startswith("--init_checkpoint=%s: its pooler looks "
                            "untrained" % checkpoint), warning
  assert "--tuning_mode=adapters keeps it frozen" in warning
  assert "--train_pooler=true trains it" in warning
  # BitFit trains the pooler's bias, not its weights: still a projection.
  assert checkpoints.untrained_pooler_warning(checkpoint,
                                              methods.build("bitfit"))
  for method in (methods.build("adapters", {"train_pooler": True}),
                 methods.build(methods.reference().name),
                 methods.build("top_layers", {"tune_top_layers": 1},
                               num_layers=2)):
    assert checkpoints.untrained_pooler_warning(checkpoint, method) is None
  # A pooler with a bias no initialiser gives has been trained.
  trained = str(tmp_path / "trained.ckpt")
  with tf.Graph().as_default():
    tf.get_variable("bert/pooler/dense/bias", initializer=np.full(
        [32], 0.01, np.float32))
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      tf.train.Saver().save(session, trained, write_meta_graph=False)
  assert checkpoints.untrained_pooler_warning(
      trained, methods.build("adapters")) is None


@pytest.mark.real
def test_minilms_pooler_is_untrained(minilm_dir):
  from adapter_bert.classifier import checkpoints
  assert checkpoints.untrained_pooler_warning(
      os.path.join(minilm_dir, "bert_model.ckpt"), methods.build("lora"))


@pytest.mark.real
def test_minilm_vocab_is_uncased(minilm_dir, caplog):
  from adapter_bert.classifier import job
  import tokenization
  vocab = tokenization.load_vocab(os.path.join(minilm_dir, "vocab.txt"))
  caplog.set_level("WARNING")
  job.warn_on_case_mismatch(vocab, False, "vocab.txt")
  assert "is uncased" in caplog.text
