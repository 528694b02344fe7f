"""mixed_bfloat16 against float32 on real weights and real data: all-MiniLM-L6-v2
with adapters on the first 4,000 rows of real SST-2 train, scored on the whole
real dev set (872 rows). Same seed, so the same start, batches and dropout:
only the arithmetic differs."""

import os

import pytest

from conftest import read_eval_results
from conftest import run_cli

pytestmark = pytest.mark.real

TRAIN_ROWS = 4000


def sst2_subset(glue_dir, data_dir):
  """Real SST-2: the first TRAIN_ROWS training rows and the whole dev set."""
  os.makedirs(data_dir)
  with open(os.path.join(glue_dir, "SST-2", "train.tsv"), encoding="utf-8") as f:
    lines = f.readlines()[:TRAIN_ROWS + 1]  # with the header
  with open(os.path.join(data_dir, "train.tsv"), "w", encoding="utf-8") as f:
    f.writelines(lines)
  os.symlink(os.path.join(glue_dir, "SST-2", "dev.tsv"),
             os.path.join(data_dir, "dev.tsv"))
  return data_dir


def train_and_evaluate(minilm_dir, data_dir, output_dir, precision):
  result = run_cli(
      "run_classifier.py", task_name="SST-2", data_dir=data_dir,
      output_dir=output_dir,
      vocab_file=os.path.join(minilm_dir, "vocab.txt"),
      bert_config_file=os.path.join(minilm_dir, "bert_config.json"),
      init_checkpoint=os.path.join(minilm_dir, "bert_model.ckpt"),
      do_train=True, do_eval=True, max_seq_length=64, train_batch_size=32,
      eval_batch_size=64, learning_rate=1e-3, num_train_epochs=1.0,
      adapter_size=64, seed=1, precision=precision)
  assert result.returncode == 0, result.stderr[-3000:]
  return read_eval_results(output_dir)


def test_bfloat16_learns_within_five_points_of_float32(minilm_dir, glue_dir,
                                                      tmp_path):
  """A guard against a broken bfloat16 path, not a claim of parity.

  Measured at these settings (seeds 1, 2, 3): float32 0.8234, 0.5688 (a
  collapsed run), 0.8108; bfloat16 0.7856, 0.7913, 0.7729. With the same
  seed bfloat16 has so far come out 1 to 4 points below float32 here and on
  MRPC (README, "Mixed precision"); why is an open question.
  """
  data_dir = sst2_subset(glue_dir, str(tmp_path / "data"))
  accuracy = {
      precision: train_and_evaluate(minilm_dir, data_dir,
                                    str(tmp_path / precision),
                                    precision)["eval_accuracy"]
      for precision in ("float32", "mixed_bfloat16")}
  # Both learned the task (the majority class is 50.9% of dev)...
  assert min(accuracy.values()) > 0.75, accuracy
  # ...and bfloat16 is not far behind (or ahead).
  assert abs(accuracy["mixed_bfloat16"] - accuracy["float32"]) <= 0.05, (
      accuracy)
