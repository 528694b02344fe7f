# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""A sweep's summary: the setting selected per cell, seed statistics, the
paired differences against the reference method, and the Markdown beside
the results table.

As Houlsby et al. (2019) do, the best setting per (task, method, size) is
picked on dev, by the mean over seeds of the task's GLUE score (its primary
metric, or the mean of two where GLUE averages them); the summary reports
the mean, standard deviation and a bootstrap 95% interval over seeds, and
every method against the registry's reference method (plain fine-tuning) as
a paired difference per task (same seeds). Cells that show no sign of
learning are marked: a classification cell at the majority class's value, a
regression cell no better than a constant answer.
"""

import collections
import json
import os

import numpy as np

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import methods


def method_is_reference(method):
  """Whether a spec is the registry's reference method with its defaults."""
  return method == methods.reference().name


def bootstrap_interval(values, num_samples=10000, seed=0):
  """95% percentile bootstrap interval of the mean of `values`."""
  values = np.asarray(values, dtype=np.float64)
  if len(values) < 2:
    return (float(values.mean()), float(values.mean()))
  rng = np.random.RandomState(seed)
  means = values[rng.randint(0, len(values), (num_samples, len(values)))]
  means = means.mean(axis=1)
  return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def summarize(rows):
  """Selection and statistics over seeds.

  Returns:
    dict with "selected": {(task, method, size): entry} where entry holds
    the setting (lr, epochs, init_scale), the per-seed values {seed: value},
    mean, std, interval, trained_percent; and "paired": {(task, size):
    {mean, interval, n}} for each method minus the reference method
    (full fine-tuning) over common seeds.
  """
  groups = collections.defaultdict(lambda: collections.defaultdict(dict))
  # What each run is ranked by: (GLUE's score of the task, dev loss).
  ranks = collections.defaultdict(lambda: collections.defaultdict(dict))
  info = {}
  for row in rows:
    cell = (row["task"], row["method"], row["adapter_size"])
    setting = (row["learning_rate"], row["epochs"], row["init_scale"])
    groups[cell][setting][row["seed"]] = float(row["primary_value"])
    ranks[cell][setting][row["seed"]] = selection_rank(row)
    info[cell] = (row["primary_metric"], float(row["trained_percent"]),
                  int(row["trained_parameters"]),
                  int(row["total_parameters"]))
  selected = {}
  for (cell, settings) in groups.items():
    best = max(sorted(settings), key=selection_key(ranks[cell]))
    values = settings[best]
    array = np.array([values[k] for k in sorted(values)])
    selected[cell] = {
        "learning_rate": best[0], "epochs": best[1], "init_scale": best[2],
        "values": dict(values), "ranks": dict(ranks[cell][best]),
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        "interval": bootstrap_interval(array),
        "metric": info[cell][0], "trained_percent": info[cell][1],
        "trained_parameters": info[cell][2],
        "total_parameters": info[cell][3],
    }
  # Adapters with the size chosen per task among those run (the paper's
  # "size tuned per task"), compared on the seeds every size's chosen
  # setting ran.
  tuned = {}
  for (task, method, size) in selected:
    if not size:
      continue
    sizes = {k[2]: selected[k]["ranks"] for k in selected
             if k[0] == task and k[1] == method}
    if len(sizes) > 1 and (task, method) not in tuned:
      best = max(sorted(sizes, key=int), key=selection_key(sizes))
      tuned[(task, method)] = dict(selected[(task, method, best)], size=best)
  paired = {}
  for ((task, method, size), entry) in selected.items():
    reference = selected.get((task, methods.reference().name, ""))
    if method_is_reference(method) or not reference:
      continue
    seeds = sorted(set(entry["values"]) & set(reference["values"]))
    if not seeds:
      continue
    differences = [entry["values"][s] - reference["values"][s] for s in seeds]
    paired[(task, method, size)] = {
        "mean": float(np.mean(differences)),
        "interval": bootstrap_interval(differences), "n": len(seeds)}
  return {"selected": selected, "paired": paired, "size_tuned": tuned}


def selection_rank(row):
  """What a row's setting is ranked by: (its score, its dev loss or None)."""
  metrics = json.loads(row.get("metrics") or "{}")
  return (selection_score(row, metrics), metrics.get("eval_loss"))


