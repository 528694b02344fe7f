# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Serves several tasks from one frozen backbone, each with its adapter bundle.

The backbone's weights are loaded once and shared: every task's model is
built in one graph through a variable getter that hands out the same backbone
variables to all tasks, and task-local copies (`tasks/<TASK>/...`) of what the
bundle holds (adapters, LayerNorms, head). Memory therefore grows by a few MB
per task: the bundle's weights and the graph of one more forward pass
(measured: ~25 MB per task for MiniLM), not by a BERT.

`run` predicts each task's test set (or its dev set, printing the dev
metrics), and prints the bundle sizes, the backbone size and the process
memory after each task is loaded. Its command line, with an example, is
scripts/predict_multitask.py.
"""

import collections
import contextlib
import os
import resource
import sys
import time

from absl import logging
import numpy as np
import tensorflow.compat.v1 as tf

from adapter_bert import bundles
from adapter_bert import classifier
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import output_rules
from adapter_bert import routing
from adapter_bert.methods import base
import modeling
import tokenization


def resident_memory_bytes():
  """This process's resident memory now (Linux), else its peak."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmRSS:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return peak if sys.platform == "darwin" else peak * 1024  # bytes vs KiB


# The model's int32 inputs, each [batch, width].
FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")


class MultiTaskPredictor(object):
  """One backbone in memory, any number of tasks on it.

  Example:

  ```python
  predictor = MultiTaskPredictor(bert_config, "bert_model.ckpt", "vocab.txt")
  predictor.add_task("mrpc_out/adapter_bundle")
  predictor.add_task("sst2_out/adapter_bundle")
  outputs = predictor.predict("SST-2", [glue.InputExample("0", "a fine film")])
  ```
  """

  def __init__(self, bert_config, init_checkpoint, vocab_file,
               batch_size=32, bert_config_file="bert_config.json",
               compute_dtype=tf.float32):
    """Reads nothing yet: the backbone loads with the first task.

    Args:
      bert_config: `modeling.BertConfig` of the backbone.
      init_checkpoint: the backbone checkpoint prefix.
      vocab_file: its WordPiece vocabulary.
      batch_size: examples per session run.
      bert_config_file: where `bert_config` came from (for messages).
      compute_dtype: the encoder's dtype (see `modeling.BertModel`).
    """
    self.bert_config = bert_config
    self.compute_dtype = compute_dtype
    self.bert_config_file = bert_config_file
    self.init_checkpoint = init_checkpoint
    self.vocab_file = vocab_file
    self.batch_size = batch_size
    self.graph = tf.Graph()
    self.session = tf.Session(graph=self.graph)
    self.tasks = collections.OrderedDict()
    self._backbone = {}
    self._task_variables = {}
    self._backbone_shapes = None
    self._fingerprints = {}
    self._tokenizers = {}

  def add_task(self, bundle_dir, build_inputs=None, merge=False):
    """Loads a bundle onto the shared backbone.

    Args:
      bundle_dir: the task's adapter bundle.
      merge: fold a mergeable method (LoRA, IA3) into the weights it changes:
        the task then runs plain BERT, with its own copy of those weights
        and the shared rest (no added computation, more memory per task).
        A method that cannot merge serves as it is.
      build_inputs: (optional) function(task, settings) -> (model_inputs,
        serving_inputs), called inside the shared graph: model_inputs are
        the (input_ids, input_mask, segment_ids) int32 Tensors [batch, width]
        the task's model reads, serving_inputs a {name: Tensor} of what feeds
        them (raw text, for a SavedModel). Default: three int32 placeholders,
        fed by `predict`.

    Returns:
      the task's GLUE name.

    Raises:
      ValueError: the bundle is unreadable, for another backbone, a full
        model, or for a task already loaded.
    """
    bundle = self._checked_bundle(bundle_dir)
    task = bundle.task()  # in the language it was trained in (XNLI)
    if task.name in self.tasks:
      raise ValueError("adapter bundle %s: task %s is loaded already" %
                       (bundle_dir, task.name))
    method = bundle.tuning_method()
    settings = bundle.settings()
    max_seq_length = settings["max_seq_length"]
    # Everything is checked before the shared graph is touched: a graph cannot
    # drop what a half-built task would leave in it.
    self._check_shapes(bundle, task, method, max_seq_length)
    own_values = bundle.values
    merge = merge and method.mergeable
    if merge:
      reader = fileio.checkpoint_reader(self.init_checkpoint)
      own_values = method.merge(bundle.values, reader.get_tensor)

    entry = {
        "task": task,
        "bundle": bundle,
        "method": None if merge else method,
        "own_values": own_values,
        "max_seq_length": max_seq_length,
        "do_lower_case": settings["do_lower_case"],
        "merged": bool(merge),
    }
    (entry["inputs"], entry["serving_inputs"], entry["outputs"]) = (
        self._build_task_model(entry, build_inputs, settings))
    self.tasks[task.name] = entry
    return task.name

  def add_inputs(self, task_name, build_inputs, name):
    """One more way into a loaded task's model (token ids beside raw text):
    the same variables, another copy of its graph.

    Args:
      task_name: a loaded task.
      build_inputs: as `add_task`'s (None: int32 token-id placeholders).
      name: where the entry keeps it: entry["extra_inputs"][name] =
        (serving_inputs, outputs).
    """
    entry = self.tasks[glue.get_task(task_name).name]
    settings = entry["bundle"].settings()
    (_, serving_inputs, outputs) = self._build_task_model(
        entry, build_inputs, settings, scope_suffix="_" + name)
    entry.setdefault("extra_inputs", {})[name] = (serving_inputs, outputs)

  def add_mixed(self, build_inputs=None):
    """One model for batches whose rows belong to any loaded task: the
    backbone computes once, each row takes its task's method, LayerNorms and
    head (adapter_bert/routing.py). Call after the last `add_task`.

    Args:
      build_inputs: (optional) function(tasks, settings) -> (row_task,
        model_inputs, serving_inputs), called inside the shared graph, given
        the `glue.Task`s and their bundles' settings by task index:
        row_task is an int32 Tensor [batch], model_inputs and
        serving_inputs are as `add_task`'s. Default: a string placeholder
        `task` (its key, "mrpc", or GLUE name) and the three token-id
        placeholders.

    Returns:
      (serving_inputs, outputs): outputs as `routing.routed_outputs`.

    Raises:
      ValueError: a bundle trains backbone weights beyond its LayerNorms
        (the pooler, biases, whole layers), which rows cannot each take.
    """
    entries = list(self.tasks.values())
    for entry in entries:
      _check_routable(entry["bundle"])
    tasks = [entry["task"] for entry in entries]
    current = [None]  # the task whose variables the getter hands out

    @contextlib.contextmanager
    def enter_task(index):
      (previous, current[0]) = (current[0], index)
      try:
        yield
      finally:
        current[0] = previous

    with self.graph.as_default():
      values = {}
      with tf.name_scope("mixed"):
        if build_inputs is None:
          build_inputs = _token_id_inputs
        (row_task, inputs, serving_inputs) = build_inputs(
            tasks, [entry["bundle"].settings() for entry in entries])
        with tf.variable_scope(
            tf.get_variable_scope(),
            custom_getter=self._routed_getter(entries, current, values)):
          hooks = routing.RoutedHooks(
              [entry["bundle"].tuning_method() for entry in entries],
              row_task, enter_task, routes_layer_norms=any(
                  base.is_layer_norm(n) for entry in entries
                  for n in entry["bundle"].values))
          logits = self._routed_logits(inputs, hooks, tasks, enter_task)
          outputs = routing.routed_outputs(logits, tasks, row_task)
      self._load_values(values)
    return (serving_inputs, outputs)

  def _routed_logits(self, inputs, hooks, tasks, enter_task):
    """Every task's head on the routed model's pooled output."""
    (input_ids, input_mask, segment_ids) = inputs
    model = modeling.BertModel(self.bert_config, False, input_ids,
                               input_mask=input_mask,
                               token_type_ids=segment_ids, hooks=hooks,
                               pooled_only=True,
                               compute_dtype=self.compute_dtype)
    pooled = tf.cast(model.get_pooled_output(), tf.float32)
    logits = []
    for (index, task) in enumerate(tasks):
      with enter_task(index):
        weights = tf.get_variable(base.HEAD_VARIABLES[0], [
            task.num_labels, self.bert_config.hidden_size])
        bias = tf.get_variable(base.HEAD_VARIABLES[1], [task.num_labels])
      logits.append(tf.nn.bias_add(tf.matmul(pooled, weights,
                                             transpose_b=True), bias))
    return logits

  def _routed_getter(self, entries, current, values):
    """The mixed model's getter: inside `enter_task(i)`, task i's own
    variables (its bundle's, unmerged); elsewhere the shared backbone. Each
    is `_shared_backbone_getter`'s, so the per-task models' variables are
    reused."""
    getters = [self._shared_backbone_getter(entry["bundle"].values,
                                            entry["task"], values)
               for entry in entries]
    backbone_only = self._shared_backbone_getter({}, None, values)

    def getter_fn(getter, name, *args, **kwargs):
      index = current[0]
      chosen = backbone_only if index is None else getters[index]
      return chosen(getter, name, *args, **kwargs)

    return getter_fn

  def _build_task_model(self, entry, build_inputs, settings, scope_suffix=""):
    """A task's model in the shared graph: (inputs, serving_inputs, outputs).

    Its own variables are made once (`tasks/<TASK>/...`) and reused by every
    later copy of its model; new backbone variables are loaded here.
    """
    task = entry["task"]
    with self.graph.as_default():
      values = {}
      with tf.name_scope("task_%s%s" % (task.key, scope_suffix)):
        if build_inputs is None:
          # [batch, width]: each batch is as wide as its longest row needs.
          inputs = tuple(tf.placeholder(tf.int32, [None, None], name=name)
                         for name in FEATURE_NAMES)
          serving_inputs = dict(zip(FEATURE_NAMES, inputs))
        else:
          (inputs, serving_inputs) = build_inputs(task, settings)
        (input_ids, input_mask, segment_ids) = inputs
        with tf.variable_scope(
            tf.get_variable_scope(),
            custom_getter=self._shared_backbone_getter(entry["own_values"],
                                                       task, values)):
          outputs = classifier.create_model(
              self.bert_config, False,
              {"input_ids": input_ids, "input_mask": input_mask,
               "segment_ids": segment_ids},
              task.num_labels, entry["method"],
              compute_dtype=self.compute_dtype)
      self._load_values(values)
    return (inputs, serving_inputs,
            {k: outputs[k] for k in ("predictions", "probabilities")
             if k in outputs})

  def _checked_bundle(self, bundle_dir):
    """The bundle, checked against this backbone: config, weights, vocab."""
    bundle = bundles.read_bundle(bundle_dir)
    bundles.check_bert_config(bundle, self.bert_config.to_dict(),
                              self.bert_config_file)
    bundles.check_backbone(bundle, self.init_checkpoint, self._fingerprints)
    if not bundles.check_vocab(bundle, self.vocab_file):
      logging.warning("adapter bundle %s records no vocabulary (made by an "
                      "older version): --vocab_file=%s cannot be checked",
                      bundle_dir, self.vocab_file)
    return bundle

  def _shared_backbone_getter(self, own_values, task, values):
    """A custom getter: task-local variables (`tasks/<TASK>/...`) for what
    the task holds itself, else the backbone's, made once and shared.

    Args:
      own_values: {name: value} of the task's own variables (its bundle's,
        or its merged weights).
      values: {variable: value} it fills for `_load_values`: the task's
        value, or None for a new backbone variable (read from the backbone
        checkpoint).
    """

    def getter_fn(getter, name, *args, **kwargs):
      if name in own_values:
        own_name = "tasks/%s/%s" % (task.key, name)
        if own_name not in self._task_variables:
          variable = getter(own_name, *args, **kwargs)
          self._task_variables[own_name] = variable
          values[variable] = own_values[name]
        return self._task_variables[own_name]
      elif name in self._backbone:
        return self._backbone[name]
      else:
        variable = getter(name, *args, **kwargs)
        self._backbone[name] = variable
        values[variable] = None
      return variable

    return getter_fn

  def _check_shapes(self, bundle, task, method, max_seq_length):
    """Refuses a bundle whose variables do not fit the model it describes."""
    expected = classifier.describe_model(
        self.bert_config, method, task.num_labels, max_seq_length)
    if self._backbone_shapes is None:
      reader = fileio.checkpoint_reader(self.init_checkpoint)
      self._backbone_shapes = reader.get_variable_to_shape_map()
    for (name, shape) in expected.items():
      actual = (bundle.values[name].shape if name in bundle.values else
                self._backbone_shapes.get(name))
      if actual is None:
        raise ValueError("adapter bundle %s: neither it nor --init_checkpoint="
                         "%s holds %s" % (bundle.path, self.init_checkpoint,
                                          name))
      if list(actual) != list(shape):
        raise ValueError("adapter bundle %s: %s has shape %s, the model it "
                         "describes needs %s" % (bundle.path, name,
                                                 list(actual), shape))

  def _load_values(self, values):
    """Assigns bundle values and backbone checkpoint values to new variables.

    Values are fed through placeholders (in one run), so the graph holds no
    copy of any weight.
    """
    reader = None
    assignments = []
    feeds = {}
    for (variable, value) in values.items():
      if value is None:
        if reader is None:
          reader = fileio.checkpoint_reader(self.init_checkpoint)
        value = reader.get_tensor(base.variable_name(variable))
      placeholder = tf.placeholder(variable.dtype.base_dtype, variable.shape)
      assignments.append(variable.assign(placeholder))
      feeds[placeholder] = value
    self.session.run(assignments, feed_dict=feeds)

  def _tokenizer(self, do_lower_case):
    if do_lower_case not in self._tokenizers:
      self._tokenizers[do_lower_case] = tokenization.FullTokenizer(
          self.vocab_file, do_lower_case)
    return self._tokenizers[do_lower_case]

  def predict(self, task_name, examples):
    """Runs one task's model over `examples` (`glue.InputExample`s).

    Returns:
      list of dicts with "predictions" (class id or score) and, for
      classification, "probabilities".
    """
    entry = self.tasks[glue.get_task(task_name).name]
    tokenizer = self._tokenizer(entry["do_lower_case"])
    label_list = entry["task"].get_labels()
    features = [classifier.convert_single_example(
        i, example, label_list, entry["max_seq_length"], tokenizer)
                for (i, example) in enumerate(examples)]
    # Longest rows first, batches cut to their longest row (a multiple of
    # classifier.PAD_TO_MULTIPLE), as run_classifier.py predicts; the results
    # are put back in the order of `examples`.
    lengths = [sum(f.input_mask) for f in features]
    order = sorted(range(len(features)), key=lambda i: -lengths[i])
    results = [None] * len(features)
    for start in range(0, len(order), self.batch_size):
      batch = order[start:start + self.batch_size]
      width = classifier.padded_width(max(lengths[i] for i in batch),
                                      entry["max_seq_length"])
      feed = dict(zip(entry["inputs"], (
          [features[i].input_ids[:width] for i in batch],
          [features[i].input_mask[:width] for i in batch],
          [features[i].segment_ids[:width] for i in batch])))
      fetched = self.session.run(entry["outputs"], feed_dict=feed)
      for (row, i) in enumerate(batch):
        results[i] = {k: v[row] for (k, v) in fetched.items()}
    return results

  def backbone_parameters(self):
    return sum(v.shape.num_elements() for v in self._backbone.values())


