# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A sweep in TensorBoard's HParams dashboard.

Each finished run's folder gets an event file with its settings (an HParams
session, named by its run id) and its dev metrics as scalars; the sweep's
work folder gets the experiment: every setting's values and the metrics, from
the results table. `tensorboard --logdir <work_dir>` then lists, filters and
plots the runs by setting with TensorFlow's own tool, beside each run's
training curves (which run_classifier.py writes in the same folder).

The files are written as TFRecords of `Event` protos (what a summary writer
writes), atomically, on any TF file system; no summary op or session runs.
"""

import json
import os
import time

from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import metadata
from tensorboard.plugins.hparams import summary_v2 as hp
import tensorflow.compat.v1 as tf

from adapter_bert import fileio

# The run settings that become hparams, and how their strings read.
NUMERIC = ("adapter_size", "learning_rate", "epochs", "init_scale", "seed")
SETTINGS = ("task", "method") + NUMERIC
RUN_EVENTS = "events.out.tfevents.hparams_session"
EXPERIMENT_EVENTS = "events.out.tfevents.hparams_experiment"


def hparam_values(run_fields):
  """{name: str or float} of a run's settings; an unused axis (no adapter
  size for full fine-tuning) is left out."""
  values = {}
  for name in SETTINGS:
    value = run_fields.get(name, "")
    if value == "":
      continue
    values[name] = float(value) if name in NUMERIC else value
  return values


def _write_events(path, summaries, step):
  """An event file of `summaries` at `step`, atomically."""
  with fileio.atomic_path(path) as temp:
    with tf.io.TFRecordWriter(temp) as writer:
      now = time.time()
      writer.write(event_pb2.Event(
          wall_time=now, file_version="brain.Event:2").SerializeToString())
      for summary in summaries:
        writer.write(event_pb2.Event(wall_time=now, step=step,
                                     summary=summary).SerializeToString())


def write_run_session(folder, run_fields, run_id, metrics, step=0):
  """The run's HParams session in its folder: its settings and its dev
  metrics ({name: value}, e.g. eval_f1) as scalars at `step`."""
  session = hp.hparams_pb(hparam_values(run_fields), trial_id=run_id)
  scalars = event_pb2.Event().summary
  for (name, value) in sorted(metrics.items()):
    scalars.value.add(tag=name, simple_value=float(value))
  _write_events(os.path.join(folder, RUN_EVENTS), [session, scalars], step)


def write_experiment(work_dir, rows):
  """The experiment of the sweeps in `work_dir`: each setting's values and
  each metric, over the table's `rows` and what the experiment already
  lists (rewritten as the table grows). TensorBoard reads one experiment
  per folder, so two tables whose runs share a work folder both stay in
  it."""
  path = os.path.join(work_dir, EXPERIMENT_EVENTS)
  (domains, metrics) = _recorded_experiment(path)
  for row in rows:
    for (name, value) in hparam_values(row).items():
      domains.setdefault(name, set()).add(value)
    metrics.update(json.loads(row.get("metrics") or "{}"))
  hparams = [hp.HParam(name, hp.Discrete(sorted(domains[name])))
             for name in SETTINGS if name in domains]
  experiment = hp.hparams_config_pb(
      hparams, [hp.Metric(name) for name in sorted(metrics)])
  _write_events(path, [experiment], 0)


def _recorded_experiment(path):
  """({setting: set of values}, set of metric tags) of the experiment at
  `path`; empty where there is none or it does not read."""
  domains = {}
  metrics = set()
  if not tf.io.gfile.exists(path):
    return (domains, metrics)
  try:
    # TensorBoard's own reader: tf.train.summary_iterator is deprecated and
    # says so on every call.
    for event in event_file_loader.EventFileLoader(path).Load():
      for value in event.summary.value:
        if value.metadata.plugin_data.plugin_name != metadata.PLUGIN_NAME:
          continue
        experiment = metadata.parse_experiment_plugin_data(
            value.metadata.plugin_data.content)
        for info in experiment.hparam_infos:
          domains.setdefault(info.name, set()).update(
              getattr(v, v.WhichOneof("kind"))
              for v in info.domain_discrete.values)
        metrics.update(m.name.tag for m in experiment.metric_infos)
  except (tf.errors.OpError, ValueError):
    return ({}, set())  # damaged: this table's settings alone
  return (domains, metrics)

