"""scripts/export_savedmodel.py (adapter_bert.savedmodel): one SavedModel,
one signature per task, raw text in.

The in-graph tokenizer must give tokenization.py's ids, the in-graph layout
run_classifier.py's rows, and the SavedModel, loaded in a fresh process, the
predictions of the Python serving path."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import assert_input_error
from conftest import new_session
from conftest import run_cli
from conftest import train_tiny_in_process
from conftest import write_file
from conftest import write_mrpc_task
from conftest import write_sst2_task
from conftest import write_stsb_task
from adapter_bert import bundles
from adapter_bert import glue
from adapter_bert import multitask
from adapter_bert import savedmodel
from adapter_bert.classifier import features
import modeling
import tokenization

PROGRAM = "export_savedmodel.py"
SCRIPT = os.path.join("scripts", PROGRAM)

# Text that exercises every step of BasicTokenizer: accents, case, CJK,
# punctuation of several scripts, control and format characters, odd
# whitespace, compatibility characters NFKC would rewrite, unknown words and
# a word above the 200-character WordPiece limit.
HARD_TEXTS = [
    "Café déjà vu, naïve résumé!",
    "ÉCOLE Élève ÀÉÎÕÜ",
    "中文字符 and 日本語 mixed",
    "\x00ctrl\x07chars\ufffd and\u200bzero\u200dwidth",
    "tab\there\nnew\rline\u00a0nbsp\u3000ideographic",
    "9 ½ weeks, µ, ß, ﬁ, … and ｆｕｌｌ",
    "don't stop: $100.00 & 50% off!!!",
    "İstanbul straße ΣΊΣΥΦΟΣ",
    "x\u0301y combining",
    "film" * 49 + "s",  # 197 characters: still WordPiece'd
    "film" * 51,  # 204 characters: one [UNK]
    "",
    "   ",
]
HARD_VOCAB_WORDS = ("cafe deja vu naive resume ecole eleve aeiou and mixed "
                    "ctrl chars zero width tab here new line nbsp ideographic "
                    "weeks don ' t stop $ 100 . 00 & 50 % off ! : , istanbul "
                    "film ##s ##y combining x y 9 ½ µ ß ﬁ … 中 文 字 符 日 本 語 "
                    "Café École ÉCOLE Élève").split()


def write_vocab(path, words):
  specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  return write_file(path, specials + list(dict.fromkeys(words)))


def in_graph_ids(vocab_file, texts, do_lower_case=True):
  with tf.Graph().as_default():
    tokenizer = savedmodel.InGraphTokenizer(vocab_file, do_lower_case)
    ids = tokenizer.tokenize(tf.constant(texts, tf.string))
    with new_session() as session:
      return session.run(ids).to_list()


def python_ids(vocab_file, texts, do_lower_case=True):
  tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)
  return [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(t))
          for t in texts]


def assert_same_ids(vocab_file, texts, do_lower_case=True):
  """One shared check: the in-graph ids equal tokenization.py's, per text."""
  graph = in_graph_ids(vocab_file, texts, do_lower_case)
  python = python_ids(vocab_file, texts, do_lower_case)
  differ = [(t, p, g) for (t, p, g) in zip(texts, python, graph) if p != g]
  assert not differ, "%d of %d texts differ, first: %r" % (
      len(differ), len(texts), differ[0])


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_in_graph_ids_equal_tokenization_py_on_hard_text(tmp_path,
                                                         do_lower_case):
  vocab_file = write_vocab(str(tmp_path / "vocab.txt"), HARD_VOCAB_WORDS)
  assert_same_ids(vocab_file, HARD_TEXTS, do_lower_case)
  # The texts do reach the vocabulary: not everything is [UNK].
  unknown = tokenization.load_vocab(vocab_file)["[UNK]"]
  ids = in_graph_ids(vocab_file, HARD_TEXTS, do_lower_case)
  assert sum(i != unknown for row in ids for i in row) > 40