def _check_routable(bundle):
  """Refuses a bundle whose rows cannot share a batch with other tasks'."""
  method = bundle.tuning_method()
  others = sorted(n for n in bundle.values if not (
      method.adds(n) or base.is_head(n) or base.is_layer_norm(n)))
  if others:
    raise ValueError(
        "adapter bundle %s (--tuning_mode=%s) trains backbone weights beyond "
        "its LayerNorms (e.g. %s): its rows cannot share a mixed batch; "
        "serve it by its own signature" % (bundle.path, method.label(),
                                           others[0]))


def _token_id_inputs(tasks, settings):
  """The mixed model's default inputs: a task name and token ids per row."""
  del settings
  names = tf.placeholder(tf.string, [None], name="task")
  inputs = tuple(tf.placeholder(tf.int32, [None, None], name=name)
                 for name in FEATURE_NAMES)
  row_task = routing.task_indices(names, [(t.key, t.name) for t in tasks])
  serving = dict(zip(FEATURE_NAMES, inputs), task=names)
  return (row_task, inputs, serving)


# The backbone every bundle goes on: its bert_config.json, vocab.txt and
# checkpoint prefix.
Backbone = collections.namedtuple(
    "Backbone", ["bert_config_file", "vocab_file", "init_checkpoint"])


