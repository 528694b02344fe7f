"""scripts/plot_results.py (adapter_bert.plots): the paper's pictures from
hand-made results files."""

import csv
import os

import pytest

from conftest import assert_input_error
from adapter_bert import errors
from adapter_bert import plots
from adapter_bert import sweep_ablation
from adapter_bert import sweep_summary
from adapter_bert import sweeps
from adapter_bert.methods import base

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_table(path, rows, columns):
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
      writer.writerow({k: row.get(k, "") for k in columns})
  return path


def sweep_rows(init_scales=("1e-3",)):
  rows = []
  cells = [("adapters", "8", 10), ("adapters", "64", 80), ("full", "", 1000),
           ("head", "", 2), ("top_layers:1", "", 300)]
  for task in ("MRPC", "RTE"):
    for (method, size, trained) in cells:
      for scale in (init_scales if size else ("",)):
        for seed in ("1", "2"):
          rows.append({
              "run_id": "%s-%s-%s-%s-%s" % (task, method, size, scale, seed),
              "task": task, "method": method, "adapter_size": size,
              "learning_rate": "1e-3", "epochs": "3", "init_scale": scale,
              "seed": seed, "trained_parameters": str(trained),
              "total_parameters": "1000",
              "trained_percent": "%.3f" % (trained / 10.0),
              "primary_metric": "eval_accuracy",
              "primary_value": str(0.5 + trained / 4000.0 + 0.01 * int(seed)),
              "metrics": "{}"})
  return rows


def ablation_rows(num_layers=3):
  rows = [{"run_id": "MRPC-adapters-m64", "first_layer": "",
           "last_layer": "", "primary_metric": "eval_f1",
           "primary_value": "0.85",
           "metrics": '{"eval_accuracy": 0.8, "eval_f1": 0.85}'}]
  for (first, last) in base.layer_spans(num_layers):
    lost = 0.05 * (last - first + 1)
    rows.append({"run_id": "MRPC-adapters-m64", "first_layer": str(first),
                 "last_layer": str(last), "primary_metric": "eval_f1",
                 "primary_value": str(0.85 - lost),
                 "metrics": '{"eval_accuracy": %f, "eval_f1": %f}' % (
                     0.8 - lost, 0.85 - lost)})
  return rows


def is_png(path):
  with open(path, "rb") as f:
    return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 5000


def test_every_picture_is_drawn(tmp_path):
  results = write_table(str(tmp_path / "sweep.csv"),
                        sweep_rows(init_scales=("1e-4", "1e-2", "1")),
                        sweeps.COLUMNS)
  ablation = write_table(str(tmp_path / "ablation.csv"), ablation_rows(),
                         sweep_ablation.ABLATION_COLUMNS)
  written = plots.plot_all(results, ablation, str(tmp_path / "out"))
  names = sorted(os.path.basename(p) for p in written)
  assert names == ["ablation_MRPC-adapters-m64.png", "adapter_sizes.png",
                   "init_scale.png", "parameters_vs_metric.png"]
  assert all(is_png(p) for p in written)
  # Nothing but the pictures: no temporary file is left behind.
  assert sorted(os.listdir(str(tmp_path / "out"))) == names


def test_one_init_scale_draws_no_init_scale_picture(tmp_path):
  results = write_table(str(tmp_path / "sweep.csv"), sweep_rows(),
                        sweeps.COLUMNS)
  written = plots.plot_all(results, None, str(tmp_path / "out"))
  assert [os.path.basename(p) for p in written] == [
      "parameters_vs_metric.png", "adapter_sizes.png"]


def test_a_prefix_keeps_two_tables_pictures_apart(tmp_path):
  """results/glue.csv's pictures beside results/sweep.csv's, none replaced."""
  out = tmp_path / "out"
  results = write_table(str(tmp_path / "sweep.csv"), sweep_rows(),
                        sweeps.COLUMNS)
  ablation = write_table(str(tmp_path / "ablation.csv"), ablation_rows(),
                         sweep_ablation.ABLATION_COLUMNS)
  first = plots.plot_all(results, None, str(out))
  before = {p: open(p, "rb").read() for p in first}
  second = plots.plot_all(results, ablation, str(out), prefix="glue_")
  assert sorted(os.path.basename(p) for p in second) == [
      "glue_ablation_MRPC-adapters-m64.png", "glue_adapter_sizes.png",
      "glue_parameters_vs_metric.png"]
  assert all(open(p, "rb").read() == data for (p, data) in before.items())
  assert len(os.listdir(str(out))) == 5


def test_one_size_per_method_draws_no_size_picture(tmp_path):
  rows = [r for r in sweep_rows() if r["adapter_size"] != "8"]
  assert plots.plot_adapter_sizes(rows, str(tmp_path / "s.png")) is None
  assert not os.path.exists(str(tmp_path / "s.png"))


@pytest.fixture
def saved_figures(monkeypatch):
  """The figures adapter_bert.plots saves, in order (they are still written)."""
  figures = []
  real_save = plots.save

  def keep(figure, path):
    figures.append(figure)
    return real_save(figure, path)
  monkeypatch.setattr(plots, "save", keep)
  return figures


