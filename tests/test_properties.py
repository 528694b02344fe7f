"""Property-based tests (hypothesis) of everything that reads user files: the
TSV readers, the tokenizer and vocabulary reader, the adapter bundle reader.
Arbitrary bytes and Unicode never raise anything but the project's own
one-line error."""

import json
import os
import shutil
import tempfile

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from conftest import TINY_VOCAB
from adapter_bert import bundles
from adapter_bert import errors
from adapter_bert import glue
from adapter_bert import methods
from adapter_bert.classifier import features
import tokenization

# Files are written for each example: no per-call deadline, a bounded count.
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])

TASKS = sorted(glue.TASKS.values(), key=lambda task: task.name)
# Text with the characters that trouble readers: tabs, newlines, carriage
# returns, BOMs, NUL, accents, CJK, emoji, surrogate-free everything else.
AWKWARD_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from("\t\n\r\ufeff\x00 é中😀#\"'"),
                       st.characters(blacklist_categories=("Cs",))),
    max_size=40)


def assert_one_line(error):
  message = str(error)
  assert message and "\n" not in message, repr(message)


@pytest.fixture(scope="module")
def scratch():
  folder = tempfile.mkdtemp(prefix="properties-")
  yield folder
  shutil.rmtree(folder, ignore_errors=True)


def every_split(task):
  return (task.train,) + tuple(task.dev) + tuple(task.test)


def write_split_file(task, data_dir, split, data):
  path = task.path(data_dir, split)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "wb") as f:
    f.write(data)


def read_or_one_line_error(task, data_dir, split):
  """A split's examples, or None after the project's one-line InputError
  (the one failure allowed); every example read has text."""
  try:
    examples = task.read_examples(data_dir, split)
  except errors.InputError as e:
    assert_one_line(e)
    return None
  for example in examples:
    assert isinstance(example.text_a, str)
  return examples


@PROPERTY_SETTINGS
@given(task=st.sampled_from(TASKS), data=st.binary(max_size=400))
def test_tsv_readers_take_any_bytes(scratch, task, data):
  data_dir = os.path.join(tempfile.mkdtemp(dir=scratch), "task")
  for split in every_split(task):
    write_split_file(task, data_dir, split, data)
  for split in every_split(task):
    read_or_one_line_error(task, data_dir, split)


@st.composite
def tsv_with_a_real_header(draw, task):
  """A file that passes the header check, then rows of awkward cells."""
  split = draw(st.sampled_from(every_split(task)))
  width = max([abs(c) + 1 for (c, _) in split.header or ()] + [1])
  header = ["h%d" % i for i in range(width)]
  for (column, name) in split.header or ():
    header[column] = name
  rows = draw(st.lists(st.lists(AWKWARD_TEXT, min_size=0, max_size=width + 2),
                       max_size=6))
  lines = ([header] if split.has_header else []) + rows
  return split, "\n".join("\t".join(row) for row in lines).encode("utf-8")


@PROPERTY_SETTINGS
@given(data=st.data())
def test_tsv_readers_take_any_rows_under_a_valid_header(scratch, data):
  task = data.draw(st.sampled_from(TASKS))
  (split, content) = data.draw(tsv_with_a_real_header(task))
  data_dir = os.path.join(tempfile.mkdtemp(dir=scratch), "task")
  write_split_file(task, data_dir, split, content)
  for example in read_or_one_line_error(task, data_dir, split) or []:
    assert example.label in task.get_labels() or task.is_regression


@pytest.fixture(scope="module")
def tiny_tokenizer(scratch):
  vocab_file = os.path.join(scratch, "vocab.txt")
  with open(vocab_file, "w", encoding="utf-8") as f:
    f.write("\n".join(TINY_VOCAB + ["##s", "##ing", "é", "中"]) + "\n")
  return tokenization.FullTokenizer(vocab_file, do_lower_case=True)


@PROPERTY_SETTINGS
@given(text=AWKWARD_TEXT)
def test_tokenizer_takes_any_text(tiny_tokenizer, text):
  tokens = tiny_tokenizer.tokenize(text)
  for token in tokens:
    assert token in tiny_tokenizer.vocab
    assert token and not any(c.isspace() for c in token), repr(token)
  assert len(tiny_tokenizer.convert_tokens_to_ids(tokens)) == len(tokens)


@PROPERTY_SETTINGS
@given(text_a=AWKWARD_TEXT, text_b=st.one_of(st.none(), AWKWARD_TEXT),
       max_seq_length=st.integers(min_value=5, max_value=24))
