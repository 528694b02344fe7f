"""Shared test helpers: the tiny model, one command-line runner, one session
helper, small tasks in GLUE's formats, and where the real assets live."""

import collections
import json
import logging
import os
import random
import re
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Under test processes (pytest-xdist), each TensorFlow (this one, and the
# command lines the tests start) takes its share of the cores for its ops:
# two processes of two threads each on two cores only switch between them.
# TensorFlow reads this before it starts its thread pools.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
  os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(max(
      1, len(os.sched_getaffinity(0)) //
      int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))
if REPO_ROOT not in sys.path:
  sys.path.insert(0, REPO_ROOT)

# `make assets` fills this folder; ADAPTER_BERT_ASSETS points elsewhere if wanted.
ASSETS_DIR = os.environ.get("ADAPTER_BERT_ASSETS",
                            os.path.join(REPO_ROOT, ".cache", "assets"))
MINILM_HF_DIR = os.path.join(ASSETS_DIR, "all-MiniLM-L6-v2-hf")
MINILM_DIR = os.path.join(ASSETS_DIR, "all-MiniLM-L6-v2")
MOVIE_REVIEWS_DIR = os.path.join(ASSETS_DIR, "movie_reviews")
GLUE_DIR = os.environ.get("GLUE_DIR",
                          os.path.join(os.path.dirname(REPO_ROOT), "shared", "glue"))


def _require(path, how):
  if not os.path.exists(path):
    pytest.skip("%s not found; %s" % (path, how))
  return path


@pytest.fixture
def minilm_hf_dir():
  """The Hugging Face all-MiniLM-L6-v2 folder (config.json, model.safetensors, vocab.txt)."""
  return _require(os.path.join(MINILM_HF_DIR, "model.safetensors"),
                  "run `make assets`") and MINILM_HF_DIR


@pytest.fixture
def minilm_dir():
  """all-MiniLM-L6-v2 converted to Google's layout (bert_config.json, bert_model.ckpt)."""
  return _require(os.path.join(MINILM_DIR, "bert_config.json"),
                  "run `make assets`") and MINILM_DIR


@pytest.fixture
def glue_dir():
  """The real GLUE files (glue_data layout)."""
  return _require(os.path.join(GLUE_DIR, "MANIFEST.md"),
                  "set GLUE_DIR to a glue_data folder") and GLUE_DIR


# A vocabulary big enough for the tiny tasks the tests write.
TINY_WORDS = ("the a movie film was is it this i and , . ! not very good great "
              "fun lovely moving bad awful boring dull hated liked loved "
              "plot acting story").split()
TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(TINY_WORDS)


def tiny_bert_config_dict(**overrides):
  """The tiny test model: 2 layers, hidden 32."""
  config = {
      "vocab_size": len(TINY_VOCAB),
      "hidden_size": 32,
      "num_hidden_layers": 2,
      "num_attention_heads": 4,
      "intermediate_size": 37,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "attention_probs_dropout_prob": 0.1,
      "max_position_embeddings": 128,
      "type_vocab_size": 2,
      "initializer_range": 0.02,
  }
  config.update(overrides)
  return config


def write_tiny_bert(output_dir, seed=0, **config_overrides):
  """Writes a random tiny BERT in Google's layout; returns the paths.

  Returns:
    dict with bert_config_file, vocab_file, init_checkpoint.
  """
  import tensorflow.compat.v1 as tf

  import modeling

  os.makedirs(output_dir, exist_ok=True)
  config_dict = tiny_bert_config_dict(**config_overrides)
  paths = {
      "bert_config_file": os.path.join(output_dir, "bert_config.json"),
      "vocab_file": os.path.join(output_dir, "vocab.txt"),
      "init_checkpoint": os.path.join(output_dir, "bert_model.ckpt"),
  }
  with open(paths["bert_config_file"], "w") as f:
    json.dump(config_dict, f)
  with open(paths["vocab_file"], "w") as f:
    f.write("\n".join(TINY_VOCAB) + "\n")
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    input_ids = tf.zeros([1, 4], dtype=tf.int32)
    modeling.BertModel(modeling.BertConfig.from_dict(config_dict), False,
                       input_ids)
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as session:
      session.run(tf.global_variables_initializer())
      saver.save(session, paths["init_checkpoint"], write_meta_graph=False,
                 write_state=False)
  return paths


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
  """A random tiny BERT checkpoint, written once per test session."""
  return write_tiny_bert(str(tmp_path_factory.mktemp("tiny_bert")))


# ---------------------------------------------------------------- sessions


def new_session(graph=None):
  """A tf.Session on one thread each way: repeatable sums, no oversubscription."""
  import tensorflow.compat.v1 as tf
  return tf.Session(graph=graph, config=tf.ConfigProto(
      intra_op_parallelism_threads=1, inter_op_parallelism_threads=1))


def feature_batch(batch, width):
  """A static-shape batch of the classifier's features, as TPUs are fed."""
  import tensorflow.compat.v1 as tf
  features = {name: tf.zeros([batch, width], tf.int32)
              for name in ("input_ids", "input_mask", "segment_ids")}
  features["label_ids"] = tf.zeros([batch], tf.float32)
  features["is_real_example"] = tf.ones([batch], tf.int32)
  features["example_index"] = tf.range(batch)
  return features


def scalar_events(folder):
  """{tag: [(step, value)]} of the scalar summaries in a folder's event files
  (v1 simple values and v2 tensors alike)."""
  import tensorflow.compat.v1 as tf
  found = collections.defaultdict(list)
  for path in sorted(tf.io.gfile.glob(
      os.path.join(folder, "events.out.tfevents.*"))):
    for event in tf.train.summary_iterator(path):
      for value in event.summary.value:
        number = (value.simple_value if value.HasField("simple_value") else
                  float(tf.make_ndarray(value.tensor)))
        found[value.tag].append((event.step, number))
  return dict(found)


def checkpoint_values(path):
  """{name: numpy value} of every tensor in a checkpoint."""
  import tensorflow.compat.v1 as tf
  reader = tf.train.load_checkpoint(path)
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()}


