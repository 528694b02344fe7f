# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The paper's Figure 6 from a sweep: every finished adapter run evaluated
with the adapters of each span of layers switched off (no retraining), into
a table of its own (CSV, a Markdown grid beside it). Resumable: a (run,
span) already in the table is not evaluated again."""

import json
import os

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import sweep_records
from adapter_bert import sweep_summary
from adapter_bert import sweeps
from adapter_bert.methods import base


# Columns of the ablation table: one row per (trained run, ablated span).
ABLATION_COLUMNS = ("run_id", "task", "method", "adapter_size", "seed",
                    "first_layer", "last_layer", "metrics", "primary_metric",
                    "primary_value", "context_id")


def span_name(first, last):
  """The --ablate_adapters value of a span, as its result file names it."""
  return str(first) if first == last else "%d-%d" % (first, last)


def ablation_row(run, first, last, metric_values, context_id):
  primary = glue.get_task(run.task).primary_metric
  return {"run_id": sweeps.run_id(run), "task": run.task, "method": run.method,
          "adapter_size": run.adapter_size, "seed": run.seed,
          "first_layer": str(first), "last_layer": str(last),
          "metrics": json.dumps(metric_values, sort_keys=True),
          "primary_metric": primary, "primary_value": metric_values[primary],
          "context_id": context_id}


def run_ablation(grid, options, results_path, ablation_path,
                 at_selected=False, dry_run=False):
  """Evaluates every finished adapter run of `grid` with the adapters of each
  span of layers switched off (run_classifier.py
  --ablate_adapters=each_span: one process, graph and session per run; no
  retraining), as the paper's Figure 6. Resumable: a (run, span) with a row in
  `ablation_path` is not evaluated again. A row with empty layers is the run
  with every adapter on (its own dev result).

  Returns:
    the rows of the ablation table.
  """
  rows = sweeps.read_results(results_path)
  context = sweep_records.Context(options)
  sweeps.check_table(rows, context, results_path)
  finished = {(row["run_id"], row["context_id"]) for row in rows}
  runs = sweeps.expand_grid(grid)
  if at_selected:
    (runs, _) = sweep_summary.runs_at_selected(runs, rows)
  runs = [r for r in runs if sweeps.adds_switchable_parts(r.method) and (
      sweeps.run_id(r), context.of(r.task)["context_id"]) in finished]
  with open(os.path.join(options["bert_dir"], "bert_config.json")) as f:
    num_layers = int(json.load(f)["num_hidden_layers"])
  table = sweeps.read_results(ablation_path)
  if any(not r.get("context_id") for r in table):
    raise errors.InputError(
        "--ablation_results=%s was written by an older sweep.py, which did "
        "not record its runs' context; move it aside or give another "
        "--ablation_results" % ablation_path)
  done = {(r["run_id"], r["context_id"], r["first_layer"], r["last_layer"])
          for r in table}
  print("%s: ablation of %d trained runs x %d spans of %d layers into %s" % (
      sweeps.PROGRAM, len(runs), len(base.layer_spans(num_layers)), num_layers,
      ablation_path), flush=True)
  children = sweeps.Children()
  evaluated = []

  def record(row):
    """After every span: a stopped ablation keeps what it evaluated."""
    evaluated.append(row)
    table.append(row)
    sweeps.write_results(ablation_path, table, ABLATION_COLUMNS)
    fileio.write_text(sweep_summary.summary_path(ablation_path),
                      ablation_markdown(table, num_layers))

  with sweeps.stop_on_signals(children):
    for run in runs:
      if children.signal_name:
        break
      context_id = context.of(run.task)["context_id"]
      output_dir = sweeps.folder_of(run, options, context)
      pending = [span for span in [("", "")] + base.layer_spans(num_layers) if
                 (sweeps.run_id(run), context_id, str(span[0]), str(span[1]))
                 not in done]
      if not pending:
        continue
      if dry_run:
        if any(first != "" for (first, _) in pending):
          print(" ".join(sweeps.run_command(run, output_dir, options,
                                     do_train="false",
                                     ablate_adapters=base.EACH_SPAN)))
        continue
      try:
        _ablate_run(run, pending, output_dir, context_id, options, children,
                    record)
      except sweeps.Stopped:
        break
  if children.signal_name:
    raise errors.InputError(
        "stopped by %s: %d spans evaluated and recorded; run the same "
        "command again to continue" % (children.signal_name, len(evaluated)))
  return table


def _ablate_run(run, spans, output_dir, context_id, options, children,
                record):
  """Evaluates `spans` ((first, last); ("", "") is every adapter on) of one
  finished run, under the run's claim, calling `record(row)` for each.

  Raises:
    Stopped: the sweep was told to stop.
  """
  claim = sweep_records.wait_for(lambda: sweep_records.try_claim(output_dir),
                                 lambda: children.signal_name)
  if claim is None:
    raise sweeps.Stopped("not started")
  try:
    if not os.path.exists(os.path.join(output_dir, "checkpoint")):
      # Its row is there but its model is gone (another machine, a cleaned
      # /tmp): train it again; a seed gives the same model.
      print("%s: %s has no checkpoint in %s; training it again" % (
          sweeps.PROGRAM, sweeps.run_id(run), output_dir), flush=True)
      claim.release()
      claim = None
      fileio.remove_quietly(os.path.join(output_dir, sweep_records.RECORD))
      sweeps.execute(run, options, children, wait=True)
      claim = sweep_records.wait_for(
          lambda: sweep_records.try_claim(output_dir),
          lambda: children.signal_name)
      if claim is None:
        raise sweeps.Stopped("not started")
    if any(first != "" for (first, _) in spans):
      # Every span in one process, one graph and one session.
      command = sweeps.run_command(run, output_dir, options, do_train="false",
                            ablate_adapters=base.EACH_SPAN)
      log_path = os.path.join(output_dir, "ablation.log")
      with open(log_path, "a") as log:
        returncode = children.wait(children.start(command, log))
      if returncode != 0 and children.signal_name:
        raise sweeps.Stopped("stopped")
      if returncode != 0:
        raise errors.InputError("ablation of %s failed (exit %d); see %s" % (
            sweeps.run_id(run), returncode, log_path))
    for (first, last) in spans:
      if first == "":
        # Every adapter on: the dev result of the model that is ablated.
        name = "eval_results.txt"
      else:
        name = "eval_results_ablated_%s.txt" % span_name(first, last)
      results = sweeps.read_eval_results(os.path.join(output_dir, name))
      metric_values = {k: v for (k, v) in results.items()
                       if k.startswith("eval_") and k != "eval_loss"}
      row = ablation_row(run, first, last, metric_values, context_id)
      record(row)
      if first != "":
        print("%s ablated %s: %s = %.4f" % (
            sweeps.run_id(run), span_name(first, last), row["primary_metric"],
            row["primary_value"]), flush=True)
  finally:
    if claim is not None:
      claim.release()


def ablation_markdown(table, num_layers):
  """One grid per trained run: first ablated layer x last ablated layer."""
  lines = ["# Adapter ablation", "",
           "Dev metric of a trained model with the adapters of layers "
           "first..last switched off at eval time (no retraining); "
           "`python scripts/sweep.py ... --ablation_results=...` made it.", ""]
  for run in sorted({r["run_id"] for r in table}):
    rows = [r for r in table if r["run_id"] == run]
    full = [r for r in rows if r["first_layer"] == ""]
    values = {(int(r["first_layer"]), int(r["last_layer"])):
              float(r["primary_value"]) for r in rows if r["first_layer"] != ""}
    lines += ["## %s" % run, "",
              "%s with every adapter on: %s" % (
                  rows[0]["primary_metric"],
                  "%.4f" % float(full[0]["primary_value"]) if full else "-"),
              "", "| first \\ last | " + " | ".join(
                  str(k) for k in range(num_layers)) + " |",
              "|" + "---|" * (num_layers + 1)]
    for first in range(num_layers):
      cells = ["%.4f" % values[(first, last)] if (first, last) in values
               else "" for last in range(num_layers)]
      lines.append("| %d | %s |" % (first, " | ".join(cells)))
    lines.append("")
  return "\n".join(lines)