def selection_score(row, metrics=None):
  """What a row's setting is selected by: GLUE's score of its task, the mean
  of its `glue_score_metrics` (MRPC: F1 and accuracy; most tasks: the
  primary metric alone), from the row's metrics (parsed, or read from the
  row); the primary value where the row holds no such metrics (a hand-made
  table)."""
  names = glue.get_task(row["task"]).glue_score_metrics
  if metrics is None:
    metrics = json.loads(row.get("metrics") or "{}")
  if all(name in metrics for name in names):
    return float(np.mean([metrics[name] for name in names]))
  return float(row["primary_value"])


def selection_key(settings):
  """How the settings of one cell are ranked: by the mean over the seeds
  every setting ran (typically the pilot's), so that seeds added later to the
  chosen setting neither favour nor penalise it against settings that ran
  fewer; with no common seed, over each setting's own seeds. Ties go to the
  lower mean dev loss over the same seeds (settings that all answer the
  majority class tie exactly; the one that fits the dev set best is the one
  closest to learning, which a longer schedule can build on; a setting
  without recorded losses ranks below one with them), then to the setting
  with more seeds, then to the first in sorted order.

  Args:
    settings: {setting: {seed: (value, dev loss or None)}}.
  """
  common = set.intersection(*(set(v) for v in settings.values()))

  def key(setting):
    values = settings[setting]
    seeds = sorted(common) if common else sorted(values)
    loss = [values[k][1] for k in seeds]
    fit = (-float(np.mean(loss)) if None not in loss else -float("inf"))
    return (float(np.mean([values[k][0] for k in seeds])), fit, len(values))
  return key


# The grid flags --at_selected may keep as given, by the Run field they set.
SELECTED_FIELDS = {"learning_rates": "learning_rate", "epochs": "epochs",
                   "init_scales": "init_scale"}


def runs_at_selected(runs, rows, keep=()):
  """The grid's runs moved to each cell's selected setting.

  For every (task, method, size) of `runs`, the learning rate, epochs and
  init scale become those `summarize(rows)` selects, except the grid flags
  in `keep` (keys of SELECTED_FIELDS), which stay as the grid gives them
  (e.g. a longer schedule at the selected learning rate); the seeds stay.
  Cells with no finished run have nothing to select and are left out.

  Returns:
    (runs, cells left out).
  """
  selected = summarize(rows)["selected"]
  kept = {SELECTED_FIELDS[name] for name in keep}
  moved = []
  left_out = []
  for run in runs:
    cell = (run.task, run.method, run.adapter_size)
    entry = selected.get(cell)
    if entry is None:
      if cell not in left_out:
        left_out.append(cell)
      continue
    # A kept field stays as the grid gives it, unless the method has no
    # such axis (an init scale for full fine-tuning): then it is selected.
    run = run._replace(**{field: entry[field]
                          for field in SELECTED_FIELDS.values()
                          if field not in kept or not getattr(run, field)})
    if run not in moved:
      moved.append(run)
  return (moved, left_out)


def method_label(method, size):
  return "%s (m=%s)" % (method, size) if size else method


def majority_baselines(tasks, glue_dir):
  """{task: the dev primary metric of always answering the most frequent
  training label}, for the classification tasks whose files are there."""
  baselines = {}
  for (name, task, (train, dev)) in _labels_of(tasks, glue_dir, False,
                                               ("train", "dev")):
    majority = collections.Counter(train).most_common(1)[0][0]
    baselines[name] = float(task.metrics([majority] * len(dev), dev)[
        task.primary_metric])
  return baselines


def constant_answer_losses(tasks, glue_dir):
  """{task: the dev squared error of the best constant answer}, for the
  regression tasks whose files are there: the variance of the dev labels
  (any constant c scores that plus (mean - c)^2). A model whose dev loss
  is no lower explains none of the labels' variance (R^2 <= 0)."""
  return {name: float(np.var(np.asarray(dev, dtype=np.float64)))
          for (name, _, (dev,)) in _labels_of(tasks, glue_dir, True,
                                              ("dev",))}


def _labels_of(tasks, glue_dir, regression, splits):
  """(name, task, the label values of each of `splits`) for each of `tasks`
  that is (or is not, by `regression`) a regression task and whose files
  in `glue_dir` read; the others are left out."""
  for name in tasks:
    task = glue.get_task(name)
    data_dir = os.path.join(glue_dir, name)
    if task.is_regression != regression or not os.path.isdir(data_dir):
      continue
    readers = {"train": task.get_train_examples,
               "dev": task.get_dev_examples}
    try:
      labels = tuple(task.label_values(readers[split](data_dir))
                     for split in splits)
    except (errors.InputError, OSError, ValueError):
      continue
    yield (name, task, labels)