def test_pair_cut_equals_truncate_seq_pair_everywhere():
  """kept_lengths' closed form against the loop, on every small case."""
  cases = [(a, b, m) for a in range(0, 23) for b in range(0, 23)
           for m in range(3, 30)]
  with tf.Graph().as_default():
    (len_a, len_b) = (tf.constant([c[0] for c in cases]),
                      tf.constant([c[1] for c in cases]))
    results = []
    for m in range(3, 30):
      rows = [i for (i, c) in enumerate(cases) if c[2] == m]
      results.append((rows, savedmodel.kept_lengths(
          tf.gather(len_a, rows), tf.gather(len_b, rows), m)))
    with new_session() as session:
      fetched = session.run([r[1] for r in results])
  for ((rows, _), (kept_a, kept_b)) in zip(results, fetched):
    for (row, a_kept, b_kept) in zip(rows, kept_a, kept_b):
      (a, b, m) = cases[row]
      tokens_a, tokens_b = list(range(a)), list(range(b))
      if b:
        features._truncate_seq_pair(tokens_a, tokens_b, m - 3)
      else:
        tokens_a = tokens_a[:m - 2]
      assert (a_kept, b_kept) == (len(tokens_a), len(tokens_b)), (a, b, m)


def in_graph_rows(vocab_file, pairs, max_seq_length, do_lower_case=True):
  """classifier_inputs over (text_a, text_b or None) pairs, as lists."""
  with tf.Graph().as_default():
    tokenizer = savedmodel.InGraphTokenizer(vocab_file, do_lower_case)
    tokens_a = tokenizer.tokenize(tf.constant([a for (a, _) in pairs]))
    tokens_b = None
    if any(b is not None for (_, b) in pairs):
      tokens_b = tokenizer.tokenize(tf.constant([b or "" for (_, b) in pairs]))
    inputs = savedmodel.classifier_inputs(
        tokens_a, tokens_b, max_seq_length, tokenizer.cls_id, tokenizer.sep_id)
    with new_session() as session:
      return session.run(inputs)


def assert_same_rows(vocab_file, pairs, max_seq_length, do_lower_case=True):
  """One shared check: in-graph rows equal convert_single_example's."""
  (ids, mask, segments) = in_graph_rows(vocab_file, pairs, max_seq_length,
                                        do_lower_case)
  tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case)
  width = ids.shape[1]
  assert width <= max_seq_length
  for (row, (a, b)) in enumerate(pairs):
    feature = features.convert_single_example(
        row, glue.InputExample(str(row), a, b, None), [None], max_seq_length,
        tokenizer)
    expected = (feature.input_ids, feature.input_mask, feature.segment_ids)
    for (got, want, name) in zip((ids, mask, segments), expected,
                                 ("ids", "mask", "segments")):
      assert list(got[row]) == want[:width], (name, a, b)
      assert not any(want[width:]), (name, a, b)  # only padding was cut


@pytest.mark.parametrize("max_seq_length", [5, 9, 16, 64])
def test_in_graph_rows_equal_run_classifier_rows(tmp_path, max_seq_length):
  vocab_file = write_vocab(str(tmp_path / "vocab.txt"), HARD_VOCAB_WORDS)
  pairs = [(a, b) for a in HARD_TEXTS[:6] for b in HARD_TEXTS[5:]]
  pairs += [(a, None) for a in HARD_TEXTS]
  assert_same_rows(vocab_file, pairs, max_seq_length)


# ---------------------------------------------------------------- export


@pytest.fixture(scope="module")
def tiny_bundles(tmp_path_factory, tiny_bert):
  """Tiny SST-2, MRPC and STS-B bundles, trained once."""
  root = tmp_path_factory.mktemp("export")
  return {task_name: train_tiny_in_process(
      tiny_bert, write_task(str(root / task_name / "data")),
      str(root / task_name / "out"), task_name=task_name, do_eval=False,
      max_seq_length=24, num_train_epochs=2.0)
          for (task_name, write_task) in (("SST-2", write_sst2_task),
                                          ("MRPC", write_mrpc_task),
                                          ("STS-B", write_stsb_task))}