def run(backbone, adapter_bundles, data_dirs, output_dir, split="test",
        batch_size=8, max_seq_length=None, merge=False):
  """Loads every bundle on one backbone, predicts each task, prints figures.

  Every task's data is read (and checked to be that task's) before anything
  is predicted, and the GLUE server files are written together at the end:
  a mistake in the third task leaves no file of the first two behind.

  Args:
    backbone: the `Backbone`.
    adapter_bundles: bundle folders, one per task.
    data_dirs: the tasks' data folders, in the same order.
    output_dir: where the GLUE server files go (split "test").
    split: "test" (write GLUE server files) or "dev" (print dev metrics).
    batch_size: examples per session run.
    max_seq_length: (optional) the length the caller expects; every bundle
      must have been trained with it (a bundle's own length is always used).
    merge: serve mergeable methods (LoRA, IA3) merged (`add_task`).

  Raises:
    InputError: any user error, as one line.
  """
  _check_run_arguments(backbone, adapter_bundles, data_dirs, output_dir,
                       split, batch_size)
  (predictor, memory) = _load_tasks(backbone, adapter_bundles, batch_size,
                                    max_seq_length, merge)
  # Every task's files, read and checked before the first prediction.
  jobs = []
  for (name, data_dir) in zip(predictor.tasks, data_dirs):
    task = predictor.tasks[name]["task"]
    splits = task.test if split == "test" else task.dev
    if split == "test":  # test files alone cannot tell RTE's from WNLI's
      task.check_labelled_data(data_dir)
    for (task_split, path, examples) in classifier.read_splits(
        task, data_dir, splits):
      jobs.append((task, task_split, path, examples))
  _print_sizes(predictor, backbone.init_checkpoint, memory)

  submissions = []  # (file name, task, indices, predictions)
  for (task, task_split, path, examples) in jobs:
    (line, predictions) = predict_split(predictor, task, task_split,
                                        examples, split)
    if split == "test" and task.has_submission:
      submissions.append((task_split.name + ".tsv", task,
                          [e.index for e in examples], predictions))
      line += ", will write %s" % os.path.join(output_dir,
                                               task_split.name + ".tsv")
    print(line)
  write_submissions(output_dir, submissions)