def test_adapter_sizes_form_one_line_per_method(tmp_path, saved_figures):
  """The figure's data: adapters are one series over their sizes."""
  import matplotlib.pyplot as plt
  rows = sweep_rows()
  plots.plot_parameters_vs_metric(rows, str(tmp_path / "p.png"),
                                  {"MRPC": 0.6})
  (mrpc, rte, average) = saved_figures[-1].axes
  assert [a.get_title() for a in (mrpc, rte, average)] == [
      "MRPC", "RTE", plots.AVERAGE]
  series = {container.get_label(): list(container.lines[0].get_xdata())
            for container in mrpc.containers}
  assert series["adapters (m=8,64)"] == [10, 80]
  assert series["full"] == [1000]
  # Each series has the marker its method declares; only adapters have sizes.
  markers = {container.get_label().split(" (m=")[0]:
             container.lines[0].get_marker() for container in mrpc.containers}
  assert markers == {spec: plots.marker(spec) for spec in
                     ("adapters", "full", "head", "top_layers:1")}
  assert len(set(markers.values())) == len(markers)
  # The majority-class line, where its value is known.
  lines = {line.get_label(): list(line.get_ydata()) for line in
           mrpc.get_lines()}
  assert lines["majority class"] == [0.6, 0.6]
  assert "majority class" not in [l.get_label() for l in rte.get_lines()]
  # The Pareto front: here every method is better than the cheaper ones.
  assert list(lines["Pareto front"]) == sorted(lines["Pareto front"])
  front = [l for l in average.get_lines() if l.get_label() == "Pareto front"]
  assert list(front[0].get_xdata()) == [2, 10, 80, 300, 1000]
  plt.close("all")


@pytest.mark.parametrize("spec,sizes", [
    ("adapters", True), ("adapters:noln", True), ("full", False),
    ("head", False), ("top_layers:2", False), ("bitfit", False),
])
def test_markers_and_size_lines_come_from_the_methods(spec, sizes):
  from adapter_bert import methods
  assert plots.marker(spec) == methods.get(spec.partition(":")[0]).marker
  assert plots.has_sizes(spec) == sizes


def test_empty_results_are_a_one_line_error(tmp_path):
  results = write_table(str(tmp_path / "sweep.csv"), [], sweeps.COLUMNS)
  assert_input_error(
      lambda: plots.plot_all(results, None, str(tmp_path / "out")),
      "--results=%s" % results, "no finished run")
  assert not os.path.exists(str(tmp_path / "out" / "parameters_vs_metric.png"))


def test_ablation_heat_map_holds_the_chosen_metric(tmp_path, saved_figures):
  table = ablation_rows(num_layers=3)
  for metric in (None, "eval_accuracy"):
    plots.plot_ablation(table, "MRPC-adapters-m64",
                        str(tmp_path / "a.png"), metric)
    grid = saved_figures[-1].axes[0].images[0].get_array()
    offset = 0.85 if metric is None else 0.8
    assert grid[0, 2] == pytest.approx(offset - 0.15)  # layers 0-2 off
    assert grid[1, 1] == pytest.approx(offset - 0.05)
    assert grid.mask[2, 0]  # last before first: no such span
  with pytest.raises(errors.InputError, match="--ablation_metric=eval_mcc"):
    plots.plot_ablation(table, "MRPC-adapters-m64",
                        str(tmp_path / "b.png"), "eval_mcc")


def test_an_output_dir_that_is_a_file_is_a_one_line_error(tmp_path):
  results = write_table(str(tmp_path / "sweep.csv"), sweep_rows(),
                        sweeps.COLUMNS)
  plain = tmp_path / "plain"
  plain.write_text("mine")
  assert_input_error(
      lambda: plots.plot_all(results, None, str(plain)),
      "--output_dir=%s: it is a file, not a folder" % plain)
  assert plain.read_text() == "mine"


def test_pareto_front_keeps_what_no_cheaper_point_beats():
  points = [(10, 0.70), (2, 0.60), (80, 0.69), (300, 0.80), (1000, 0.79),
            (80, 0.75), (2, 0.55)]
  assert plots.pareto_front(points) == [(2, 0.60), (10, 0.70), (80, 0.75),
                                        (300, 0.80)]
  assert plots.pareto_front([]) == []


def test_the_average_panel_holds_methods_selected_on_every_task():
  rows = sweep_rows()
  # head on MRPC only: no average for it.
  rows = [r for r in rows if not (r["method"] == "head" and
                                  r["task"] == "RTE")]
  selected = sweep_summary.summarize(rows)["selected"]
  averaged = plots.with_average(selected)
  average = {k[1:]: v for (k, v) in averaged.items()
             if k[0] == plots.AVERAGE}
  assert ("head", "") not in average
  assert set(average) == {("adapters", "8"), ("adapters", "64"),
                          ("full", ""), ("top_layers:1", "")}
  for ((method, size), entry) in average.items():
    per_task = [selected[(t, method, size)]["mean"] for t in ("MRPC", "RTE")]
    assert entry["mean"] == pytest.approx(sum(per_task) / 2)