def test_features_of_any_text_keep_their_layout(tiny_tokenizer, text_a, text_b,
                                                max_seq_length):
  example = glue.InputExample("x", text_a, text_b, label="1")
  feature = features.convert_single_example(
      5, example, ["0", "1"], max_seq_length, tiny_tokenizer)
  vocab = tiny_tokenizer.vocab
  length = sum(feature.input_mask)
  assert len(feature.input_ids) == max_seq_length
  assert 2 <= length <= max_seq_length
  assert feature.input_ids[0] == vocab["[CLS]"]
  assert feature.input_ids[length - 1] == vocab["[SEP]"]
  assert feature.input_ids[length:] == [0] * (max_seq_length - length)


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=300))
def test_vocab_reader_takes_any_bytes(scratch, data):
  vocab_file = os.path.join(tempfile.mkdtemp(dir=scratch), "vocab.txt")
  with open(vocab_file, "wb") as f:
    f.write(data)
  try:
    tokenizer = tokenization.FullTokenizer(vocab_file)
    tokenizer.check_special_tokens()
  except ValueError as e:
    assert_one_line(e)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | AWKWARD_TEXT,
    lambda children: st.lists(children, max_size=3) |
    st.dictionaries(AWKWARD_TEXT, children, max_size=3),
    max_leaves=8)


def _write_bundle(scratch, name, method_record, version):
  """A real (tiny, random) adapters bundle whose json records the method as
  `method_record`."""
  import numpy as np
  values = {"bert/encoder/layer_0/output/adapters/weights1":
                np.zeros([32, 4], np.float32),
            "output_bias": np.zeros([2], np.float32)}
  folder = os.path.join(scratch, name)
  os.makedirs(folder)
  bundles.write_checkpoint(values, os.path.join(folder,
                                                bundles.VARIABLES_PREFIX))
  metadata = dict(method_record)
  metadata.update({
      "format": bundles.BUNDLE_FORMAT, "version": version,
      "task_name": "SST-2", "language": None, "labels": ["0", "1"],
      "max_seq_length": 16, "do_lower_case": True, "bert_config": {},
      "global_step": 3, "backbone_fingerprint": "0" * 64,
      "backbone_variables": [], "num_parameters": 130,
      "variables": {name: list(v.shape) for (name, v) in values.items()}})
  with open(os.path.join(folder, bundles.BUNDLE_JSON), "w") as f:
    json.dump(metadata, f)
  bundles.read_bundle(folder)  # valid as written
  return folder


@pytest.fixture(scope="module")
def bundle_dir(scratch):
  """A real (tiny, random) adapters bundle, as this version writes it."""
  method = methods.build("adapters", {"adapter_size": 4})
  return _write_bundle(scratch, "bundle", method.to_dict(),
                       bundles.BUNDLE_VERSION)


@pytest.fixture(scope="module")
def bundle_dir_v3(scratch):
  """The same bundle as version 3 wrote it (the adapters under "adapter")."""
  return _write_bundle(
      scratch, "bundle_v3",
      {"tuning_mode": "adapters",
       "adapter": {"size": 4, "activation": "gelu", "init_scale": 1e-3,
                   "placement": "both"},
       "options": {"train_layernorm": True, "train_pooler": False}}, 3)


def read_bundle_or_one_line_error(folder):
  try:
    bundles.read_bundle(folder)
  except ValueError as e:
    assert_one_line(e)


@PROPERTY_SETTINGS
@given(data=st.binary(max_size=300))
def test_bundle_reader_takes_any_bytes(scratch, bundle_dir, data):
  folder = tempfile.mkdtemp(dir=scratch)
  copy = os.path.join(folder, "bundle")
  shutil.copytree(bundle_dir, copy)
  with open(os.path.join(copy, bundles.BUNDLE_JSON), "wb") as f:
    f.write(data)
  read_bundle_or_one_line_error(copy)


@PROPERTY_SETTINGS
@given(data=st.data())
def test_bundle_reader_takes_any_value_in_any_field(scratch, bundle_dir,
                                                     bundle_dir_v3, data):
  bundle_dir = data.draw(st.sampled_from([bundle_dir, bundle_dir_v3]))
  with open(os.path.join(bundle_dir, bundles.BUNDLE_JSON)) as f:
    metadata = json.load(f)
  nested = ["options.%s" % name for name in sorted(metadata["options"])]
  if "adapter" in metadata:
    nested += ["adapter.%s" % name for name in sorted(metadata["adapter"])]
  key = data.draw(st.sampled_from(sorted(metadata) + nested))
  value = data.draw(JSON_VALUES)
  if "." in key:
    (outer, inner) = key.split(".")
    metadata[outer][inner] = value
  else:
    metadata[key] = value
  folder = tempfile.mkdtemp(dir=scratch)
  copy = os.path.join(folder, "bundle")
  shutil.copytree(bundle_dir, copy)
  with open(os.path.join(copy, bundles.BUNDLE_JSON), "w") as f:
    json.dump(metadata, f)
  read_bundle_or_one_line_error(copy)


@PROPERTY_SETTINGS
@given(cut=st.integers(min_value=0, max_value=400))
def test_bundle_reader_takes_a_variables_file_cut_anywhere(scratch, bundle_dir,
                                                           cut):
  folder = tempfile.mkdtemp(dir=scratch)
  copy = os.path.join(folder, "bundle")
  shutil.copytree(bundle_dir, copy)
  for name in os.listdir(copy):
    if name.startswith(bundles.VARIABLES_PREFIX + "."):
      path = os.path.join(copy, name)
      with open(path, "r+b") as f:
        f.truncate(min(cut, os.path.getsize(path)))
  read_bundle_or_one_line_error(copy)
