# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""One frozen backbone + adapter bundles -> one SavedModel that takes raw text.

The SavedModel has a serving signature per task, named by the task (`mrpc`,
`sst2`, `stsb`, ...), and `serving_default` (the first task, or
--default_task). Each signature takes raw UTF-8 strings, `text_a` [batch] and
for pair tasks `text_b` [batch], and returns:

  classification: `labels` [batch] (the task's label strings) and
                  `probabilities` [batch, num_labels] (columns in the
                  order of the task's label list in glue.py);
  STS-B:          `scores` [batch].

Tokenization happens inside the graph, with tensorflow-text's
FastBertTokenizer, after the same text cleaning, lower-casing and accent
stripping as tokenization.py: the token ids are exactly tokenization.py's
(tests/test_export_savedmodel.py checks every real sentence). Rows are cut to
the bundle's max_seq_length exactly as run_classifier.py cuts them. The
backbone's weights are stored once, whatever the number of tasks.

Its command line, with an example, is scripts/export_savedmodel.py.

A loader must register tensorflow-text's ops first (`import tensorflow_text`
before `tf.saved_model.load`; TF Serving: a build with the TF Text ops).
"""

import os

import tensorflow.compat.v1 as tf
import tensorflow_text as tf_text

from adapter_bert import classifier
from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import multitask
from adapter_bert import output_rules
from adapter_bert import routing
import modeling
import tokenization


# ---------------------------------------------------------------- text


class InGraphTokenizer(object):
  """tokenization.FullTokenizer as TensorFlow ops: strings in, ids out.

  FastBertTokenizer splits on whitespace, punctuation and CJK characters and
  runs WordPiece as BasicTokenizer + WordpieceTokenizer do. Its own
  normalisation (`lower_case_nfd_strip_accents`) case-folds with NFKC, which
  tokenization.py does not (measured: it turns "½" into "1⁄2", "ß" into "ss",
  "…" into "..."), so the cleaning, lower-casing and accent stripping are
  done here, as tokenization.py does them, and FastBertTokenizer sees the
  result unchanged.
  """

  def __init__(self, vocab_file, do_lower_case=True):
    vocab = tokenization.load_vocab(vocab_file)
    # Ids are line positions (load_vocab's rule).
    tokens = [None] * (max(vocab.values()) + 1)
    for (token, index) in vocab.items():
      tokens[index] = token
    self.do_lower_case = do_lower_case
    self.cls_id = vocab["[CLS]"]
    self.sep_id = vocab["[SEP]"]
    self._wordpiece = tf_text.FastBertTokenizer(
        vocab=[t if t is not None else "[unused-line-%d]" % i
               for (i, t) in enumerate(tokens)],
        token_out_type=tf.int32, unknown_token="[UNK]",
        # Bytes here, characters there: see the README on long words.
        max_bytes_per_word=tokenization.MAX_INPUT_CHARS_PER_WORD,
        lower_case_nfd_strip_accents=False)

  def normalize(self, texts):
    """BasicTokenizer's cleaning (and lower-casing and accent stripping).

    Args:
      texts: string Tensor [batch] (UTF-8).

    Returns:
      string Tensor [batch].
    """
    # _clean_text: drop NUL, U+FFFD and control/format characters (tab,
    # newline and carriage return are whitespace, not control)...
    texts = tf.strings.regex_replace(
        texts, r"[\x{0}\x{FFFD}\p{Cf}]|[^\P{Cc}\t\n\r]", "")
    # ...and make every whitespace character a space.
    texts = tf.strings.regex_replace(texts, r"[\t\n\r\p{Zs}]", " ")
    if self.do_lower_case:
      texts = tf.strings.lower(texts, encoding="utf-8")
      # _run_strip_accents: NFD, then drop the combining marks.
      texts = tf_text.normalize_utf8(texts, "NFD")
      texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    return texts

  def tokenize(self, texts):
    """WordPiece ids of each text: int32 RaggedTensor [batch, (tokens)]."""
    return self._wordpiece.tokenize(self.normalize(texts))


def kept_lengths(len_a, len_b, max_seq_length):
  """How many tokens of each text a row keeps: run_classifier.py's rule.

  A single text keeps max_seq_length - 2 tokens ([CLS], [SEP]). A pair keeps
  max_seq_length - 3 in all, taking one token at a time from the longer
  text (the second on a tie), as classifier.features._truncate_seq_pair does;
  in closed form: the shorter text stays whole if the longer can still have
  as many, else the first gets ceil(budget / 2) and the second the rest.

  Args:
    len_a, len_b: int32 Tensors [batch]; len_b is 0 for a row without a
      second text (which then counts as a single text).
    max_seq_length: the row length: an int, or an int32 Tensor [batch] of
      each row's (rows of several tasks).

  Returns:
    (kept_a, kept_b), int32 Tensors [batch].
  """
  single = tf.minimum(len_a, max_seq_length - 2)
  budget = max_seq_length - 3
  shorter = tf.minimum(len_a, len_b)
  both_cut = tf.logical_and(len_a + len_b > budget, budget - shorter < shorter)
  half_up = (budget + 1) // 2 + tf.zeros_like(len_a)  # [batch]
  pair_a = tf.where(len_a + len_b <= budget, len_a,
                    tf.where(both_cut, half_up,
                             tf.where(len_a <= len_b, len_a,
                                      budget - len_b)))
  pair_b = tf.where(len_a + len_b <= budget, len_b,
                    tf.where(both_cut, budget - half_up,
                             tf.where(len_a <= len_b, budget - len_a,
                                      len_b)))
  has_b = len_b > 0
  return (tf.where(has_b, pair_a, single),
          tf.where(has_b, pair_b, tf.zeros_like(len_b)))


def row_lengths(ragged):
  return tf.cast(ragged.row_lengths(), tf.int32)


def classifier_inputs(tokens_a, tokens_b, max_seq_length, cls_id, sep_id):
  """`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, as convert_single_example.

  Args:
    tokens_a: int32 RaggedTensor [batch, (tokens)].
    tokens_b: (optional) int32 RaggedTensor [batch, (tokens)]; a row with no
      token is laid out as a single text, as run_classifier.py does.
    max_seq_length: the longest row (an int, or each row's: int32 [batch]).
    cls_id, sep_id: the ids of [CLS] and [SEP].

  Returns:
    (input_ids, input_mask, segment_ids): int32 Tensors [batch, width], the
    width that of the longest row (at most max_seq_length), zero-padded.
  """
  len_a = row_lengths(tokens_a)
  len_b = (row_lengths(tokens_b) if tokens_b is not None
           else tf.zeros_like(len_a))
  (kept_a, kept_b) = kept_lengths(len_a, len_b, max_seq_length)

  def first(tokens, kept):
    positions = tf.ragged.range(row_lengths(tokens))
    return tf.ragged.boolean_mask(tokens, positions < tf.expand_dims(kept, 1))

  batch = tf.shape(len_a)[0]
  one_per_row = tf.RaggedTensor.from_tensor(tf.ones([batch, 1], tf.int32))
  parts = [one_per_row * cls_id, first(tokens_a, kept_a), one_per_row * sep_id]
  segments = [tf.zeros_like(part) for part in parts]
  if tokens_b is not None:
    has_b = tf.expand_dims(kept_b > 0, 1)
    second = [first(tokens_b, kept_b),
              tf.ragged.boolean_mask(one_per_row * sep_id, has_b)]
    parts += second
    segments += [tf.ones_like(part) for part in second]
  ids = tf.concat(parts, axis=1)
  # At least [CLS] [SEP] wide: a request of zero rows would otherwise be
  # [0, 0], which the attention's reshapes cannot take.
  width = tf.cast(tf.reduce_max(tf.concat(
      [ids.row_lengths(), tf.constant([2], tf.int64)], 0)), tf.int32)
  shape = tf.stack([batch, width])
  return (ids.to_tensor(0, shape=shape),
          tf.ones_like(ids).to_tensor(0, shape=shape),
          tf.concat(segments, axis=1).to_tensor(0, shape=shape))


# ---------------------------------------------------------------- export


def in_graph_tokenizers(vocab_file):
  """function(do_lower_case) -> the graph's one `InGraphTokenizer` of that
  casing, made on first use: every signature shares it (and its vocabulary
  in the graph)."""
  tokenizers = {}

  def tokenizer(do_lower_case):
    if do_lower_case not in tokenizers:
      tokenizers[do_lower_case] = InGraphTokenizer(vocab_file, do_lower_case)
    return tokenizers[do_lower_case]

  return tokenizer


def text_inputs_builder(tokenizer_for):
  """`MultiTaskPredictor.add_task`'s `build_inputs`: string placeholders,
  tokenized by `tokenizer_for(do_lower_case)` (`in_graph_tokenizers`)."""

  def build_inputs(task, settings):
    tokenizer = tokenizer_for(settings["do_lower_case"])
    serving = {"text_a": tf.placeholder(tf.string, [None], name="text_a")}
    tokens_b = None
    if task.is_pair:
      serving["text_b"] = tf.placeholder(tf.string, [None], name="text_b")
      tokens_b = tokenizer.tokenize(serving["text_b"])
    inputs = classifier_inputs(tokenizer.tokenize(serving["text_a"]), tokens_b,
                               settings["max_seq_length"], tokenizer.cls_id,
                               tokenizer.sep_id)
    return (inputs, serving)

  return build_inputs


def mixed_text_inputs_builder(tokenizer_for):
  """`MultiTaskPredictor.add_mixed`'s `build_inputs`: a task name and raw
  text per row, each row laid out with its task's max_seq_length (a
  single-sentence task's row ignores its text_b)."""

  def build_inputs(tasks, settings):
    casings = {s["do_lower_case"] for s in settings}
    if len(casings) != 1:
      raise ValueError("the bundles disagree on do_lower_case: a mixed batch "
                       "is tokenized once; export without --mixed_signature")
    tokenizer = tokenizer_for(casings.pop())
    serving = {name: tf.placeholder(tf.string, [None], name=name)
               for name in ("task", "text_a", "text_b")}
    row_task = routing.task_indices(serving["task"],
                                    [(t.key, t.name) for t in tasks])
    is_pair = tf.gather(tf.constant([t.is_pair for t in tasks]), row_task)
    text_b = tf.where(is_pair, serving["text_b"],
                      tf.fill(tf.shape(serving["text_b"]), ""))
    lengths = tf.gather(tf.constant([s["max_seq_length"] for s in settings],
                                    tf.int32), row_task)
    inputs = classifier_inputs(tokenizer.tokenize(serving["text_a"]),
                               tokenizer.tokenize(text_b), lengths,
                               tokenizer.cls_id, tokenizer.sep_id)
    return (row_task, inputs, serving)

  return build_inputs


def signature_outputs(task, outputs):
  """A task's signature outputs from its model outputs."""
  if task.num_labels == 1:
    return {"scores": outputs["predictions"]}
  labels = tf.constant([str(label) for label in task.get_labels()])
  return {"labels": tf.gather(labels, outputs["predictions"]),
          "probabilities": outputs["probabilities"]}


# What the signatures take: raw text (tokenized in the graph by TF Text),
# token ids (tokenized by the client; no TF Text op in the graph), or both.
SIGNATURE_INPUTS = ("text", "token_ids", "both")
# A token-id signature's name: the task's, with this suffix.
TOKEN_IDS_SUFFIX = "_ids"


def export(backbone, adapter_bundles, export_dir, default_task=None,
           precision="float32", merge=False, signature_inputs="text",
           mixed=False):
  """Writes the SavedModel; returns {signature name: task name}.

  Args:
    backbone: `multitask.Backbone` (bert_config_file, vocab_file,
      init_checkpoint) every bundle goes on.
    adapter_bundles: the bundle folders, one per task.
    export_dir: the SavedModel folder (replaced if it exists).
    default_task: the task of `serving_default` (default: the first).
    precision: the encoder's arithmetic, one of classifier.PRECISIONS.
    merge: fold each mergeable bundle (LoRA, IA3) into its own copy of the
      weights it changes (`MultiTaskPredictor.add_task`); others serve as
      they are.
    signature_inputs: one of SIGNATURE_INPUTS. "token_ids" and "both" add a
      signature `<task>_ids` per task taking `input_ids`, `input_mask` and
      `segment_ids` (int32 [batch, width], laid out as run_classifier.py
      lays out a row); "token_ids" has no text signature and so no TF Text
      op, for a server built without TF Text.
    mixed: also a signature for batches whose rows belong to any of the
      tasks (`mixed`: task, text_a, text_b; `mixed_ids`: task and token
      ids, as signature_inputs says): one forward pass, each row through
      its task's method and head (`MultiTaskPredictor.add_mixed`).

  Raises:
    errors.InputError: any user error, as one line, before anything is
      written.
  """
  _check_export_arguments(backbone, adapter_bundles, export_dir, precision,
                          signature_inputs)
  text = signature_inputs != "token_ids"
  try:
    fileio.check_writable_folder(os.path.dirname(export_dir.rstrip("/")) or
                                 ".")
    bert_config = modeling.BertConfig.from_json_file(backbone.bert_config_file)
    tokenization.FullTokenizer(backbone.vocab_file).check_special_tokens()
    fileio.check_checkpoint_data(backbone.init_checkpoint)
    predictor = multitask.MultiTaskPredictor(
        bert_config, backbone.init_checkpoint, backbone.vocab_file,
        bert_config_file=backbone.bert_config_file,
        compute_dtype=classifier.PRECISIONS[precision][0])
    tokenizer_for = in_graph_tokenizers(backbone.vocab_file)
    build_inputs = text_inputs_builder(tokenizer_for) if text else None
    for bundle_dir in adapter_bundles:
      name = predictor.add_task(bundle_dir, build_inputs=build_inputs,
                                merge=merge)
      if signature_inputs == "both":
        predictor.add_inputs(name, None, "token_ids")
    mixed_map = (_mixed_signatures(predictor, signature_inputs,
                                   tokenizer_for) if mixed else {})
  except ValueError as e:
    raise errors.InputError(e)

  # Signature name -> task name; the default is a task's signature again.
  tasks = {entry["task"].key: name for (name, entry) in
           predictor.tasks.items()}
  default = glue.normalize_task_name(default_task) if default_task else (
      next(iter(tasks)))
  if default not in tasks:
    raise errors.InputError("--default_task=%s: no bundle of that task "
                            "(given: %s)" % (default_task,
                                             ", ".join(predictor.tasks)))
  signature_map = task_signatures(predictor, tasks, text)
  signature_map.update(mixed_map)
  signature_map[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY] = (
      signature_map[default if text else default + TOKEN_IDS_SUFFIX])

  write_saved_model(predictor, signature_map, export_dir)
  names = {}
  for (key, name) in tasks.items():
    if text:
      names[key] = name
    if signature_inputs != "text":
      names[key + TOKEN_IDS_SUFFIX] = name
  names[tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY] = tasks[default]
  for name in mixed_map:
    names[name] = "+".join(predictor.tasks)
  return names


# The signature of batches that mix the tasks.
MIXED_SIGNATURE = "mixed"


def _mixed_signatures(predictor, signature_inputs, tokenizer_for):
  """{name: SignatureDef} of the mixed signatures: `mixed` (task, text_a,
  text_b) unless token ids only, `mixed_ids` (task and token ids) unless
  text only."""
  ways = []
  if signature_inputs != "token_ids":
    ways.append((MIXED_SIGNATURE, mixed_text_inputs_builder(tokenizer_for)))
  if signature_inputs != "text":
    ways.append((MIXED_SIGNATURE + TOKEN_IDS_SUFFIX, None))
  signatures = {}
  for (name, build_inputs) in ways:
    (serving_inputs, outputs) = predictor.add_mixed(build_inputs)
    with predictor.graph.as_default():
      signatures[name] = tf.saved_model.predict_signature_def(
          inputs=serving_inputs, outputs=outputs)
  return signatures


def _check_export_arguments(backbone, adapter_bundles, export_dir, precision,
                            signature_inputs):
  """One-line InputErrors for what `export` is given, before any work."""
  required = {"bert_config_file": backbone.bert_config_file,
              "vocab_file": backbone.vocab_file,
              "init_checkpoint": backbone.init_checkpoint,
              "adapter_bundles": adapter_bundles, "export_dir": export_dir}
  for (name, value) in required.items():
    if not value:
      raise errors.InputError("--%s is required" % name)
  if signature_inputs not in SIGNATURE_INPUTS:
    raise errors.InputError("--signature_inputs=%s: unknown (known: %s)" % (
        signature_inputs, ", ".join(SIGNATURE_INPUTS)))
  if precision not in classifier.PRECISIONS:
    raise errors.InputError("--precision=%s: unknown (known: %s)" % (
        precision, ", ".join(classifier.PRECISIONS)))
  output_rules.check_export_target(export_dir, output_rules.SAVED_MODEL,
                                   "export_dir")
  output_rules.check_apart(
      [("export_dir", export_dir)],
      input_folders=[("adapter_bundles", d) for d in adapter_bundles],
      input_files=(output_rules.checkpoint_inputs(
          "init_checkpoint", backbone.init_checkpoint) +
                   [("vocab_file", backbone.vocab_file),
                    ("bert_config_file", backbone.bert_config_file)]))


def write_saved_model(predictor, signature_map, export_dir):
  """The predictor's graph and variables with `signature_map`, written
  atomically to `export_dir`."""
  with fileio.atomic_directory(export_dir, marker="saved_model.pb") as temp:
    # The Builder wants a folder that does not exist yet.
    fileio.remove_quietly(temp)
    with predictor.graph.as_default():
      builder = tf.saved_model.Builder(temp)
      builder.add_meta_graph_and_variables(
          predictor.session, [tf.saved_model.SERVING],
          signature_def_map=signature_map, strip_default_attrs=True)
      builder.save()


def task_signatures(predictor, tasks, text):
  """{signature name: SignatureDef}: each task's text signature (if `text`)
  and token-id signature (if it has one)."""
  signature_map = {}
  with predictor.graph.as_default():
    for (key, name) in tasks.items():
      entry = predictor.tasks[name]
      ways = []
      if text:
        ways.append((key, entry["serving_inputs"], entry["outputs"]))
      else:
        ways.append((key + TOKEN_IDS_SUFFIX, entry["serving_inputs"],
                     entry["outputs"]))
      if "token_ids" in entry.get("extra_inputs", {}):
        ways.append((key + TOKEN_IDS_SUFFIX,) +
                    entry["extra_inputs"]["token_ids"])
      for (signature, serving_inputs, outputs) in ways:
        with tf.name_scope("%s/serving" % signature):
          served = signature_outputs(entry["task"], outputs)
        signature_map[signature] = tf.saved_model.predict_signature_def(
            inputs=serving_inputs, outputs=served)
  return signature_map


def op_types(export_dir):
  """Every op type in a SavedModel's graphs and their function library."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=g-import-not-at-top
  saved = saved_model_pb2.SavedModel()
  saved.ParseFromString(fileio.read_bytes(
      os.path.join(export_dir, "saved_model.pb")))
  found = set()
  for graph in saved.meta_graphs:
    found.update(node.op for node in graph.graph_def.node)
    for function in graph.graph_def.library.function:
      found.update(node.op for node in function.node_def)
  return found