# ---------------------------------------------------------------- command lines


def run_cli(script, *args, **flags):
  """Runs one of the project's scripts in a subprocess.

  Args:
    script: file name in the repository ("run_classifier.py").
    *args: raw arguments, passed first.
    **flags: `--name=value` flags; a value of None leaves the flag out.

  Returns:
    subprocess.CompletedProcess with text stdout and stderr.
  """
  command = [sys.executable, os.path.join(REPO_ROOT, script)] + list(args)
  for (name, value) in flags.items():
    if value is not None:
      command.append("--%s=%s" % (name, value))
  return subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT,
                        timeout=600)


def assert_one_line_error(result, *fragments, program="run_classifier.py"):
  """A failed run: non-zero exit, one `<program>: error:` line naming things."""
  assert result.returncode != 0, result.stderr[-2000:]
  error_lines = [l for l in result.stderr.splitlines()
                 if l.startswith("%s: error:" % program)]
  assert len(error_lines) == 1, result.stderr[-3000:]
  assert "Traceback" not in result.stderr
  for fragment in fragments:
    assert fragment in error_lines[0], error_lines[0]


def assert_input_error(function, *fragments):
  """Calls `function()` in-process: it must raise a one-line InputError
  naming every fragment. Returns the message."""
  from adapter_bert import errors
  with pytest.raises(errors.InputError) as excinfo:
    function()
  message = str(excinfo.value)
  assert message and "\n" not in message, repr(message)
  for fragment in fragments:
    assert fragment in message, message
  return message


def tiny_job_flags(tiny_bert, data_dir, output_dir, **overrides):
  """run_classifier.py's flags for a quick job on the tiny model (a dict)."""
  args = {
      "task_name": "SST-2",
      "data_dir": data_dir,
      "output_dir": output_dir,
      "vocab_file": tiny_bert["vocab_file"],
      "bert_config_file": tiny_bert["bert_config_file"],
      "init_checkpoint": tiny_bert["init_checkpoint"],
      "max_seq_length": 16,
      "train_batch_size": 8,
      "eval_batch_size": 8,
      "predict_batch_size": 8,
      "learning_rate": 1e-2,
      "num_train_epochs": 1.0,
      "adapter_size": 8,
      "do_train": True,
      "do_eval": True,
      "do_predict": False,
      # Exact on every machine (the command line's default, auto, is
      # bfloat16 on a CPU with AVX512_BF16).
      "precision": "float32",
  }
  args.update(overrides)
  # The tiny adapter size goes only to methods that take the flag.
  from adapter_bert import methods
  mode = args.get("tuning_mode") or methods.names()[0]
  if ("adapter_size" not in overrides and mode in methods.names() and
      methods.get(mode).option("adapter_size") is None):
    del args["adapter_size"]
  return args


def run_classifier_cli(tiny_bert, data_dir, output_dir, **flags):
  """Runs run_classifier.py in a subprocess with tiny-model defaults."""
  return run_cli("run_classifier.py",
                 **tiny_job_flags(tiny_bert, data_dir, output_dir, **flags))


def train_tiny(tiny_bert, data_dir, output_dir, **flags):
  """run_classifier_cli, which must succeed; returns what checks read next:
  {data_dir, output_dir, bundle (the adapter bundle's folder), log}."""
  result = run_classifier_cli(tiny_bert, data_dir, output_dir, **flags)
  assert result.returncode == 0, result.stderr[-3000:]
  return {"data_dir": data_dir, "output_dir": output_dir,
          "bundle": os.path.join(output_dir, "adapter_bundle"),
          "log": result.stderr}