def export_cli(tiny_bert, bundle_dirs, export_dir, **flags):
  return run_cli(SCRIPT, bert_config_file=tiny_bert["bert_config_file"],
                 vocab_file=tiny_bert["vocab_file"],
                 init_checkpoint=tiny_bert["init_checkpoint"],
                 adapter_bundles=",".join(bundle_dirs), export_dir=export_dir,
                 **flags)


def export_in_process(tiny_bert, bundle_dirs, export_dir, **options):
  """What export_savedmodel.py runs, in this process."""
  return savedmodel.export(multitask.Backbone(
      tiny_bert["bert_config_file"], tiny_bert["vocab_file"],
      tiny_bert["init_checkpoint"]), bundle_dirs,
                           export_dir, **options)


def serve_in_fresh_process(export_dir, requests):
  """Loads the SavedModel in a new Python process and runs `requests`.

  Args:
    requests: [(signature, {input name: [strings]})].

  Returns:
    [{output name: list}], one per request.
  """
  code = """
import json, sys
import tensorflow as tf
import tensorflow_text  # registers the tokenizer's ops
model = tf.saved_model.load(sys.argv[1])
answers = []
for (signature, inputs) in json.loads(sys.stdin.read()):
  outputs = model.signatures[signature](
      **{k: tf.constant(v, tf.string) for (k, v) in inputs.items()})
  answers.append({k: [x.decode() if isinstance(x, bytes) else x
                      for x in v.numpy().tolist()]
                  for (k, v) in outputs.items()})
print("ANSWERS " + json.dumps(answers))
"""
  result = subprocess.run([sys.executable, "-c", code, export_dir],
                          input=json.dumps(requests), capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith("ANSWERS ")]
  return json.loads(line[0][len("ANSWERS "):])


def python_predictions(tiny_bert, bundle_dir, examples):
  config = modeling.BertConfig.from_json_file(tiny_bert["bert_config_file"])
  predictor = multitask.MultiTaskPredictor(
      config, tiny_bert["init_checkpoint"], tiny_bert["vocab_file"],
      batch_size=4)
  name = predictor.add_task(bundle_dir)
  return predictor.predict(name, examples)


def dev_examples(tiny_bundles, task_name):
  task = glue.get_task(task_name)
  return task.read_examples(tiny_bundles[task_name]["data_dir"], task.dev[0])


def text_request(task_name, examples):
  inputs = {"text_a": [e.text_a for e in examples]}
  if glue.get_task(task_name).is_pair:
    inputs["text_b"] = [e.text_b for e in examples]
  return inputs


@pytest.fixture(scope="module")
def exported(tiny_bundles, tiny_bert, tmp_path_factory):
  export_dir = str(tmp_path_factory.mktemp("saved") / "model")
  result = export_cli(tiny_bert, [tiny_bundles[t]["bundle"] for t in
                                  ("SST-2", "MRPC", "STS-B")], export_dir,
                      default_task="mrpc")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "signatures:" in result.stdout
  return export_dir


@pytest.mark.slow
def test_saved_model_serves_what_the_python_path_serves(exported, tiny_bundles,
                                                        tiny_bert):
  requests = [(glue.get_task(t).key, text_request(t, dev_examples(tiny_bundles, t)))
              for t in ("SST-2", "MRPC", "STS-B")]
  requests.append(("serving_default", requests[1][1]))
  # A request of zero rows gets zero rows back, from every signature.
  requests += [(key, {name: [] for name in inputs})
               for (key, inputs) in requests]
  answers = serve_in_fresh_process(exported, requests)
  for answer in answers[4:]:
    assert answer and all(values == [] for values in answer.values()), answer
  for (task_name, answer) in zip(("SST-2", "MRPC", "STS-B"), answers):
    task = glue.get_task(task_name)
    examples = dev_examples(tiny_bundles, task_name)
    expected = python_predictions(tiny_bert, tiny_bundles[task_name]["bundle"],
                                  examples)
    if task.num_labels == 1:
      np.testing.assert_allclose(answer["scores"],
                                 [e["predictions"] for e in expected],
                                 atol=1e-5)
      continue
    np.testing.assert_allclose(answer["probabilities"],
                               [e["probabilities"] for e in expected],
                               atol=1e-5)
    labels = task.get_labels()
    assert answer["labels"] == [labels[e["predictions"]] for e in expected]
  # --default_task=mrpc: serving_default is MRPC's signature.
  assert answers[3] == answers[1]


