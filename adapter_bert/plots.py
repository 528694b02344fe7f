# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The paper's pictures, drawn from scripts/sweep.py's results files (PNG).

  python scripts/plot_results.py --results=results/sweep.csv \\
      --ablation_results=results/ablation.csv --output_dir=results

writes, from whatever rows the files hold so far:

- `parameters_vs_metric.png`: per task, and averaged over the tasks, the
  dev metric of each method's selected setting (mean over seeds, bars:
  standard deviation) against its trained parameters on a log axis, with
  the Pareto front; adapter methods are lines over their sizes (Houlsby et
  al. 2019, Figure 3);
- `ablation_<run>.png`: per ablated run, the dev metric with the adapters of
  layers first..last switched off (Figure 6);
- `init_scale.png`: the dev metric against the adapters' init scale, when the
  sweep ran more than one (Figure 7), one line per task and size;
- `adapter_sizes.png`: the dev metric of each method run at several adapter
  sizes against the size, one panel per task (the paper's robustness to the
  bottleneck's size, Section 3.6).

`prefix` names the pictures of another table apart (`glue_` for
results/glue.csv, beside results/sweep.csv's).

Every picture is written to a temporary name and renamed.
"""

import collections
import json
import os

import matplotlib
matplotlib.use("Agg")  # no screen: files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from adapter_bert import errors
from adapter_bert import fileio
from adapter_bert import methods
from adapter_bert import sweep_summary
from adapter_bert import sweeps

# One marker per method family; adapters are lines as well.
def marker(method):
  """The matplotlib marker a method spec's method declares."""
  return methods.get(method.partition(":")[0]).marker


def has_sizes(method):
  """Whether a method spec's runs differ by adapter size (a line over m)."""
  return bool(sweeps.axis_option(method, "adapter_sizes"))


def save(figure, path):
  """Writes `figure` as PNG to `path`, atomically."""
  with fileio.atomic_path(path) as temp_path:
    with open(temp_path, "wb") as f:
      figure.savefig(f, format="png", dpi=120, bbox_inches="tight")
  plt.close(figure)
  return path


def metric_label(metric):
  return "dev " + metric.replace("eval_", "")


# The panel of the tasks' average in `plot_parameters_vs_metric`.
AVERAGE = "average"


def pareto_front(points):
  """The points no other point beats with as few or fewer parameters: each
  (parameters, metric) of `points` whose metric is above that of every point
  with fewer parameters, in order of parameters."""
  front = []
  for (parameters, value) in sorted(points, key=lambda p: (p[0], -p[1])):
    if not front or value > front[-1][1]:
      if front and front[-1][0] == parameters:
        continue
      front.append((parameters, value))
  return front


def with_average(selected):
  """`selected` (summarize's) plus an "average" task: for each (method,
  size) selected on every task, the mean of its tasks' means (the GLUE-style
  average, each task's primary metric) and of their parameter counts."""
  tasks = sorted({task for (task, _, _) in selected})
  cells = collections.defaultdict(dict)
  for ((task, method, size), entry) in selected.items():
    cells[(method, size)][task] = entry
  averaged = dict(selected)
  if len(tasks) < 2:
    return averaged
  for ((method, size), by_task) in cells.items():
    if len(by_task) == len(tasks):
      entries = list(by_task.values())
      averaged[(AVERAGE, method, size)] = {
          "mean": float(np.mean([e["mean"] for e in entries])),
          "std": 0.0, "metric": "average of the tasks' metrics",
          "trained_parameters": float(np.mean(
              [e["trained_parameters"] for e in entries]))}
  return averaged


def panel_grid(count, columns=3):
  """A figure of `count` panels, at most `columns` a row; returns (figure,
  the panels in reading order). Unused cells of the last row are removed."""
  columns = min(columns, count)
  rows = -(-count // columns)
  # Constrained layout: no panel's title or axis label runs into another's.
  (figure, axes) = plt.subplots(rows, columns, squeeze=False,
                                figsize=(5.5 * columns, 4.2 * rows),
                                layout="constrained")
  axes = list(axes.flat)
  for axis in axes[count:]:
    axis.remove()
  return (figure, axes[:count])


def method_colours(methods_run):
  """One colour per method spec, the same in every panel and picture."""
  palette = plt.get_cmap("tab20").colors
  return {method: palette[i % len(palette)] for (i, method) in
          enumerate(sorted(methods_run))}


def plot_parameters_vs_metric(rows, path, baselines=None):
  """Figure 3: dev metric against trained parameters, one panel per task and
  one for their average (methods selected on every task), with each panel's
  Pareto front (the best metric for a parameter budget) dotted.

  Args:
    baselines: (optional) {task: majority-class dev value}, drawn as a line.
  """
  selected = with_average(sweep_summary.summarize(rows)["selected"])
  tasks = sorted({task for (task, _, _) in selected} - {AVERAGE})
  if any(task == AVERAGE for (task, _, _) in selected):
    tasks.append(AVERAGE)
  # One colour per method in every panel.
  colours = method_colours({method for (_, method, _) in selected})
  (figure, axes) = panel_grid(len(tasks))
  for (axis, task) in zip(axes, tasks):
    by_method = collections.defaultdict(list)
    for ((t, method, size), entry) in selected.items():
      if t == task:
        by_method[method].append((int(size or 0), entry))
    for method in sorted(by_method):
      points = sorted(by_method[method], key=lambda p: p[0])
      x = [e["trained_parameters"] for (_, e) in points]
      y = [e["mean"] for (_, e) in points]
      err = [e["std"] for (_, e) in points]
      label = method
      if has_sizes(method):
        label += " (m=%s)" % ",".join(str(size) for (size, _) in points)
      axis.errorbar(x, y, yerr=err, marker=marker(method),
                    linestyle="-" if len(points) > 1 else "none",
                    capsize=3, markersize=8, label=label,
                    color=colours[method])
      if has_sizes(method):
        for (size, e) in points:
          axis.annotate("m=%d" % size, (e["trained_parameters"], e["mean"]),
                        textcoords="offset points", xytext=(5, -12),
                        fontsize=8)
    front = pareto_front([(e["trained_parameters"], e["mean"])
                          for ((t, _, _), e) in selected.items() if t == task])
    axis.step([x for (x, _) in front], [y for (_, y) in front], where="post",
              color="black", linestyle=":", linewidth=1,
              label="Pareto front")
    metric = next(e["metric"] for ((t, _, _), e) in selected.items()
                  if t == task)
    if baselines and task in baselines:
      axis.axhline(baselines[task], color="grey", linestyle="--",
                   linewidth=1, label="majority class")
    axis.set_xscale("log")
    axis.set_xlabel("trained parameters per task (log)")
    axis.set_ylabel(metric_label(metric))
    axis.set_title(task)
    axis.grid(True, which="both", alpha=0.3)
  # One legend, outside the data, of every method of any panel (a method run
  # on some tasks only is in their panels, not in the average's).
  legend = {}
  for axis in axes:
    for (handle, label) in zip(*axis.get_legend_handles_labels()):
      legend.setdefault(label, handle)
  figure.legend(list(legend.values()), list(legend), fontsize=8,
                loc="outside right center")
  figure.suptitle("Dev metric against trained parameters (selected setting, "
                  "mean and std over seeds)", fontsize=10)
  return save(figure, path)


def plot_ablation(table, run, path, metric=None):
  """Figure 6: first ablated layer x last ablated layer, colour = metric.

  Args:
    metric: a key of the rows' metrics ("eval_accuracy"); default the task's
      primary metric. F1 (MRPC's) is not monotone in how much is lost (a
      model that answers the majority class everywhere scores 0.81), so
      accuracy can read better.
  """
  rows = [r for r in table if r["run_id"] == run]

  def value(row):
    if not metric:
      return float(row["primary_value"])
    metrics = json.loads(row["metrics"])
    if metric not in metrics:
      raise errors.InputError("--ablation_metric=%s: the ablation of %s has "
                              "only %s" % (metric, run, ", ".join(metrics)))
    return float(metrics[metric])

  spans = [r for r in rows if r["first_layer"] != ""]
  if not spans:
    return None
  num_layers = 1 + max(int(r["last_layer"]) for r in spans)
  grid = np.full((num_layers, num_layers), np.nan)
  for r in spans:
    grid[int(r["first_layer"]), int(r["last_layer"])] = value(r)
  unablated = [value(r) for r in rows if r["first_layer"] == ""]
  figure, axis = plt.subplots(figsize=(5.2, 4.4))
  image = axis.imshow(np.ma.masked_invalid(grid), cmap="viridis",
                      origin="upper")
  for (first, last) in zip(*np.where(~np.isnan(grid))):
    axis.text(last, first, "%.2f" % grid[first, last], ha="center",
              va="center", fontsize=7, color="white")
  axis.set_xticks(range(num_layers))
  axis.set_yticks(range(num_layers))
  axis.set_xlabel("last layer with adapters off")
  axis.set_ylabel("first layer with adapters off")
  figure.colorbar(image, ax=axis, label=metric_label(
      metric or rows[0]["primary_metric"]))
  axis.set_title("%s\nadapters of layers first..last off at eval%s" % (
      run, "; all on: %.4f" % unablated[0] if unablated else ""), fontsize=8)
  return save(figure, path)


def ablation_metric_of(spec):
  """The ablation heat maps' metric per task, from --ablation_metric: empty
  (each task's primary metric), one metric for every task (`eval_accuracy`),
  or `TASK=metric` pairs (`MRPC=eval_accuracy,CoLA=eval_mcc`; a task not
  named keeps its primary metric). Returns task -> metric or None."""
  if not spec or "=" not in spec:
    return lambda task: spec or None
  chosen = {}
  for pair in spec.split(","):
    (task, _, metric) = pair.partition("=")
    if not task.strip() or not metric.strip():
      raise errors.InputError(
          "--ablation_metric=%s: %r is not TASK=metric" % (spec, pair))
    chosen[task.strip()] = metric.strip()
  return chosen.get


def plot_init_scale(rows, path):
  """Figure 7: dev metric against adapter init scale (mean over the runs at
  each scale, bars: std), one line per (task, method, size, lr, epochs)."""
  lines = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in rows:
    if row["init_scale"]:
      key = (row["task"], row["method"], row["adapter_size"],
             row["learning_rate"], row["epochs"])
      lines[key][float(row["init_scale"])].append(float(row["primary_value"]))
  lines = {k: v for (k, v) in lines.items() if len(v) > 1}
  if not lines:
    return None
  figure, axis = plt.subplots(figsize=(6, 4.2))
  for (key, by_scale) in sorted(lines.items()):
    scales = sorted(by_scale)
    axis.errorbar(scales, [np.mean(by_scale[s]) for s in scales],
                  yerr=[np.std(by_scale[s]) for s in scales], marker="o",
                  capsize=3, label="%s %s m=%s lr %s" % key[:4])
  axis.set_xscale("log")
  axis.set_xlabel("adapter init standard deviation (log)")
  axis.set_ylabel("dev primary metric")
  axis.grid(True, which="both", alpha=0.3)
  axis.legend(fontsize=8)
  return save(figure, path)


def sizes_by_task(selected):
  """{task: {method: [(size, entry), ...] in order of size}} for each method
  selected at two or more adapter sizes on a task."""
  found = collections.defaultdict(lambda: collections.defaultdict(list))
  for ((task, method, size), entry) in selected.items():
    if size:
      found[task][method].append((int(size), entry))
  return {task: {method: sorted(points, key=lambda p: p[0])
                 for (method, points) in by_method.items() if len(points) > 1}
          for (task, by_method) in found.items()
          if any(len(points) > 1 for points in by_method.values())}


def plot_adapter_sizes(rows, path, baselines=None):
  """The dev metric against the adapter size (log 2), one panel per task, one
  line per method run at several sizes (selected setting, mean and std over
  seeds), with full fine-tuning and the majority class as levels to read the
  gap against. None when no method ran at two sizes."""
  selected = sweep_summary.summarize(rows)["selected"]
  by_task = sizes_by_task(selected)
  if not by_task:
    return None
  reference = methods.reference().name
  colours = method_colours({m for by in by_task.values() for m in by})
  (figure, axes) = panel_grid(len(by_task))
  for (axis, task) in zip(axes, sorted(by_task)):
    for (method, points) in sorted(by_task[task].items()):
      axis.errorbar([size for (size, _) in points],
                    [e["mean"] for (_, e) in points],
                    yerr=[e["std"] for (_, e) in points], capsize=3,
                    marker=marker(method), color=colours[method], label=method)
    full = selected.get((task, reference, ""))
    if full:
      axis.axhline(full["mean"], color="black", linestyle=":", linewidth=1,
                   label="%s (mean over seeds)" % reference)
    if baselines and task in baselines:
      axis.axhline(baselines[task], color="grey", linestyle="--",
                   linewidth=1, label="majority class")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("adapter size m (log 2)")
    axis.set_ylabel(metric_label(next(iter(by_task[task].values()))[0][1][
        "metric"]))
    axis.set_title(task)
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=8)
  figure.suptitle("Dev metric against adapter size (selected setting per "
                  "size, mean and std over seeds)", fontsize=10)
  return save(figure, path)


def plot_all(results_path, ablation_path, output_dir, ablation_metric=None,
             glue_dir=None, prefix=""):
  """Every picture the files allow; returns the paths written.

  Args:
    prefix: put before every picture's name (`glue_`), to keep the pictures
      of two tables apart in one folder.
  """
  try:
    fileio.check_writable_folder(output_dir)
  except ValueError as e:
    raise errors.InputError("--output_dir=%s: %s" % (output_dir, e))
  metric_of = ablation_metric_of(ablation_metric)  # refused before drawing
  written = []
  rows = sweeps.read_results(results_path)
  if not rows:
    raise errors.InputError("--results=%s: no finished run to plot" %
                            results_path)
  tasks = sorted({r["task"] for r in rows})
  baselines = (sweep_summary.majority_baselines(tasks, glue_dir) if glue_dir
               else None)

  def named(name):
    return os.path.join(output_dir, prefix + name)
  written.append(plot_parameters_vs_metric(
      rows, named("parameters_vs_metric.png"), baselines))
  written.append(plot_init_scale(rows, named("init_scale.png")))
  written.append(plot_adapter_sizes(rows, named("adapter_sizes.png"),
                                    baselines))
  if ablation_path:
    table = sweeps.read_results(ablation_path)
    if not table:
      raise errors.InputError("--ablation_results=%s: no row to plot" %
                              ablation_path)
    for run in sorted({r["run_id"] for r in table}):
      task = next(r["task"] for r in table if r["run_id"] == run)
      written.append(plot_ablation(table, run, named("ablation_%s.png" % run),
                                   metric_of(task)))
  return [path for path in written if path]

