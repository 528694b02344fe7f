"""The SavedModel on real weights and real text: all-MiniLM-L6-v2, the real
movie-review sentences and the real GLUE dev files."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import MOVIE_REVIEWS_DIR
from conftest import run_cli
from test_export_savedmodel import assert_same_ids
from test_export_savedmodel import assert_same_rows
from test_export_savedmodel import ops_stock_tf_serving_lacks
from test_export_savedmodel import serve_in_fresh_process
from adapter_bert import glue
from adapter_bert import savedmodel

pytestmark = pytest.mark.real

# (task, the dev file's text columns)
GLUE_TEXTS = [("CoLA", [3]), ("SST-2", [0]), ("MRPC", [3, 4]),
              ("STS-B", [7, 8]), ("QNLI", [1, 2]), ("RTE", [1, 2])]


def read_columns(path, columns, header=True):
  with open(path, encoding="utf-8") as f:
    rows = f.read().split("\n")[1 if header else 0:]
  return [[row.split("\t")[c] for c in columns] for row in rows if row]


def real_sentences(glue_dir):
  texts = [r[0] for r in read_columns(
      os.path.join(MOVIE_REVIEWS_DIR, "train.tsv"), [0])]
  for (task, columns) in GLUE_TEXTS:
    for row in read_columns(os.path.join(glue_dir, task, "dev.tsv"), columns,
                            header=task != "CoLA"):
      texts.extend(row)
  return texts


def test_in_graph_ids_equal_tokenization_py_on_every_real_sentence(
    minilm_dir, glue_dir):
  texts = real_sentences(glue_dir)
  assert len(texts) > 25000
  assert_same_ids(os.path.join(minilm_dir, "vocab.txt"), texts)


@pytest.mark.parametrize("max_seq_length", [32, 128])
def test_in_graph_rows_equal_run_classifier_rows_on_real_pairs(
    minilm_dir, glue_dir, max_seq_length):
  pairs = [tuple(r) for task in ("MRPC", "RTE") for r in read_columns(
      os.path.join(glue_dir, task, "dev.tsv"), [3, 4] if task == "MRPC"
      else [1, 2])]
  singles = [(r[0], None) for r in read_columns(
      os.path.join(glue_dir, "SST-2", "dev.tsv"), [0])]
  assert_same_rows(os.path.join(minilm_dir, "vocab.txt"), pairs + singles,
                   max_seq_length)


# (task, dev columns to copy, test header, dev rows served)
SERVED = {
    "MRPC": ([1, 2, 3, 4], "index\t#1 ID\t#2 ID\t#1 String\t#2 String"),
    "SST-2": ([0], "index\tsentence"),
}
SERVED_ROWS = 120


def write_task_folder(glue_dir, task_name, folder):
  """Real train rows (the first 64) and real dev rows laid out as test.tsv."""
  os.makedirs(folder)
  source = os.path.join(glue_dir, task_name)
  with open(os.path.join(source, "train.tsv"), encoding="utf-8") as f:
    train = f.read().split("\n")[:65]
  with open(os.path.join(folder, "train.tsv"), "w", encoding="utf-8") as f:
    f.write("\n".join(train) + "\n")
  (columns, header) = SERVED[task_name]
  rows = read_columns(os.path.join(source, "dev.tsv"), columns)[:SERVED_ROWS]
  with open(os.path.join(folder, "test.tsv"), "w", encoding="utf-8") as f:
    f.write(header + "\n" + "".join(
        "%d\t%s\n" % (i, "\t".join(r)) for (i, r) in enumerate(rows)))
  return [r[-2:] if task_name == "MRPC" else r for r in rows]


def minilm_flags(minilm_dir):
  return {"vocab_file": os.path.join(minilm_dir, "vocab.txt"),
          "bert_config_file": os.path.join(minilm_dir, "bert_config.json"),
          "init_checkpoint": os.path.join(minilm_dir, "bert_model.ckpt"),
          "precision": "float32"}  # the SavedModel's; exact on any machine


def test_saved_model_predicts_what_run_classifier_predicts_on_real_rows(
    minilm_dir, glue_dir, tmp_path):
  flags = minilm_flags(minilm_dir)
  requests, expected, bundle_dirs = [], [], []
  for task_name in SERVED:
    data_dir = str(tmp_path / task_name / "data")
    texts = write_task_folder(glue_dir, task_name, data_dir)
    train_dir = str(tmp_path / task_name / "train")
    result = run_cli("run_classifier.py", task_name=task_name,
                     data_dir=data_dir, output_dir=train_dir, do_train=True,
                     max_seq_length=64, train_batch_size=16,
                     learning_rate=1e-3, num_train_epochs=1.0, **flags)
    assert result.returncode == 0, result.stderr[-3000:]
    bundle_dir = os.path.join(train_dir, "adapter_bundle")
    predict_dir = str(tmp_path / task_name / "predict")
    result = run_cli("run_classifier.py", task_name=task_name,
                     data_dir=data_dir, output_dir=predict_dir,
                     do_predict=True, adapter_bundle=bundle_dir,
                     predict_batch_size=32, **flags)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(predict_dir, "test_results.tsv")) as f:
      expected.append([[float(p) for p in line.split("\t")]
                       for line in f.read().splitlines()])
    inputs = {"text_a": [t[0] for t in texts]}
    if glue.get_task(task_name).is_pair:
      inputs["text_b"] = [t[1] for t in texts]
    requests.append((glue.get_task(task_name).key, inputs))
    bundle_dirs.append(bundle_dir)
  export_dir = str(tmp_path / "saved_model")
  result = run_cli("scripts/export_savedmodel.py", adapter_bundles=",".join(
      bundle_dirs), export_dir=export_dir, mixed_signature="true", **flags)
  assert result.returncode == 0, result.stderr[-3000:]
  # Every row of every task in one request, alternating tasks.
  mixed = {"task": [], "text_a": [], "text_b": []}
  for row in range(SERVED_ROWS):
    for (key, inputs) in requests:
      mixed["task"].append(key)
      mixed["text_a"].append(inputs["text_a"][row])
      mixed["text_b"].append(inputs.get("text_b", [""] * SERVED_ROWS)[row])
  answers = serve_in_fresh_process(export_dir,
                                   requests + [("mixed", mixed)])
  for (index, (answer, want)) in enumerate(zip(answers, expected)):
    assert len(answer["probabilities"]) == len(want) == SERVED_ROWS
    np.testing.assert_allclose(answer["probabilities"], want, atol=1e-5)
    # The trained heads are not at chance everywhere: a real comparison.
    assert np.ptp(np.array(want)[:, 0]) > 1e-3
    rows = answers[-1]["probabilities"][index::len(requests)]
    np.testing.assert_allclose(np.array(rows)[:, :len(want[0])], want,
                               atol=1e-5)
  # What stock TF Serving links runs every op of it, the mixed signature's
  # included; and saved_model_cli lists that signature.
  assert ops_stock_tf_serving_lacks(savedmodel.op_types(export_dir)) == []
  shown = subprocess.run(
      [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
       "show", "--dir", export_dir, "--tag_set", "serve"],
      capture_output=True, text=True, timeout=300)
  assert 'SignatureDef key: "mixed"' in shown.stdout, shown.stderr[-2000:]