@pytest.mark.slow
def test_saved_model_cli_lists_every_signature(exported):
  result = subprocess.run(
      [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
       "show", "--dir", exported, "--tag_set", "serve"],
      capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  for key in ("sst2", "mrpc", "stsb", "serving_default"):
    assert 'SignatureDef key: "%s"' % key in result.stdout


def variables_bytes(export_dir):
  folder = os.path.join(export_dir, "variables")
  return sum(os.path.getsize(os.path.join(folder, n))
             for n in os.listdir(folder) if ".data-" in n)


@pytest.mark.slow
def test_backbone_is_stored_once_whatever_the_task_count(exported, tiny_bundles,
                                                         tiny_bert, tmp_path):
  one = str(tmp_path / "one")
  result = export_cli(tiny_bert, [tiny_bundles["SST-2"]["bundle"]], one)
  assert result.returncode == 0, result.stderr[-3000:]
  added = variables_bytes(exported) - variables_bytes(one)
  # Three tasks add exactly the two extra bundles' float32 values.
  extra = sum(np.prod(v.shape) for t in ("MRPC", "STS-B")
              for v in bundles.read_bundle(tiny_bundles[t]["bundle"]).values.values())
  assert added == 4 * extra
  reader = tf.train.load_checkpoint(tiny_bert["init_checkpoint"])
  backbone = sum(np.prod(s) for s in
                 reader.get_variable_to_shape_map().values())
  assert variables_bytes(one) < 4 * backbone + 4 * extra  # not twice


@pytest.mark.slow
def test_export_replaces_the_folder_and_refuses_bad_input(tiny_bundles, tiny_bert,
                                                          tmp_path):
  # A folder of other files is never replaced (tests/test_output_rules.py).
  foreign = str(tmp_path / "mine")
  write_file(os.path.join(foreign, "stale.txt"), ["old"])
  assert_input_error(
      lambda: export_in_process(tiny_bert, [tiny_bundles["SST-2"]["bundle"]],
                                foreign), "stale.txt", "it is not replaced")
  assert os.listdir(foreign) == ["stale.txt"]
  # A previous export is replaced whole.
  export_dir = str(tmp_path / "model")
  export_in_process(tiny_bert, [tiny_bundles["SST-2"]["bundle"]], export_dir)
  export_in_process(tiny_bert, [tiny_bundles["MRPC"]["bundle"]], export_dir)
  assert sorted(os.listdir(export_dir)) == ["saved_model.pb", "variables"]
  # A bundle folder that is none: one line, and the old export untouched.
  before = variables_bytes(export_dir)
  assert_input_error(
      lambda: export_in_process(tiny_bert, [tiny_bundles["SST-2"]["bundle"],
                                            str(tmp_path)], export_dir),
      str(tmp_path))
  assert variables_bytes(export_dir) == before
  assert not [n for n in os.listdir(str(tmp_path)) if ".tmp-" in n]
  assert_input_error(
      lambda: export_in_process(tiny_bert, [tiny_bundles["SST-2"]["bundle"]],
                                export_dir, default_task="cola"),
      "--default_task=cola")


@pytest.mark.slow
def test_export_to_another_file_system(tiny_bundles, tiny_bert, tmp_path):
  """ram:// stands in for gs:// (no folder rename there): the export lands
  whole and serves what the local export serves."""
  import uuid
  examples = dev_examples(tiny_bundles, "MRPC")
  inputs = {k: tf.constant(v) for (k, v) in
            text_request("MRPC", examples).items()}
  answers = []
  for export_dir in (str(tmp_path / "local"),
                     "ram://export_%s/model" % uuid.uuid4().hex[:8]):
    savedmodel.export(multitask.Backbone(
      tiny_bert["bert_config_file"], tiny_bert["vocab_file"],
      tiny_bert["init_checkpoint"]), [tiny_bundles["MRPC"]["bundle"]],
        export_dir)
    assert tf.io.gfile.exists(os.path.join(export_dir, "saved_model.pb"))
    assert not [n for n in tf.io.gfile.listdir(os.path.dirname(export_dir))
                if ".tmp-" in n]
    model = tf.compat.v2.saved_model.load(export_dir)
    answers.append(model.signatures["mrpc"](**inputs)["probabilities"]
                   .numpy())
  np.testing.assert_array_equal(answers[0], answers[1])


@pytest.mark.slow
def test_bfloat16_export_computes_in_bfloat16_with_the_same_weights(
    tiny_bundles, tiny_bert, tmp_path):
  examples = dev_examples(tiny_bundles, "MRPC")
  inputs = {k: tf.constant(v) for (k, v) in
            text_request("MRPC", examples).items()}
  probabilities = {}
  for precision in ("float32", "mixed_bfloat16"):
    export_dir = str(tmp_path / precision)
    savedmodel.export(multitask.Backbone(
      tiny_bert["bert_config_file"], tiny_bert["vocab_file"],
      tiny_bert["init_checkpoint"]), [tiny_bundles["MRPC"]["bundle"]],
        export_dir, precision=precision)
    model = tf.compat.v2.saved_model.load(export_dir)
    probabilities[precision] = model.signatures["mrpc"](
        **inputs)["probabilities"].numpy()
    graph = model.signatures["mrpc"].graph
    matmuls = {op.outputs[0].dtype for op in graph.get_operations()
               if op.type in ("MatMul", "BatchMatMulV2") and
               "encoder" in op.name}
    assert matmuls == {tf.float32 if precision == "float32" else
                       tf.bfloat16}
    assert variables_bytes(export_dir) == variables_bytes(
        str(tmp_path / "float32"))  # float32 weights either way
  np.testing.assert_allclose(probabilities["mixed_bfloat16"],
                             probabilities["float32"], atol=2e-2)


# ---------------------------------------------------------------- TF Serving

TF_TEXT_OPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                           "tf_serving", "tf_text_ops.tsv")