def _check_run_arguments(backbone, adapter_bundles, data_dirs, output_dir,
                         split, batch_size):
  """`run`'s arguments, checked before any work (flag names in messages)."""
  required = dict(backbone._asdict(), adapter_bundles=adapter_bundles,
                  data_dirs=data_dirs)
  if split == "test":
    required["output_dir"] = output_dir
  for (name, value) in required.items():
    if not value:
      raise errors.InputError("--%s is required" % name)
  if len(adapter_bundles) != len(data_dirs):
    raise errors.InputError("--adapter_bundles has %d entries, --data_dirs %d"
                            % (len(adapter_bundles), len(data_dirs)))
  if batch_size <= 0:
    raise errors.InputError("--predict_batch_size must be positive, got %d" %
                            batch_size)
  if output_dir:
    output_rules.check_apart(
        [("output_dir", output_dir)],
        input_folders=[("adapter_bundles", d) for d in adapter_bundles],
        input_files=(output_rules.checkpoint_inputs(
            "init_checkpoint", backbone.init_checkpoint) +
                     [("vocab_file", backbone.vocab_file),
                      ("bert_config_file", backbone.bert_config_file)] +
                     [("data_dirs", d) for d in data_dirs]))
    try:
      fileio.check_writable_folder(output_dir)
    except ValueError as e:
      raise errors.InputError("--output_dir=%s: %s" % (output_dir, e))
    fileio.remove_orphans(output_dir)  # of a killed earlier run