def summary_markdown(rows, summary, command, baselines=None,
                     constant_losses=None):
  """The summary as Markdown: the paper-style table, then the details.

  Args:
    baselines: (optional) {task: majority-class dev value}, a row of its own.
    constant_losses: (optional) {regression task: the dev squared error of
      the best constant answer}, for marking cells that learned nothing.
  """
  selected = summary["selected"]
  tasks = sorted({task for (task, _, _) in selected})
  lines = ["# Sweep summary", "",
           "%d finished runs. Made by:" % len(rows), "", "```shell",
           command, "```", "",
           "Dev %s of the best setting per (task, method, size), mean over "
           "seeds (number of seeds in brackets)." % "/".join(
               sorted({e["metric"] for e in selected.values()})), ""]
  composite = ["%s: the mean of %s" % (t, " and ".join(
      m.replace("eval_", "") for m in glue.get_task(t).glue_score_metrics))
                for t in tasks if len(glue.get_task(t).glue_score_metrics) > 1]
  if composite:
    lines += ["Settings are selected by GLUE's score of each task (%s), the "
              "metric alone elsewhere." % "; ".join(composite), ""]
  shared = sorted({row.get("run_flags") or "" for row in rows} - {""})
  if shared:
    lines += ["Every run also had: %s." % "; ".join(
        "`%s`" % flags for flags in shared), ""]
  lines += _main_table(summary, tasks, NoLearning(baselines or {},
                                                  constant_losses or {}))
  lines += _selected_table(selected)
  if summary["paired"]:
    lines += _paired_table(summary["paired"])
  return "\n".join(lines) + "\n"


def _main_table(summary, tasks, no_learning):
  """The paper-style table: a row per (method, size), one per method with
  the size tuned per task, and the majority class."""
  baselines = no_learning.majority
  selected = summary["selected"]
  cells = sorted({(method, size) for (_, method, size) in selected},
                 key=lambda c: (not method_is_reference(c[0]), c[0],
                                int(c[1] or 0)))
  header = ["method"] + tasks + ["average", "trained % (per task)",
                                 "parameters for %d tasks" % len(tasks)]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for (method, size) in cells:
    entries = [selected.get((t, method, size)) for t in tasks]
    values = ["%.4f (%d)%s" % (e["mean"], len(e["values"]),
                               no_learning.mark(e, t)) if e else "-"
              for (t, e) in zip(tasks, entries)]
    (average, share, total) = _row_totals(
        [e for e in entries if e], len(tasks),
        methods.get(method.partition(":")[0]).whole_model)
    lines.append("| " + " | ".join([method_label(method, size)] + values +
                                   [average, share, total]) + " |")
  for (method, _) in sorted({(m, None) for (_, m) in summary.get(
      "size_tuned", {})}):
    entries = [summary["size_tuned"].get((t, method)) for t in tasks]
    values = ["%.4f (m=%s, %d)%s" % (e["mean"], e["size"], len(e["values"]),
                                     no_learning.mark(e, t))
              if e else "-" for (t, e) in zip(tasks, entries)]
    (average, share, total) = _row_totals([e for e in entries if e],
                                          len(tasks), False)
    lines.append("| %s (m tuned per task) | %s | %s | %s | %s |" % (
        method, " | ".join(values), average, share, total))
  if baselines:
    values = ["%.4f" % baselines[t] if t in baselines else "-" for t in tasks]
    average = ("%.4f" % np.mean([baselines[t] for t in tasks])
               if all(t in baselines for t in tasks) else "-")
    lines.append("| majority class (no training) | %s | %s | 0 | 0 |" % (
        " | ".join(values), average))
  return lines + no_learning.footnotes(lines)


# Marks a cell whose every seed scored exactly what the majority class does.
MAJORITY_MARK = "\u2020"
# Marks a regression cell whose every seed's dev loss is no lower than the
# best constant answer's.
CONSTANT_MARK = "\u2021"