def run_classifier_in_process(tiny_bert, data_dir, output_dir, **settings):
  """classifier.run with tiny-model defaults, in this process.

  The settings given here count as explicit (as flags on a command line).
  """
  from adapter_bert import classifier
  values = {k: v for (k, v) in tiny_job_flags(
      tiny_bert, data_dir, output_dir, **settings).items() if v is not None}
  return classifier.run(classifier.Settings(**values),
                        explicit=frozenset(settings))


class _LogLines(logging.Handler):
  """Keeps the message of every record it sees."""

  def __init__(self):
    super(_LogLines, self).__init__(logging.INFO)
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


def train_tiny_in_process(tiny_bert, data_dir, output_dir, **settings):
  """train_tiny in this process (for fixtures, which cannot take caplog):
  the same dict, its log the messages logged at INFO and above, plus the
  results classifier.run returned."""
  root = logging.getLogger()
  (level, lines) = (root.level, _LogLines())
  root.setLevel(logging.INFO)
  root.addHandler(lines)
  try:
    results = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        **settings)
  finally:
    root.removeHandler(lines)
    root.setLevel(level)
  return {"data_dir": data_dir, "output_dir": output_dir,
          "bundle": os.path.join(output_dir, "adapter_bundle"),
          "log": "\n".join(lines.lines), "results": results}


def read_eval_results(output_dir, name="eval_results.txt"):
  """eval_results.txt as {key: float}, checking BERT's `key = value` format."""
  import tensorflow.compat.v1 as tf
  results = {}
  with tf.io.gfile.GFile(os.path.join(output_dir, name)) as f:
    for line in f:
      match = re.match(r"^(\w+) = (-?[0-9.e+-]+)\n$", line)
      assert match, "bad line in %s: %r" % (name, line)
      results[match.group(1)] = float(match.group(2))
  return results


# ---------------------------------------------------------------- tiny tasks


POSITIVE = "good great fun lovely moving liked loved".split()
NEGATIVE = "bad awful boring dull hated".split()


def write_file(path, lines):
  """Writes lines (each + newline) as UTF-8, on any TF file system."""
  import tensorflow.compat.v1 as tf
  folder = os.path.dirname(path)
  if folder:
    tf.io.gfile.makedirs(folder)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write("".join(line + "\n" for line in lines))
  return path


def sentiment_rows(count, seed):
  """`the movie was <word> .` rows whose label is the word's sentiment."""
  rng = random.Random(seed)
  rows = []
  for _ in range(count):
    label = rng.randint(0, 1)
    word = rng.choice(POSITIVE if label else NEGATIVE)
    rows.append(("the movie was %s ." % word, str(label)))
  return rows


def write_sst2_task(data_dir, num_train=64, num_dev=13, num_test=7,
                    rows=sentiment_rows):
  """A small task in SST-2's GLUE format; `rows(count, seed)` makes the
  (sentence, label) rows of each split."""
  write_file(os.path.join(data_dir, "train.tsv"),
             ["sentence\tlabel"] + ["\t".join(r) for r in rows(num_train, 1)])
  write_file(os.path.join(data_dir, "dev.tsv"),
             ["sentence\tlabel"] + ["\t".join(r) for r in rows(num_dev, 2)])
  write_file(os.path.join(data_dir, "test.tsv"),
             ["index\tsentence"] + ["%d\t%s" % (i, r[0]) for (i, r) in
                                    enumerate(rows(num_test, 3))])
  return data_dir


def write_stsb_task(data_dir, num_train=24, num_dev=6):
  """A small task in STS-B's GLUE format (regression)."""
  header = ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\t"
            "sentence1\tsentence2\tscore")

  def rows(count, offset):
    return ["%d\tmain\tf\t2012\t%d\tx\ty\tthe movie was good .\tthe film "
            "was %s .\t%.1f" % (i, i, ("good", "dull")[i % 2],
                                (4.5, 1.0)[i % 2] + offset)
            for i in range(count)]

  write_file(os.path.join(data_dir, "train.tsv"), [header] + rows(num_train, 0))
  write_file(os.path.join(data_dir, "dev.tsv"), [header] + rows(num_dev, 0.2))
  return data_dir