def _load_tasks(backbone, adapter_bundles, batch_size, max_seq_length,
                merge=False):
  """The predictor with every bundle loaded.

  Returns:
    (predictor, [process memory before loading, after each task]).
  """
  try:
    bert_config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
    tokenization.FullTokenizer(backbone.vocab_file).check_special_tokens()
    predictor = MultiTaskPredictor(bert_config, backbone.init_checkpoint,
                                   backbone.vocab_file, batch_size,
                                   backbone.bert_config_file)
    memory = [resident_memory_bytes()]
    for bundle_dir in adapter_bundles:
      name = predictor.add_task(bundle_dir, merge=merge)
      trained_length = predictor.tasks[name]["max_seq_length"]
      if max_seq_length is not None and max_seq_length != trained_length:
        raise ValueError(
            "--max_seq_length=%d: adapter bundle %s was trained with "
            "max_seq_length=%d, which it always uses; drop the flag or give "
            "that length" % (max_seq_length, bundle_dir, trained_length))
      memory.append(resident_memory_bytes())
  except ValueError as e:
    raise errors.InputError(e)
  return (predictor, memory)


def _print_sizes(predictor, init_checkpoint, memory):
  """The backbone's and each bundle's size, and the process memory after
  each task was loaded (`memory`: before loading, then after each)."""
  human = fileio.human_bytes
  print("backbone %s: %s shared frozen parameters, %s on disk" % (
      init_checkpoint, "{:,}".format(predictor.backbone_parameters()),
      human(fileio.checkpoint_size(init_checkpoint))))
  print("process memory before loading: %s" % human(memory[0]))
  for (i, (name, entry)) in enumerate(predictor.tasks.items()):
    bundle = entry["bundle"]
    print("task %-6s bundle %s: %s on disk, %s parameters; process memory "
          "with %d task(s): %s" % (
              name, bundle.path, human(fileio.directory_size(bundle.path)),
              "{:,}".format(bundle.num_parameters), i + 1,
              human(memory[i + 1])))
  if len(memory) > 2:
    print("memory added per task after the first: %s on average" %
          human((memory[-1] - memory[1]) / (len(memory) - 2)))


