"""The run folder: a rerun with other settings is refused (naming them), the
same settings resume, --overwrite_output_dir starts clean, and a second job in
a locked folder stops at once. Also the checks before any work: checkpoint
data readable, the init checkpoint not larger than the config, a bundle's BERT
config, and --export_from_checkpoint's shapes."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow.compat.v1 as tf

from conftest import REPO_ROOT
from conftest import assert_input_error
from conftest import checkpoint_values
from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import write_file
from conftest import write_mrpc_task
from conftest import write_sst2_task
from conftest import write_tiny_bert
from adapter_bert import run_folder


def folder_listing(folder):
  """{relative path: (size, mtime)} of every file under `folder`."""
  listing = {}
  for (root, _, files) in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      stat = os.stat(path)
      listing[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns)
  return listing


def unlocked_listing(folder):
  """folder_listing without the lock file (each job rewrites its holder)."""
  listing = folder_listing(folder)
  listing.pop(run_folder.LOCK, None)
  return listing


@pytest.fixture
def trained_run(tmp_path, tiny_bert):
  """A finished SST-2 adapter run: (data_dir, output_dir, eval results)."""
  data_dir = write_sst2_task(str(tmp_path / "sst2"))
  output_dir = str(tmp_path / "out")
  results = run_classifier_in_process(tiny_bert, data_dir, output_dir)
  return data_dir, output_dir, results


@pytest.mark.slow
def test_training_writes_a_manifest_of_what_shapes_the_run(trained_run):
  (_, output_dir, _) = trained_run
  manifest = run_folder.read_manifest(output_dir)
  settings = manifest["settings"]
  assert set(settings) == set(run_folder.TRAINING_KEYS)
  assert settings["task_name"] == "SST-2"
  assert settings["adapter_size"] == 8
  assert settings["learning_rate"] == 1e-2
  assert settings["bert_config"]["num_hidden_layers"] == 2
  assert len(settings["train_sha256"]) == 64
  assert len(settings["init_checkpoint_fingerprint"]) == 64


@pytest.mark.slow
@pytest.mark.parametrize("changes,named", [
    ({"learning_rate": 3e-3, "seed": 7},
     ["learning_rate 0.01 (now 0.003)", "seed 12345 (now 7)"]),
    ({"adapter_size": 16}, ["adapter_size 8 (now 16)"]),
    ({"tuning_mode": "full"}, ["tuning_mode adapters (now full)"]),
    ({"max_seq_length": 12}, ["max_seq_length 16 (now 12)"]),
    ({"adam_bias_correction": True}, ["adam_bias_correction False (now True)"]),
])
def test_a_rerun_with_other_settings_is_refused(trained_run, tiny_bert,
                                                changes, named):
  (data_dir, output_dir, _) = trained_run
  before = unlocked_listing(output_dir)
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        **changes),
      "--output_dir=%s holds a run made with other settings" % output_dir,
      "--overwrite_output_dir", *named)
  assert unlocked_listing(output_dir) == before  # nothing written or removed


def test_a_manifest_older_than_a_setting_compares_as_its_old_behaviour():
  """Settings added later (precision, Adam's bias correction) are absent
  from older manifests: such a run was made as the new default makes it."""
  keys = ["precision", "adam_bias_correction"]
  assert run_folder.differences(
      {}, {"precision": "float32", "adam_bias_correction": False}, keys) == []
  assert run_folder.differences(
      {}, {"precision": "mixed_bfloat16", "adam_bias_correction": True},
      keys) == ["precision float32 (now mixed_bfloat16)",
                "adam_bias_correction False (now True)"]


@pytest.mark.slow
def test_another_task_in_the_folder_is_refused(trained_run, tiny_bert,
                                               tmp_path):
  (_, output_dir, _) = trained_run
  mrpc_dir = write_mrpc_task(str(tmp_path / "mrpc"))
  before = unlocked_listing(output_dir)
  # MRPC has SST-2's two labels: without the manifest the SST-2 model was
  # evaluated on MRPC and exported as an MRPC bundle, exit 0.
  for do_train in (True, False):
    assert_input_error(
        lambda: run_classifier_in_process(tiny_bert, mrpc_dir, output_dir,
                                          task_name="MRPC",
                                          do_train=do_train),
        "task_name SST-2 (now MRPC)")
  assert unlocked_listing(output_dir) == before


@pytest.mark.slow
def test_changed_training_data_is_refused_but_eval_only_is_not(trained_run,
                                                                tiny_bert):
  (data_dir, output_dir, results) = trained_run
  with open(os.path.join(data_dir, "train.tsv"), "a") as f:
    f.write("a very good film\t1\n")
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir),
      "the training data's content")
  # Evaluating the saved model does not depend on the training file.
  again = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                    do_train=False)
  assert again == results


@pytest.mark.slow
def test_the_same_settings_resume(trained_run, tiny_bert):
  (data_dir, output_dir, results) = trained_run
  step = checkpoint_values(tf.train.latest_checkpoint(output_dir))[
      "global_step"]
  again = run_classifier_in_process(tiny_bert, data_dir, output_dir)
  assert again == results
  assert checkpoint_values(tf.train.latest_checkpoint(output_dir))[
      "global_step"] == step


@pytest.mark.slow
def test_overwrite_output_dir_starts_clean(trained_run, tiny_bert):
  (data_dir, output_dir, _) = trained_run
  stale = os.path.join(output_dir, "eval_results_mismatched.txt")
  write_file(stale, ["eval_accuracy = 0.1"])
  results = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                      adapter_size=4, learning_rate=3e-3,
                                      overwrite_output_dir=True)
  assert not os.path.exists(stale)
  settings = run_folder.read_manifest(output_dir)["settings"]
  assert (settings["adapter_size"], settings["learning_rate"]) == (4, 3e-3)
  values = checkpoint_values(tf.train.latest_checkpoint(output_dir))
  widths = {v.shape[-1] for (n, v) in values.items()
            if n.endswith("adapters/weights1")}
  assert widths == {4}
  assert read_eval_results(output_dir) == pytest.approx(results["dev"])
  bundle = json.load(open(os.path.join(output_dir, "adapter_bundle",
                                       "adapter_bundle.json")))
  assert bundle["options"]["adapter_size"] == 4


@pytest.mark.slow
def test_overwrite_output_dir_needs_training(trained_run, tiny_bert):
  (data_dir, output_dir, _) = trained_run
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                        do_train=False,
                                        overwrite_output_dir=True),
      "--overwrite_output_dir", "needs --do_train=true")


@pytest.mark.slow
def test_a_second_job_in_a_locked_folder_stops_naming_the_first(
    tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  holder = subprocess.Popen(
      [sys.executable, "-c",
       "import sys, time; sys.path.insert(0, %r); from adapter_bert import run_folder\n"
       "with run_folder.locked(%r):\n"
       "  print('locked', flush=True); time.sleep(120)" % (REPO_ROOT,
                                                            output_dir)],
      stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"
    assert_input_error(
        lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir),
        "--output_dir=%s is in use by pid %d" % (output_dir, holder.pid),
        "wait for it")
    assert os.listdir(output_dir) == [run_folder.LOCK]
  finally:
    holder.kill()
    holder.wait()
  # The kernel dropped the dead holder's lock: the folder is free again.
  assert "eval_accuracy" in run_classifier_in_process(tiny_bert, data_dir,
                                                      output_dir)["dev"]


def test_lock_is_released_after_a_job_and_after_an_error(tmp_path):
  folder = str(tmp_path / "out")
  with run_folder.locked(folder):
    with pytest.raises(ValueError, match="is in use by pid %d" % os.getpid()):
      with run_folder.locked(folder):
        pass
  with pytest.raises(RuntimeError):
    with run_folder.locked(folder):
      raise RuntimeError("boom")
  with run_folder.locked(folder):
    pass


def test_a_truncated_init_checkpoint_is_one_line(tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  broken = write_tiny_bert(str(tmp_path / "broken_bert"))
  data_file = broken["init_checkpoint"] + ".data-00000-of-00001"
  with open(data_file, "r+b") as f:
    f.truncate(os.path.getsize(data_file) // 2)
  def run():
    return run_classifier_in_process(
        tiny_bert, data_dir, str(tmp_path / "out"),
        init_checkpoint=broken["init_checkpoint"])
  assert_input_error(run, "--init_checkpoint=%s" % broken["init_checkpoint"],
                     "its data is cut short")
  assert not os.path.exists(str(tmp_path / "out"))
  os.remove(data_file)
  assert_input_error(run, "its data files are missing")


@pytest.mark.slow
def test_a_truncated_training_checkpoint_is_one_line(trained_run, tiny_bert):
  (data_dir, output_dir, _) = trained_run
  latest = tf.train.latest_checkpoint(output_dir)
  data_file = latest + ".data-00000-of-00001"
  with open(data_file, "r+b") as f:
    f.truncate(100)
  for do_train in (True, False):
    assert_input_error(
        lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                          do_train=do_train),
        "--output_dir=%s: checkpoint %s" % (output_dir, latest),
        "its data is cut short")


@pytest.mark.slow
def test_a_bit_flipped_training_checkpoint_is_one_line(trained_run, tiny_bert,
                                                       tmp_path):
  """Eval, resume and export of a checkpoint whose data fails its checksum."""
  (data_dir, output_dir, _) = trained_run
  latest = tf.train.latest_checkpoint(output_dir)
  data_file = latest + ".data-00000-of-00001"
  with open(data_file, "r+b") as f:
    f.seek(os.path.getsize(data_file) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0x10]))
  jobs = [dict(do_train=True), dict(do_train=False),
          dict(do_train=False, do_eval=False,
               export_from_checkpoint=output_dir,
               export_adapter_bundle=str(tmp_path / "bundle"))]
  for flags in jobs:
    assert_input_error(
        lambda: run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                          **flags),
        "checkpoint %s is damaged" % latest, "delete it")
  assert not os.path.exists(str(tmp_path / "bundle"))


@pytest.mark.slow
def test_a_checkpoint_larger_than_the_config_is_refused_unless_meant(
    tmp_path, tiny_bert):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  one_layer = str(tmp_path / "one_layer.json")
  config = json.load(open(tiny_bert["bert_config_file"]))
  config["num_hidden_layers"] = 1
  json.dump(config, open(one_layer, "w"))
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir,
                                        str(tmp_path / "out"),
                                        bert_config_file=one_layer),
      "holds", "BERT variables the model of --bert_config_file=%s does not "
      "use" % one_layer, "bert/encoder/layer_1/",
      "--allow_partial_init_checkpoint=true")
  assert not os.path.exists(str(tmp_path / "out"))
  results = run_classifier_in_process(
      tiny_bert, data_dir, str(tmp_path / "out"), bert_config_file=one_layer,
      allow_partial_init_checkpoint=True)
  assert "eval_accuracy" in results["dev"]


@pytest.mark.slow
def test_a_bundle_is_refused_under_another_bert_config(trained_run, tiny_bert,
                                                       tmp_path):
  (data_dir, output_dir, _) = trained_run
  relu = str(tmp_path / "relu.json")
  config = json.load(open(tiny_bert["bert_config_file"]))
  config["hidden_act"] = "relu"  # same weights, other numbers
  json.dump(config, open(relu, "w"))
  bundle_dir = os.path.join(output_dir, "adapter_bundle")
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir,
                                        str(tmp_path / "serve"),
                                        do_train=False,
                                        adapter_bundle=bundle_dir,
                                        bert_config_file=relu),
      "adapter bundle %s was trained with another BERT config: hidden_act is "
      "'gelu' there but 'relu'" % bundle_dir)


@pytest.mark.slow
@pytest.mark.parametrize("changes,named", [
    ({"adapter_size": 16}, "adapter_size 8 (now 16)"),
    ({"max_seq_length": 12}, "max_seq_length 16 (now 12)"),
    ({"task_name": "MRPC"}, "task_name SST-2 (now MRPC)"),
])
def test_export_from_checkpoint_checks_the_flags_against_the_run(
    trained_run, tiny_bert, tmp_path, changes, named):
  (data_dir, output_dir, _) = trained_run
  bundle_dir = str(tmp_path / "bundle")
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "elsewhere"), do_train=False,
          do_eval=False, export_from_checkpoint=output_dir,
          export_adapter_bundle=bundle_dir, **changes),
      "--export_from_checkpoint=%s holds a run made with other settings" %
      output_dir, named)
  assert not os.path.exists(bundle_dir)


@pytest.mark.slow
def test_export_checks_shapes_when_the_run_has_no_manifest(trained_run,
                                                           tiny_bert,
                                                           tmp_path):
  (data_dir, output_dir, _) = trained_run
  os.remove(run_folder.manifest_path(output_dir))  # a run from before them
  bundle_dir = str(tmp_path / "bundle")
  assert_input_error(
      lambda: run_classifier_in_process(
          tiny_bert, data_dir, str(tmp_path / "elsewhere"), do_train=False,
          do_eval=False, export_from_checkpoint=output_dir,
          export_adapter_bundle=bundle_dir, adapter_size=16),
      "is not the model the flags describe", "adapters/weights1",
      "[32, 8] there but [32, 16]", "--adapter_size=16")
  assert not os.path.exists(bundle_dir)


def test_a_manifest_from_before_precision_compares_as_float32():
  recorded = {}  # written before --precision existed
  assert run_folder.differences(recorded, {"precision": "float32"},
                                ["precision"]) == []
  assert run_folder.differences(recorded, {"precision": "mixed_bfloat16"},
                                ["precision"]) == [
                                    "precision float32 (now mixed_bfloat16)"]


def test_training_time_sums_over_invocations(tmp_path):
  folder = str(tmp_path)
  assert run_folder.training_seconds(folder) is None
  first = run_folder.TrainingClock(folder)
  assert first.record(10.0) == 10.0  # at a checkpoint
  assert first.record(23.25) == 23.25  # at the end: the same invocation
  second = run_folder.TrainingClock(folder)
  assert second.record(4.5) == pytest.approx(27.75)
  with open(run_folder.training_time_path(folder)) as f:
    assert json.load(f) == {"train_seconds": 27.75, "invocations": 2}
  with open(run_folder.training_time_path(folder), "w") as f:
    f.write("{not json")
  assert run_folder.training_seconds(folder) is None  # damaged: unknown
  assert run_folder.TrainingClock(folder).record(1.5) == 1.5


@pytest.mark.slow
def test_a_resume_that_only_evaluates_adds_no_training_time(tiny_bert,
                                                           tmp_path):
  data_dir = write_sst2_task(str(tmp_path / "data"))
  output_dir = str(tmp_path / "out")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=True,
                            do_eval=False)
  first = run_folder.training_seconds(output_dir)
  assert first > 0
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=True,
                            do_eval=True)
  assert run_folder.training_seconds(output_dir) == first


@pytest.mark.slow
def test_eval_and_export_of_an_unfinished_run_are_warned(trained_run,
                                                         tiny_bert, tmp_path,
                                                         caplog):
  (data_dir, output_dir, _) = trained_run
  step = int(tf.train.latest_checkpoint(output_dir).rsplit("-", 1)[1])
  caplog.set_level("WARNING")
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=False)
  assert "unfinished run" not in caplog.text  # a finished run: no word
  # As a run stopped at `step` of a longer plan leaves its folder.
  manifest = run_folder.read_manifest(output_dir)
  run_folder.write_manifest(output_dir, manifest["settings"], dict(
      manifest["information"], num_train_steps=step + 40))
  run_classifier_in_process(tiny_bert, data_dir, output_dir, do_train=False)
  assert "training stopped at step %d of %d" % (step, step + 40) in (
      caplog.text)
  caplog.clear()
  run_classifier_in_process(
      tiny_bert, data_dir, output_dir, do_train=False, do_eval=False,
      export_from_checkpoint=output_dir,
      export_adapter_bundle=str(tmp_path / "bundle"))
  assert "Exporting checkpoint" in caplog.text
  assert "unfinished run" in caplog.text