class NoLearning(collections.namedtuple("NoLearning",
                                        ["majority", "constant_losses"])):
  """Marks the cells whose every seed did no better than a constant answer:
  classification at exactly the majority class's value (MRPC's F1 of 0.8122
  is such a number: believable, and no learning), regression with a dev
  loss no lower than the best constant answer's (R^2 <= 0: STS-B's Spearman
  of such a model is near 0, or a weak ranking under a wrong scale)."""

  def mark(self, entry, task):
    """The mark of `entry` (a selected cell) on `task`, or ""."""
    if task in self.majority and all(
        abs(v - self.majority[task]) < 5e-5
        for v in entry["values"].values()):
      return MAJORITY_MARK
    losses = [loss for (_, loss) in entry.get("ranks", {}).values()]
    if task in self.constant_losses and losses and all(
        loss is not None and loss >= self.constant_losses[task]
        for loss in losses):
      return CONSTANT_MARK
    return ""

  def footnotes(self, lines):
    """The footnotes of the marks `lines` use."""
    notes = []
    if any(MAJORITY_MARK in line for line in lines):
      notes.append("%s: every seed's value is the majority class's (a model "
                   "that answers the most frequent label everywhere scores "
                   "it): no sign that the method learned the task at this "
                   "setting." % MAJORITY_MARK)
    if any(CONSTANT_MARK in line for line in lines):
      notes.append("%s: every seed's dev squared error is at least the dev "
                   "labels' variance, the error of the best constant answer "
                   "(R\u00b2 <= 0): the predictions explain none of the "
                   "scores' variance at this setting, whatever their rank "
                   "correlation." % CONSTANT_MARK)
    return [line for note in notes for line in ("", note)]


def _row_totals(present, num_tasks, whole_model):
  """A row's average, trained shares and the parameters stored for all its
  tasks: one backbone shared by all tasks plus each task's own parameters,
  or for a whole-model method (full fine-tuning) a model per task. The
  average and the total are "-" until the method has run on every task."""
  average = ("%.4f" % np.mean([e["mean"] for e in present])
             if len(present) == num_tasks else "-")
  share = "/".join("%.2f" % e["trained_percent"] for e in present)
  if len(present) < num_tasks:
    # A method that has not run on every task yet: no total, as no average.
    total = "-"
  elif whole_model:
    total = sum(e["total_parameters"] for e in present)
  else:
    backbone = present[0]["total_parameters"] - present[0][
        "trained_parameters"]
    total = backbone + sum(e["trained_parameters"] for e in present)
  return (average, share, total if total == "-" else "{:,}".format(total))


def _selected_table(selected):
  """Each cell's selected setting, its seeds' values and their statistics."""
  lines = ["", "## Selected settings, seeds and intervals", "",
           "| task | method | lr | epochs | init | seeds | mean | std | "
           "95% bootstrap interval |", "|---|---|---|---|---|---|---|---|---|"]
  for (task, method, size) in sorted(selected):
    e = selected[(task, method, size)]
    lines.append("| %s | %s | %s | %s | %s | %s | %.4f | %.4f | [%.4f, "
                 "%.4f] |" % (task, method_label(method, size),
                              e["learning_rate"], e["epochs"],
                              e["init_scale"] or "-",
                              ", ".join("%s: %.4f" % (k, v) for (k, v) in
                                        sorted(e["values"].items())),
                              e["mean"], e["std"], e["interval"][0],
                              e["interval"][1]))
  return lines


def _paired_table(paired):
  """Each method minus the reference method, paired by seed."""
  lines = ["", "## Each method minus %s, paired by seed" %
           methods.reference().name, "",
           "| task | method | seeds | mean difference | 95% bootstrap "
           "interval | inside seed noise? |", "|---|---|---|---|---|---|"]
  for (key, p) in sorted(paired.items()):
    (task, method, size) = key
    if p["n"] < 2:
      inside = "one seed: no interval yet"
    else:
      inside = ("yes" if p["interval"][0] <= 0.0 <= p["interval"][1]
                else "no")
    lines.append("| %s | %s | %d | %+.4f | [%+.4f, %+.4f] | %s |" % (
        task, method_label(method, size), p["n"], p["mean"],
        p["interval"][0], p["interval"][1], inside))
  if any(p["n"] < 5 for p in paired.values()):
    lines += ["", "With fewer than 5 seeds a bootstrap interval is rough: "
              "it cannot be wider than the seeds' own range."]
  return lines


def summary_path(results_path):
  return os.path.splitext(results_path)[0] + ".md"


def write_summary(results_path, rows, command, glue_dir):
  """The summary of `rows` beside `results_path`, with the majority-class
  row and the marks of cells that learned nothing for the tasks whose files
  are in `glue_dir`."""
  tasks = sorted({row["task"] for row in rows})
  fileio.write_text(summary_path(results_path), summary_markdown(
      rows, summarize(rows), command, majority_baselines(tasks, glue_dir),
      constant_answer_losses(tasks, glue_dir)))
