"""Writers never destroy what they did not write (adapter_bert.output_rules):
an export target is absent, empty or a previous export of its kind; no output
is, contains or sits inside an input. The data-loss cases check that every
file of the victim is still there, byte for byte."""

import hashlib
import os
import pathlib

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
import pytest

from conftest import assert_input_error
from conftest import run_classifier_in_process
from conftest import train_tiny_in_process
from conftest import write_sst2_task
from adapter_bert import errors
from adapter_bert import output_rules
from adapter_bert import multitask
from adapter_bert import savedmodel

BUNDLE = output_rules.ADAPTER_BUNDLE
SAVED_MODEL = output_rules.SAVED_MODEL


def tree(folder):
  """{relative path: sha256} of every file under `folder` (or of the file)."""
  if os.path.isfile(folder):
    with open(folder, "rb") as f:
      return {"": hashlib.sha256(f.read()).hexdigest()}
  found = {}
  for (root, _, files) in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, folder)] = hashlib.sha256(
            f.read()).hexdigest()
  return found


def make_files(folder, *names):
  for name in names:
    path = os.path.join(folder, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
      f.write(name)
  return folder


# ---------------------------------------------------------------- targets


def test_an_absent_an_empty_or_a_previous_export_may_be_replaced(tmp_path):
  output_rules.check_export_target(str(tmp_path / "new"), BUNDLE, "x")
  os.makedirs(tmp_path / "empty")
  output_rules.check_export_target(str(tmp_path / "empty"), BUNDLE, "x")
  bundle = make_files(str(tmp_path / "b"), "adapter_bundle.json",
                      "variables.index", "variables.data-00000-of-00001")
  output_rules.check_export_target(bundle, BUNDLE, "x")
  saved = make_files(str(tmp_path / "s"), "saved_model.pb", "fingerprint.pb",
                     "variables/variables.index", "assets/vocab.txt")
  output_rules.check_export_target(saved, SAVED_MODEL, "x")


@pytest.mark.parametrize("names,fragments", [
    (("run.json", "model.ckpt-3.index", "checkpoint"),
     ["is not an adapter bundle folder: it holds checkpoint, "
      "model.ckpt-3.index, run.json;"]),
    (("adapter_bundle.json", "variables.index", "notes.txt"),
     ["notes.txt"]),
    (("variables.index",),
     ["it holds variables.index but no adapter_bundle.json"]),
    (("a", "b", "c", "d", "e", "f"), ["a, b, c, d, and 2 more"]),
])
def test_any_other_folder_is_refused_naming_what_is_there(tmp_path, names,
                                                          fragments):
  target = make_files(str(tmp_path / "t"), *names)
  before = tree(target)
  assert_input_error(
      lambda: output_rules.check_export_target(target, BUNDLE,
                                               "export_adapter_bundle"),
      "--export_adapter_bundle=" + target, "it is not replaced", *fragments)
  assert tree(target) == before


def test_a_plain_file_is_refused(tmp_path):
  target = make_files(str(tmp_path), "file")
  target = os.path.join(target, "file")
  assert_input_error(
      lambda: output_rules.check_export_target(target, SAVED_MODEL,
                                               "export_dir"),
      "is a file, not a SavedModel folder")


def test_a_saved_model_is_not_a_bundle_nor_the_other_way(tmp_path):
  saved = make_files(str(tmp_path / "s"), "saved_model.pb", "variables/x")
  assert_input_error(
      lambda: output_rules.check_export_target(saved, BUNDLE, "x"),
      "saved_model.pb")
  bundle = make_files(str(tmp_path / "b"), "adapter_bundle.json",
                      "variables.index")
  assert_input_error(
      lambda: output_rules.check_export_target(bundle, SAVED_MODEL, "x"),
      "adapter_bundle.json")


# ---------------------------------------------------------------- overlaps


@pytest.mark.parametrize("output,relation", [
    ("in", "is"), (".", "contains"), ("in/sub", "sits inside")])
def test_an_output_is_contains_or_sits_inside_an_input_folder(
    tmp_path, output, relation):
  inp = str(tmp_path / "in")
  out = os.path.normpath(str(tmp_path / output))
  assert_input_error(
      lambda: output_rules.check_apart([("out", out)],
                                       input_folders=[("in", inp)]),
      "--out=%s %s the input --in=%s" % (out, relation, inp))


def test_an_output_may_sit_beside_an_input_file_but_not_contain_it(tmp_path):
  vocab = str(tmp_path / "bert" / "vocab.txt")
  output_rules.check_apart([("out", str(tmp_path / "bert" / "run"))],
                           input_files=[("vocab_file", vocab)])
  output_rules.check_apart([("out", str(tmp_path / "bert2"))],
                           input_files=[("vocab_file", vocab)])
  assert_input_error(
      lambda: output_rules.check_apart([("out", str(tmp_path / "bert"))],
                                       input_files=[("vocab_file", vocab)]),
      "contains the input --vocab_file")


def test_a_link_to_an_input_is_the_input(tmp_path):
  inp = make_files(str(tmp_path / "bundle"), "adapter_bundle.json")
  os.symlink(inp, str(tmp_path / "alias"))
  assert_input_error(
      lambda: output_rules.check_apart(
          [("out", str(tmp_path / "alias"))],
          input_folders=[("in", inp)]), "is the input --in")


def test_urls_compare_by_path():
  output_rules.check_apart([("out", "gs://b/run2")],
                           input_folders=[("in", "gs://b/run")])
  assert_input_error(
      lambda: output_rules.check_apart([("out", "gs://b/run/../run/x")],
                                       input_folders=[("in", "gs://b/run")]),
      "sits inside")


PARTS = st.lists(st.sampled_from(["a", "b", "ab"]), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(out=PARTS, inp=PARTS, folder=st.booleans())
def test_overlap_is_decided_as_pathlib_decides_it(out, inp, folder):
  """Against an independent reference: pathlib's own ancestry."""
  (out_path, in_path) = ("/r/" + "/".join(out), "/r/" + "/".join(inp))
  (o, i) = (pathlib.PurePosixPath(out_path), pathlib.PurePosixPath(in_path))
  overlaps = (o == i or i.is_relative_to(o) or
              (folder and o.is_relative_to(i)))
  kwargs = ({"input_folders": [("in", in_path)]} if folder else
            {"input_files": [("in", in_path)]})
  try:
    output_rules.check_apart([("out", out_path)], **kwargs)
    refused = False
  except errors.InputError:
    refused = True
  assert refused == overlaps


# ---------------------------------------------------------------- the jobs


@pytest.fixture(scope="module")
def trained(tiny_bert, tmp_path_factory):
  """A trained tiny run folder (checkpoints, run.json, its bundle)."""
  root = tmp_path_factory.mktemp("trained")
  data_dir = write_sst2_task(str(root / "data"))
  output_dir = str(root / "run")
  train_tiny_in_process(tiny_bert, data_dir, output_dir, do_eval=False)
  return {"data_dir": data_dir, "output_dir": output_dir,
          "bundle": os.path.join(output_dir, "adapter_bundle")}


def export(tiny_bert, bundle, export_dir):
  return savedmodel.export(multitask.Backbone(
      tiny_bert["bert_config_file"], tiny_bert["vocab_file"],
      tiny_bert["init_checkpoint"]), [bundle], export_dir)


def test_savedmodel_export_over_a_run_folder_keeps_every_file(tiny_bert,
                                                              trained):
  run = trained["output_dir"]
  before = tree(run)
  assert_input_error(lambda: export(tiny_bert, trained["bundle"], run),
                     "--export_dir=%s is not a SavedModel folder" % run,
                     "it holds adapter_bundle, ")
  assert tree(run) == before


def test_savedmodel_export_over_the_backbone_keeps_it(tiny_bert, trained):
  bert_dir = os.path.dirname(tiny_bert["init_checkpoint"])
  before = tree(bert_dir)
  assert_input_error(lambda: export(tiny_bert, trained["bundle"], bert_dir),
                     "--export_dir=" + bert_dir, "it is not replaced")
  assert tree(bert_dir) == before


def test_savedmodel_export_over_other_files_or_a_file_keeps_them(
    tiny_bert, trained, tmp_path):
  folder = make_files(str(tmp_path / "mine"), "thesis.tex", "data/x.csv")
  plain = os.path.join(make_files(str(tmp_path), "plain.txt"), "plain.txt")
  for target in (folder, plain):
    before = tree(target)
    assert_input_error(lambda: export(tiny_bert, trained["bundle"], target),
                       "it is not replaced")
    assert tree(target) == before


def test_savedmodel_export_inside_its_bundle_is_refused(tiny_bert, trained):
  inside = os.path.join(trained["bundle"], "served")
  before = tree(trained["bundle"])
  assert_input_error(lambda: export(tiny_bert, trained["bundle"], inside),
                     "sits inside the input --adapter_bundles")
  assert tree(trained["bundle"]) == before
  assert not os.path.exists(inside)


def test_savedmodel_export_replaces_its_previous_export(tiny_bert, trained,
                                                        tmp_path):
  target = str(tmp_path / "served")
  export(tiny_bert, trained["bundle"], target)
  first = tree(target)
  export(tiny_bert, trained["bundle"], target)
  assert sorted(tree(target)) == sorted(first)


def bundle_job(tiny_bert, trained, output_dir, **settings):
  return lambda: run_classifier_in_process(
      tiny_bert, trained["data_dir"], output_dir, **settings)


@pytest.mark.parametrize("where", ["output_dir", "its parent"])
def test_a_bundle_over_the_run_folder_is_refused_before_training(
    tiny_bert, trained, tmp_path, where):
  output_dir = str(tmp_path / "parent" / "run")
  os.makedirs(output_dir)
  make_files(str(tmp_path / "parent"), "keep.txt")
  target = output_dir if where == "output_dir" else str(tmp_path / "parent")
  before = tree(str(tmp_path / "parent"))
  assert_input_error(bundle_job(tiny_bert, trained, output_dir,
                                do_train=True, export_adapter_bundle=target),
                     "--export_adapter_bundle=" + target)
  assert tree(str(tmp_path / "parent")) == before
  assert os.listdir(output_dir) == []  # no training started


def test_a_bundle_over_the_backbone_is_refused(tiny_bert, trained, tmp_path):
  bert_dir = os.path.dirname(tiny_bert["init_checkpoint"])
  before = tree(bert_dir)
  assert_input_error(
      bundle_job(tiny_bert, trained, str(tmp_path / "run"), do_train=True,
                 export_adapter_bundle=bert_dir),
      "--export_adapter_bundle=" + bert_dir)
  assert tree(bert_dir) == before


def test_export_from_checkpoint_into_its_own_folder_is_refused(
    tiny_bert, trained, tmp_path):
  run = trained["output_dir"]
  before = tree(run)
  assert_input_error(
      bundle_job(tiny_bert, trained, str(tmp_path / "lock"), do_train=False,
                 do_eval=False, export_from_checkpoint=run,
                 export_adapter_bundle=run),
      "--export_adapter_bundle=" + run)
  assert tree(run) == before


def test_output_dir_holding_the_backbone_is_refused(tiny_bert, trained):
  bert_dir = os.path.dirname(tiny_bert["init_checkpoint"])
  before = tree(bert_dir)
  assert_input_error(bundle_job(tiny_bert, trained, bert_dir, do_train=True),
                     "--output_dir=%s contains the input --init_checkpoint" %
                     bert_dir)
  assert tree(bert_dir) == before


def test_export_from_checkpoint_of_output_dir_still_works(tiny_bert, trained,
                                                          tmp_path):
  """The usual case stays allowed: the run folder's checkpoint, its bundle
  written elsewhere, the same folder as --output_dir."""
  target = str(tmp_path / "bundle")
  run_classifier_in_process(
      tiny_bert, trained["data_dir"], trained["output_dir"], do_train=False,
      do_eval=False, export_from_checkpoint=trained["output_dir"],
      export_adapter_bundle=target)
  assert os.path.isfile(os.path.join(target, "adapter_bundle.json"))