def write_submissions(output_dir, submissions):
  """Writes every GLUE server file into `output_dir` at once: into a
  temporary folder first, then moved in, so a failure leaves none of them."""
  if not submissions:
    return
  temp_dir = fileio.temporary_name(os.path.join(output_dir, "submission"))
  tf.io.gfile.makedirs(temp_dir)
  try:
    for (file_name, task, indices, predictions) in submissions:
      glue.write_submission(os.path.join(temp_dir, file_name), task, indices,
                            predictions)
    fileio.move_files_into(temp_dir, output_dir)
  finally:
    fileio.remove_quietly(temp_dir)
  for (file_name, _, indices, _) in submissions:
    print("wrote %s (%d rows)" % (os.path.join(output_dir, file_name),
                                  len(indices)))


def predict_split(predictor, task, task_split, examples, split):
  """Predicts one split's examples.

  Returns:
    (a line to print, with the dev metrics for split "dev"; predictions).
  """
  start = time.time()
  outputs = predictor.predict(task.name, examples)
  elapsed = time.time() - start
  predictions = [o["predictions"] for o in outputs]
  line = "task %-6s %s: %d examples in %.1f s" % (task.name, task_split.name,
                                                   len(examples), elapsed)
  if split == "dev":
    scores = task.metrics(np.array(predictions),
                          np.array(task.label_values(examples)))
    line += ", " + ", ".join("%s = %.4f" % kv for kv in sorted(scores.items()))
  return line, predictions