def tf_text_ops():
  """{op: whether tensorflow-text 2.12.1 has it}, for every op the installed
  tensorflow-text registers (tests/data/tf_serving/make_tf_text_ops.py)."""
  with open(TF_TEXT_OPS) as f:
    rows = [line.rstrip("\n").split("\t") for line in f
            if not line.startswith("#")]
  return {op: flag == "yes" for (op, flag) in rows}


def registered_ops():
  from tensorflow.core.framework import op_def_pb2
  from tensorflow.python.client import pywrap_tf_session
  ops = op_def_pb2.OpList()
  ops.ParseFromString(pywrap_tf_session.TF_GetBuffer(
      pywrap_tf_session.TF_GetAllOpList()))
  return {op.name for op in ops.op}


def ops_stock_tf_serving_lacks(ops):
  """The ops of `ops` outside core TensorFlow and tensorflow-text 2.12.1,
  the op library stock tensorflow_model_server 2.14-2.19 links."""
  text = tf_text_ops()
  core = registered_ops() - set(text)
  return sorted(op for op in ops if op not in core and not text.get(op))


def test_the_tf_text_table_is_this_tf_texts_and_knows_the_trimmers():
  import tensorflow_text
  text = tf_text_ops()
  with open(TF_TEXT_OPS) as f:
    assert "(installed: %s)" % tensorflow_text.__version__ in f.readline()
  assert set(text) <= registered_ops()
  # tensorflow/serving#2267: the trimmers came after 2.12.1.
  assert not text["TFText>RoundRobinTrim"]
  assert text["FastWordpieceTokenizeWithOffsets"]
  assert ops_stock_tf_serving_lacks({"MatMul", "TFText>RoundRobinTrim",
                                     "NoSuchOp"}) == ["NoSuchOp",
                                                      "TFText>RoundRobinTrim"]


@pytest.mark.slow
def test_every_op_of_the_export_is_in_stock_tf_serving(exported):
  ops = savedmodel.op_types(exported)
  assert "FastWordpieceTokenizeWithOffsets" in ops  # the list is the graph's
  assert ops_stock_tf_serving_lacks(ops) == []