def write_mrpc_task(data_dir, num_train=40, num_dev=9, num_test=5):
  """A small task in MRPC's GLUE format (BOM-prefixed header, as the real one)."""
  def pair_rows(count, seed):
    rng = random.Random(seed)
    rows = []
    for i in range(count):
      label = rng.randint(0, 1)
      second = "the film was good ." if label else "the plot was dull ."
      rows.append((str(label), str(1000 + i), str(2000 + i),
                   "the movie was good .", second))
    return rows

  header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"
  write_file(os.path.join(data_dir, "train.tsv"),
             [header] + ["\t".join(r) for r in pair_rows(num_train, 1)])
  write_file(os.path.join(data_dir, "dev.tsv"),
             [header] + ["\t".join(r) for r in pair_rows(num_dev, 2)])
  write_file(os.path.join(data_dir, "test.tsv"),
             ["index\t#1 ID\t#2 ID\t#1 String\t#2 String"] +
             ["%d\t%s" % (i, "\t".join(r[1:])) for (i, r) in
              enumerate(pair_rows(num_test, 3))])
  return data_dir


def tiny_classifier_variables(method, num_labels=3):
  """Trainable variables of the tiny model with a tuning method's additions
  (`method`, a `TuningMethod` passed as the hooks; None: plain BERT) + the
  head."""
  import tensorflow.compat.v1 as tf

  import modeling
  with tf.Graph().as_default():
    model = modeling.BertModel(
        modeling.BertConfig.from_dict(tiny_bert_config_dict()), True,
        tf.zeros([2, 8], tf.int32), hooks=method)
    hidden = model.get_pooled_output().shape[-1]
    tf.get_variable("output_weights", [num_labels, hidden])
    tf.get_variable("output_bias", [num_labels],
                    initializer=tf.zeros_initializer())
    return tf.trainable_variables()


# ---------------------------------------------------------------- test tiers


def pytest_addoption(parser):
  """The opt-in tiers, as keras-hub's --run_large: `make test` runs neither,
  `make test-all` (CI) runs both."""
  parser.addoption("--run-slow", action="store_true",
                   help="also run tests marked slow (whole jobs, "
                   "subprocesses, long trainings)")
  parser.addoption("--run-real", action="store_true",
                   help="also run tests marked real (real weights and data)")


def pytest_collection_modifyitems(config, items):
  """Deselects (not skips) the tiers not asked for, so the summary counts
  them as deselected."""
  selected, deselected = [], []
  for item in items:
    wanted = all(config.getoption("--run-" + marker)
                 for marker in ("slow", "real") if marker in item.keywords)
    (selected if wanted else deselected).append(item)
  if deselected:
    config.hook.pytest_deselected(items=deselected)
  items[:] = heaviest_files_first(selected)


# A test's weight by its markers, for the order of the files: a `slow` or a
# `real` test runs a whole job or reads real data (seconds to minutes).
MARKER_WEIGHTS = {"real": 5, "slow": 5}

# Files of a few tests that take minutes in all (`make test-all` prints the
# slowest), started before the rest, longest first.
LONG_FILES = ("test_precision_real.py", "test_export_savedmodel_real.py",
              "test_sweep.py", "test_compact_checkpoints.py",
              "test_precision.py", "test_distribute.py",
              "test_export_savedmodel.py", "test_tokenization.py",
              "test_new_method.py", "test_flags_doc.py")


def heaviest_files_first(items):
  """The tests, whole files at a time: LONG_FILES first, then the others
  heaviest first (by their tests' markers), each file's tests in order.

  With test processes (pytest-xdist, `--dist loadfile`) a file goes to the
  next free process; the heavy files started first keep one long file from
  running alone at the end (longest-first scheduling). One process: the
  same tests, in another file order.
  """
  weights, by_file = {}, collections.OrderedDict()
  for item in items:
    path = item.nodeid.split("::")[0]
    by_file.setdefault(path, []).append(item)
    weights[path] = weights.get(path, 0) + 1 + sum(
        w for (m, w) in MARKER_WEIGHTS.items() if m in item.keywords)
  def rank(path):
    name = os.path.basename(path)
    return ((LONG_FILES.index(name), 0) if name in LONG_FILES else
            (len(LONG_FILES), -weights[path]))
  order = sorted(by_file, key=rank)  # stable
  return [item for path in order for item in by_file[path]]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
  """`--dist loadfile`, its files handed out in collection order (heaviest
  first, above) instead of xdist's order by number of tests, which would
  leave a one-test file of minutes for the end."""
  if config.getoption("dist") != "loadfile":
    return None
  from xdist.scheduler import LoadFileScheduling  # pylint: disable=g-import-not-at-top

  class CollectionOrder(LoadFileScheduling):

    def _assign_work_unit(self, node):
      if not getattr(self, "in_collection_order", False):
        first = {}
        for (index, nodeid) in enumerate(self.collection):
          first.setdefault(self._split_scope(nodeid), index)
        for scope in sorted(self.workqueue, key=first.get):
          self.workqueue.move_to_end(scope)
        self.in_collection_order = True
      super(CollectionOrder, self)._assign_work_unit(node)

  return CollectionOrder(config, log)