def test_size_picture_is_each_method_over_its_sizes(tmp_path, saved_figures):
  """One line per method run at several sizes, at each size's selected
  setting; full fine-tuning and the majority class as levels."""
  rows = sweep_rows()
  # A second learning rate for adapters m=8 on MRPC, worse: not selected.
  worse = [dict(r, learning_rate="3e-3", primary_value="0.1",
                run_id=r["run_id"] + "-worse") for r in rows
           if r["task"] == "MRPC" and r["adapter_size"] == "8"]
  # A method at one size only has no line.
  single = [dict(r, method="pfeiffer", run_id=r["run_id"] + "-pf")
            for r in rows if r["adapter_size"] == "64"]
  plots.plot_adapter_sizes(rows + worse + single, str(tmp_path / "s.png"),
                           {"RTE": 0.53})
  (mrpc, rte) = saved_figures[-1].axes
  assert [mrpc.get_title(), rte.get_title()] == ["MRPC", "RTE"]
  (line,) = mrpc.containers
  assert line.get_label() == "adapters"
  assert list(line.lines[0].get_xdata()) == [8, 64]
  # Mean over seeds 1 and 2 of 0.5 + trained/4000 + 0.01 * seed.
  assert list(line.lines[0].get_ydata()) == pytest.approx(
      [0.5 + 10 / 4000 + 0.015, 0.5 + 80 / 4000 + 0.015])
  levels = {l.get_label(): l.get_ydata()[0] for l in rte.get_lines()
            if l.get_label().startswith(("full", "majority"))}
  assert levels == {"full (mean over seeds)": pytest.approx(0.5 + 0.25 +
                                                              0.015),
                    "majority class": 0.53}
  assert "majority class" not in [l.get_label() for l in mrpc.get_lines()]


def test_five_tasks_and_their_average_are_two_rows_of_panels(
    tmp_path, saved_figures):
  """The GLUE table's picture: six panels in a grid, one legend holding a
  method that ran on one task only."""
  rows = []
  for task in ("CoLA", "MRPC", "RTE", "SST-2", "STS-B"):
    rows += [dict(r, task=task, run_id=task + r["run_id"])
             for r in sweep_rows() if r["task"] == "MRPC"]
  rows += [dict(r, method="lora", adapter_size="", init_scale="",
                run_id=r["run_id"] + "-lora") for r in rows
           if r["task"] == "CoLA" and r["method"] == "head"]
  plots.plot_parameters_vs_metric(rows, str(tmp_path / "p.png"))
  figure = saved_figures[-1]
  titles = [a.get_title() for a in figure.axes]
  assert titles == ["CoLA", "MRPC", "RTE", "SST-2", "STS-B", plots.AVERAGE]
  assert len({a.get_subplotspec().rowspan.start for a in figure.axes}) == 2
  (legend,) = figure.legends
  labels = [t.get_text() for t in legend.get_texts()]
  assert "lora" in labels and "adapters (m=8,64)" in labels
  assert len(labels) == len(set(labels))


def test_ablation_metric_can_be_chosen_per_task(tmp_path, saved_figures):
  """MRPC read by accuracy (its F1 is not monotone in what is lost), STS-B
  by its primary metric, which has no accuracy."""
  stsb = [dict(r, run_id="STS-B-adapters-m64", task="STS-B",
               primary_metric="eval_spearmanr",
               metrics=r["metrics"].replace("eval_accuracy", "eval_pearson")
               .replace("eval_f1", "eval_spearmanr"))
          for r in ablation_rows()]
  mrpc = [dict(r, task="MRPC") for r in ablation_rows()]
  ablation = write_table(str(tmp_path / "ablation.csv"), mrpc + stsb,
                         sweep_ablation.ABLATION_COLUMNS)
  results = write_table(str(tmp_path / "sweep.csv"), sweep_rows(),
                        sweeps.COLUMNS)
  plots.plot_all(results, ablation, str(tmp_path / "out"),
                 "MRPC=eval_accuracy")
  heat = {f.axes[0].get_title().split("\n")[0]: f.axes[0].images[0]
          for f in saved_figures if f.axes[0].images}
  assert heat["MRPC-adapters-m64"].get_array()[1, 1] == pytest.approx(0.75)
  assert heat["STS-B-adapters-m64"].get_array()[1, 1] == pytest.approx(0.80)
  # One metric for both: STS-B has no accuracy, a one-line error naming it.
  with pytest.raises(errors.InputError,
                     match="--ablation_metric=eval_accuracy: the ablation of "
                     "STS-B-adapters-m64"):
    plots.plot_all(results, ablation, str(tmp_path / "out"), "eval_accuracy")
  with pytest.raises(errors.InputError, match="'CoLA' is not TASK=metric"):
    plots.plot_all(results, ablation, str(tmp_path / "out"),
                   "MRPC=eval_accuracy,CoLA")