def id_rows(vocab_file, bundle_dir, examples):
  """tokenization.py's rows, as a client without TF Text makes them
  (docs/serving.md): [CLS] a [SEP] (b [SEP]), padded to max_seq_length."""
  bundle = bundles.read_bundle(bundle_dir)
  settings = bundle.settings()
  tokenizer = tokenization.FullTokenizer(vocab_file,
                                         settings["do_lower_case"])
  rows = [features.convert_single_example(i, e, bundle.task().get_labels(),
                                          settings["max_seq_length"],
                                          tokenizer)
          for (i, e) in enumerate(examples)]
  return {"input_ids": [r.input_ids for r in rows],
          "input_mask": [r.input_mask for r in rows],
          "segment_ids": [r.segment_ids for r in rows]}


SERVE_IDS_CODE = """
import json, sys
import tensorflow as tf
if sys.argv[2] == "with_tf_text":
  import tensorflow_text
model = tf.saved_model.load(sys.argv[1])
answers = []
for (signature, inputs) in json.loads(sys.stdin.read()):
  outputs = model.signatures[signature](
      **{k: tf.constant(v, tf.int32) for (k, v) in inputs.items()})
  answers.append({k: [x.decode() if isinstance(x, bytes) else x
                      for x in v.numpy().tolist()]
                  for (k, v) in outputs.items()})
print("ANSWERS " + json.dumps(answers))
"""


def serve_ids_in_fresh_process(export_dir, requests, with_tf_text=False):
  """As serve_in_fresh_process, int32 inputs; without tensorflow_text
  imported unless `with_tf_text` (a server built without TF Text)."""
  result = subprocess.run(
      [sys.executable, "-c", SERVE_IDS_CODE, export_dir,
       "with_tf_text" if with_tf_text else "without"],
      input=json.dumps(requests), capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  line = [l for l in result.stdout.splitlines() if l.startswith("ANSWERS ")]
  return json.loads(line[0][len("ANSWERS "):])


def assert_same_answers(answers, expected, atol=1e-6):
  for (answer, wanted) in zip(answers, expected):
    assert sorted(answer) == sorted(wanted)
    for key in ("probabilities", "scores"):
      if key in wanted:
        np.testing.assert_allclose(answer[key], wanted[key], atol=atol)
    assert answer.get("labels") == wanted.get("labels")


@pytest.mark.slow
def test_token_id_signatures_serve_without_tf_text(exported, tiny_bundles,
                                                   tiny_bert, tmp_path):
  tasks = ("SST-2", "MRPC", "STS-B")
  export_dir = str(tmp_path / "ids")
  names = export_in_process(tiny_bert, [tiny_bundles[t]["bundle"]
                                        for t in tasks],
                            export_dir, signature_inputs="token_ids")
  assert sorted(names) == ["mrpc_ids", "serving_default", "sst2_ids",
                           "stsb_ids"]
  ops = savedmodel.op_types(export_dir)
  assert not ops & set(tf_text_ops()), sorted(ops & set(tf_text_ops()))
  requests = [(glue.get_task(t).key + "_ids",
               id_rows(tiny_bert["vocab_file"], tiny_bundles[t]["bundle"],
                       dev_examples(tiny_bundles, t))) for t in tasks]
  by_text = serve_in_fresh_process(exported, [
      (glue.get_task(t).key, text_request(t, dev_examples(tiny_bundles, t)))
      for t in tasks])
  assert_same_answers(serve_ids_in_fresh_process(export_dir, requests),
                      by_text)

  # Both ways into one model: the same answers from each.
  both = str(tmp_path / "both")
  names = export_in_process(tiny_bert, [tiny_bundles["MRPC"]["bundle"]], both,
                            signature_inputs="both")
  assert sorted(names) == ["mrpc", "mrpc_ids", "serving_default"]
  assert_same_answers(serve_ids_in_fresh_process(both, requests[1:2],
                                                 with_tf_text=True),
                      by_text[1:2])
  assert_same_answers(serve_in_fresh_process(both, [
      ("mrpc", text_request("MRPC", dev_examples(tiny_bundles, "MRPC")))]),
                      by_text[1:2])
