"""fileio.py and every output path on a non-local TensorFlow file system.

`ram://` is TensorFlow's in-memory file system: it stands in for `gs://` (what
a Cloud TPU job writes to), which this machine cannot reach. A path that
slipped past `tf.io.gfile` (an `open`, an `os.makedirs`, an
`os.path.normpath` that turns `ram://x` into `ram:/x`) would land on the local
disk, which the end-to-end test watches.
"""

import builtins
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import uuid

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from conftest import REPO_ROOT
from conftest import assert_one_line_error
from conftest import read_eval_results
from conftest import run_classifier_in_process
from conftest import tiny_job_flags
from conftest import write_sst2_task
from adapter_bert import bundles
from adapter_bert import fileio
from adapter_bert import glue
from adapter_bert import multitask


def ram_root():
  """A fresh folder on the in-memory file system."""
  return "ram://adapter_bert_%s" % uuid.uuid4().hex[:12]


def read(path):
  with tf.io.gfile.GFile(path) as f:
    return f.read()


# ---------------------------------------------------------------- helpers


@pytest.mark.parametrize("path,expected", [
    ("gs://bucket/glue/MNLI/../diagnostic/diagnostic.tsv",
     "gs://bucket/glue/diagnostic/diagnostic.tsv"),
    ("ram://a/./b//c", "ram://a/b/c"),
    ("/tmp/glue/MNLI/../x", "/tmp/glue/x"),
    ("glue/./MRPC", "glue/MRPC"),
])
def test_normpath_keeps_the_scheme(path, expected):
  assert fileio.normpath(path) == expected


def test_task_paths_keep_the_scheme():
  mnli = glue.get_task("MNLI")
  assert mnli.path("gs://b/glue/MNLI", mnli.test[2]) == (
      "gs://b/glue/diagnostic/diagnostic.tsv")


@pytest.mark.parametrize("make_root", [ram_root, None])
def test_atomic_path_leaves_nothing_on_failure(tmp_path, make_root):
  root = make_root() if make_root else str(tmp_path)
  path = os.path.join(root, "out", "result.txt")
  with pytest.raises(RuntimeError):
    with fileio.atomic_path(path) as temp:
      with tf.io.gfile.GFile(temp, "w") as f:
        f.write("half")
      raise RuntimeError("killed")
  assert tf.io.gfile.listdir(os.path.join(root, "out")) == []
  fileio.write_text(path, "whole")
  assert read(path) == "whole"
  assert tf.io.gfile.listdir(os.path.join(root, "out")) == ["result.txt"]


@pytest.mark.parametrize("make_root", [ram_root, None])
def test_atomic_directory_replaces_a_folder_whole(tmp_path, make_root):
  root = make_root() if make_root else str(tmp_path)
  folder = os.path.join(root, "bundle")
  for version in ("old", "new"):
    with fileio.atomic_directory(folder, marker="done.json") as temp:
      fileio.write_text(os.path.join(temp, "done.json"), version)
      fileio.write_text(os.path.join(temp, "sub", "data"), version * 3)
    assert read(os.path.join(folder, "done.json")) == version
    assert read(os.path.join(folder, "sub", "data")) == version * 3
  assert sorted(tf.io.gfile.listdir(root)) == ["bundle"]
  with pytest.raises(RuntimeError):
    with fileio.atomic_directory(folder) as temp:
      fileio.write_text(os.path.join(temp, "done.json"), "broken")
      raise RuntimeError("killed")
  assert read(os.path.join(folder, "done.json")) == "new"
  assert sorted(tf.io.gfile.listdir(root)) == ["bundle"]
  assert fileio.directory_size(folder) == len("new") + len("newnewnew")


def test_human_bytes():
  assert fileio.human_bytes(999) == "999 B"
  assert fileio.human_bytes(9_700_000) == "9.7 MB"
  assert fileio.human_bytes(1_310_000_000) == "1.3 GB"


# ---------------------------------------------------------------- end to end


def copy_tiny_bert(tiny_bert, root):
  """The tiny BERT's files, copied onto another file system."""
  paths = {}
  for (key, path) in tiny_bert.items():
    sources = (tf.io.gfile.glob(path + ".*") if key == "init_checkpoint" else
               [path])
    for source in sources:
      tf.io.gfile.makedirs(root)
      tf.io.gfile.copy(source, os.path.join(root, os.path.basename(source)))
    paths[key] = os.path.join(root, os.path.basename(path))
  return paths


@pytest.fixture
def checkpoint_prefixes_are_not_folders(monkeypatch):
  """Works around a bug of TF's ram:// file system, not of this project.

  ram:// calls any string prefix of a stored name a folder, so a checkpoint
  prefix (`model.ckpt-16`, a prefix of `model.ckpt-16.index`) passes
  `isdir`, and `tf.train.load_checkpoint` then looks for a checkpoint state
  file inside it. GCS and local disks say no; this makes ram:// say no too
  for a path that has a checkpoint index, and changes nothing else. The
  project's own code tells a prefix by its index (`fileio.checkpoint_reader`,
  tested unpatched below); TensorFlow's `init_from_checkpoint`, which reads
  a backbone or bundle prefix on ram:// in this test, does not.
  """
  from tensorflow.python.lib.io import _pywrap_file_io  # pylint: disable=g-direct-tensorflow-import
  is_directory = _pywrap_file_io.IsDirectory

  def fixed_is_directory(path):
    text = path.decode("utf-8") if isinstance(path, bytes) else path
    if text.startswith("ram://") and tf.io.gfile.exists(text + ".index"):
      return False
    return is_directory(path)

  monkeypatch.setattr(_pywrap_file_io, "IsDirectory", fixed_is_directory)


@pytest.fixture
def local_disk_watch(tmp_path, monkeypatch):
  """Fails any Python-level write to the local disk, and gives an empty cwd
  and temp dir to check afterwards (TF's C++ writes land there if a path
  lost its scheme)."""
  cwd = tmp_path / "cwd"
  temp = tmp_path / "temp"
  cwd.mkdir()
  temp.mkdir()
  monkeypatch.chdir(cwd)
  monkeypatch.setattr(tempfile, "tempdir", str(temp))
  real_open = builtins.open

  def guarded_open(file, mode="r", *args, **kwargs):
    path = os.fspath(file) if not isinstance(file, int) else ""
    if any(c in mode for c in "wax+") and not path.startswith("/dev/"):
      raise AssertionError("local write to %s" % path)
    return real_open(file, mode, *args, **kwargs)

  monkeypatch.setattr(builtins, "open", guarded_open)
  before = set(os.listdir(os.path.dirname(os.path.abspath(__file__))))
  yield
  monkeypatch.setattr(builtins, "open", real_open)
  assert os.listdir(cwd) == [], os.listdir(cwd)
  # AutoGraph caches the Python it generates for tf.data functions in the
  # temp dir; that is TensorFlow's scratch, not an output of ours.
  leftovers = [n for n in os.listdir(temp)
               if not n.startswith("__autograph_generated_file")]
  assert leftovers == [], leftovers
  assert set(os.listdir(os.path.dirname(os.path.abspath(__file__)))) == before


@pytest.mark.slow
def test_every_output_path_works_on_another_file_system(
    tiny_bert, checkpoint_prefixes_are_not_folders, local_disk_watch, capsys):
  """Train, export, eval from backbone + bundle, predict, export from a
  checkpoint and serve several tasks, all on ram://, nothing on local disk."""
  root = ram_root()
  bert = copy_tiny_bert(tiny_bert, os.path.join(root, "bert"))
  data_dir = write_sst2_task(os.path.join(root, "data"))
  trained_dir = os.path.join(root, "trained")

  results = run_classifier_in_process(bert, data_dir, trained_dir,
                                      do_predict=True, num_train_epochs=2.0)
  assert results["dev"]["global_step"] == 16
  assert read_eval_results(trained_dir)["global_step"] == 16
  for name in ("test_results.tsv", "SST-2.tsv",
               os.path.join("adapter_bundle", bundles.BUNDLE_JSON)):
    assert tf.io.gfile.exists(os.path.join(trained_dir, name)), name
  assert tf.train.latest_checkpoint(trained_dir).startswith("ram://")

  # Evaluate and predict from backbone + bundle, into another ram:// folder.
  served_dir = os.path.join(root, "served")
  bundle_dir = os.path.join(trained_dir, "adapter_bundle")
  run_classifier_in_process(bert, data_dir, served_dir, do_train=False,
                            do_predict=True, adapter_bundle=bundle_dir)
  assert read_eval_results(served_dir) == read_eval_results(trained_dir)
  for name in ("test_results.tsv", "SST-2.tsv"):
    assert read(os.path.join(served_dir, name)) == read(
        os.path.join(trained_dir, name)), name
  assert not tf.io.gfile.exists(os.path.join(served_dir, "bundle_model"))

  # Export a bundle from the training checkpoint to a ram:// folder.
  exported = os.path.join(root, "exported_bundle")
  run_classifier_in_process(bert, None, os.path.join(root, "export"),
                            do_train=False, do_eval=False,
                            export_from_checkpoint=trained_dir,
                            export_adapter_bundle=exported)
  original = bundles.read_bundle(bundle_dir).values
  again = bundles.read_bundle(exported).values
  assert sorted(again) == sorted(original)
  assert all(np.array_equal(again[n], original[n]) for n in original)

  # Serve the bundle with predict_multitask's library into ram://.
  submission_dir = os.path.join(root, "submission")
  multitask.run(multitask.Backbone(bert["bert_config_file"], bert["vocab_file"],
                                   bert["init_checkpoint"]),
                [exported], [data_dir], submission_dir)
  assert read(os.path.join(submission_dir, "SST-2.tsv")) == read(
      os.path.join(trained_dir, "SST-2.tsv"))
  assert "task SST-2" in capsys.readouterr().out


@pytest.mark.slow
def test_a_job_on_ram_works_without_any_patch(tiny_bert):
  """Train, evaluate, export and evaluate again with --output_dir on ram://
  and TensorFlow's own `isdir` (no fixture): there a checkpoint prefix
  passes `isdir`, so a prefix must be told by its .index file, as a real
  command line on such a file system needs."""
  root = ram_root()
  data_dir = write_sst2_task(os.path.join(root, "data"))
  output_dir = os.path.join(root, "out")
  results = run_classifier_in_process(tiny_bert, data_dir, output_dir)
  latest = tf.train.latest_checkpoint(output_dir)
  assert latest.startswith("ram://") and tf.io.gfile.isdir(latest)
  assert results["dev"]["global_step"] == 8
  bundle = bundles.read_bundle(os.path.join(output_dir, "adapter_bundle"))
  assert bundle.global_step == 8

  # Eval again from the ram:// checkpoint (its checks read the prefix), and
  # export a bundle from the prefix itself.
  again = run_classifier_in_process(tiny_bert, data_dir, output_dir,
                                    do_train=False)
  assert again["dev"] == results["dev"]
  exported = os.path.join(root, "exported_bundle")
  run_classifier_in_process(tiny_bert, None, os.path.join(root, "export"),
                            do_train=False, do_eval=False,
                            export_from_checkpoint=latest,
                            export_adapter_bundle=exported)
  values = bundles.read_bundle(exported).values
  assert sorted(values) == sorted(bundle.values)
  assert all(np.array_equal(values[n], bundle.values[n]) for n in values)


def test_a_checkpoint_prefix_is_read_on_ram(tmp_path):
  prefix = os.path.join(ram_root(), "model.ckpt-3")
  bundles.write_checkpoint({"w": np.ones([2], np.float32)}, prefix)
  assert tf.io.gfile.isdir(prefix)  # ram://'s quirk
  with pytest.raises((ValueError, tf.errors.OpError)):
    tf.train.load_checkpoint(prefix)  # TensorFlow's own reader fails there
  assert fileio.checkpoint_variables(prefix) == [("w", [2])]
  assert bundles.resolve_checkpoint(prefix) == prefix
  fileio.check_checkpoint_data(prefix)
  # A folder still resolves to its latest checkpoint.
  folder = str(tmp_path)
  bundles.write_checkpoint({"w": np.ones([2], np.float32)},
                           os.path.join(folder, "model.ckpt"))
  assert fileio.checkpoint_variables(os.path.join(
      folder, "model.ckpt")) == [("w", [2])]


def test_orphans_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
  import subprocess
  import sys
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  folder = tmp_path / "out"
  folder.mkdir()
  names = {
      "dead_file": ".train-1a2b.tf_record.tmp-%s-0123abcd" % dead,
      "dead_folder": ".adapter_bundle.tmp-%s-89abcdef" % dead,
      "dead_old": ".adapter_bundle.tmp-%s-89abcdef.old" % dead,
      "live": ".eval_results.txt.tmp-%d-fedcba98" % os.getpid(),
      "plain": "eval_results.txt",
      "lookalike": ".notes.tmp-12-xyz",
  }
  for (kind, name) in names.items():
    if kind == "dead_folder":
      (folder / name).mkdir()
      (folder / name / "variables.index").write_text("x")
    else:
      (folder / name).write_text("x")
  removed = fileio.remove_orphans(str(folder))
  assert sorted(removed) == sorted([names["dead_file"], names["dead_folder"],
                                    names["dead_old"]])
  assert sorted(os.listdir(str(folder))) == sorted(
      [names["live"], names["plain"], names["lookalike"]])
  assert fileio.remove_orphans("ram://nothing/here") == []


@pytest.mark.slow
def test_a_run_clears_the_orphans_of_a_killed_run(tmp_path, tiny_bert):
  import subprocess
  import sys
  from conftest import run_classifier_cli
  from conftest import write_sst2_task
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  output_dir = tmp_path / "out"
  output_dir.mkdir()
  orphan = ".train-0123.tf_record.tmp-%s-0123abcd" % dead
  (output_dir / orphan).write_text("half a feature file")
  result = run_classifier_cli(tiny_bert, write_sst2_task(str(tmp_path / "d")),
                              str(output_dir))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "Removed or repaired 1 files that killed runs left in" in result.stderr
  assert not any(".tmp-" in name for name in os.listdir(str(output_dir)))


def test_outputs_that_cannot_be_written_are_refused_before_any_work(
    tmp_path, tiny_bert):
  from conftest import assert_input_error
  from conftest import run_classifier_in_process
  from conftest import write_sst2_task
  data_dir = write_sst2_task(str(tmp_path / "data"))
  a_file = tmp_path / "a_file"
  a_file.write_text("not a folder")
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, str(a_file)),
      "--output_dir=%s: it is a file" % a_file)
  bundle = str(a_file / "bundle")
  output_dir = tmp_path / "out"
  assert_input_error(
      lambda: run_classifier_in_process(tiny_bert, data_dir, str(output_dir),
                                        export_adapter_bundle=bundle),
      "--export_adapter_bundle=%s (its folder %s): it is a file" % (bundle,
                                                                    a_file))
  # Found before training: no feature file, no checkpoint.
  assert not any(name.endswith((".tf_record", ".index")) for name in
                 os.listdir(str(output_dir)))


def test_check_writable_folder_leaves_no_probe(tmp_path):
  folder = str(tmp_path / "new" / "deeper")
  fileio.check_writable_folder(folder)
  assert os.listdir(folder) == []
  fileio.check_writable_folder("ram://writable/probe")
  assert tf.io.gfile.listdir("ram://writable/probe") == []


def test_a_new_export_clears_what_a_killed_export_left_beside_it(tmp_path):
  import subprocess
  import sys
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True).stdout.strip()
  left = tmp_path / (".served.tmp-%s-0123abcd" % dead)
  left.mkdir()
  (left / "saved_model.pb").write_text("half")
  with fileio.atomic_directory(str(tmp_path / "served")) as temp:
    with open(os.path.join(temp, "saved_model.pb"), "w") as f:
      f.write("whole")
  assert sorted(os.listdir(str(tmp_path))) == ["served"]


# ---------------------------------------------------------------- full disk


@contextlib.contextmanager
def small_disk(folder, size_bytes):
  """A folder that takes `size_bytes`: a tmpfs of that size where this
  process may mount one (root, as on this project's machines). Elsewhere,
  the job's process gets a file-size limit of 1 MB (`ulimit -f`), which fails
  a write the same way (EFBIG) at the first file that outgrows it, the graph:
  one stage instead of each. Yields the `preexec_fn` for the job's process
  (None with tmpfs) and a function that frees the space."""
  os.makedirs(folder)
  mounted = subprocess.run(
      ["mount", "-t", "tmpfs", "-o", "size=%d" % size_bytes, "tmpfs",
       folder], capture_output=True).returncode == 0
  def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead
    limit = min(size_bytes, 1 << 20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  def free_space():
    if mounted:
      subprocess.run(["mount", "-o", "remount,size=200m", folder],
                     check=True)
  try:
    yield (None if mounted else limit_file_size, free_space)
  finally:
    if mounted:
      subprocess.run(["umount", folder], capture_output=True)


def tiny_job_command(tiny_bert, data_dir, output_dir, **flags):
  args = tiny_job_flags(tiny_bert, data_dir, output_dir, **flags)
  return [sys.executable, os.path.join(REPO_ROOT, "run_classifier.py")] + [
      "--%s=%s" % item for item in sorted(args.items())]


def leftovers(folder):
  """Every temporary name under `folder`: ours and TensorFlow's."""
  found = []
  for (root, folders, files) in os.walk(folder):
    for name in folders + files:
      if ".tmp" in name or "tempstate" in name or name.endswith("_temp"):
        found.append(os.path.join(root, name))
  return found


# Sizes at which the tiny job's disk fills while it writes: the graph, a
# checkpoint's shards, its .meta, the bundle, the predictions (measured on
# tmpfs; the whole job writes about 7.5 MB).
@pytest.mark.slow
@pytest.mark.parametrize("size_kb", [1024, 4200, 6000, 7440, 7480])
def test_a_full_disk_is_one_line_and_the_rerun_removes_its_leftovers(
    tmp_path, tiny_bert, size_kb):
  data_dir = write_sst2_task(str(tmp_path / "data"), num_train=64, num_dev=9)
  disk = str(tmp_path / "disk")
  with small_disk(disk, size_kb * 1024) as (preexec, free_space):
    command = tiny_job_command(
        tiny_bert, data_dir, os.path.join(disk, "run"), do_predict=True,
        export_adapter_bundle=os.path.join(disk, "bundle"))
    full = subprocess.run(command, capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=600, preexec_fn=preexec)
    assert_one_line_error(full, "cannot write ", "free space there and run "
                          "the same command again")
    assert ("No space left on device" in full.stderr or
            "File too large" in full.stderr)
    free_space()
    again = subprocess.run(command, capture_output=True, text=True,
                           cwd=REPO_ROOT, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert leftovers(disk) == []
    assert os.path.exists(os.path.join(disk, "run", "SST-2.tsv"))
    assert os.path.exists(os.path.join(disk, "bundle", "adapter_bundle.json"))


def test_an_event_file_cut_mid_record_is_cut_back_to_whole_records(tmp_path):
  folder = str(tmp_path / "run")
  os.makedirs(folder)
  name = "events.out.tfevents.1796418193.host"
  path = os.path.join(folder, name)
  # An event file is a TFRecord file of Event protos; any records will do.
  with tf.io.TFRecordWriter(path) as writer:
    for step in range(5):
      writer.write(b"event %d" % step * (step + 1))
  whole = open(path, "rb").read()
  with open(path, "ab") as f:
    f.write(whole[-30:-7])  # part of a record, as a full disk leaves it
  os.makedirs(os.path.join(folder, "model.ckpt-3_temp"))
  open(os.path.join(folder, "graph.pbtxt.tmp" + "0" * 32), "w").close()
  removed = fileio.remove_tensorflow_leftovers(folder)
  assert sorted(removed) == sorted([name, "model.ckpt-3_temp",
                                    "graph.pbtxt.tmp" + "0" * 32])
  assert open(path, "rb").read() == whole
  assert fileio.remove_tensorflow_leftovers(folder) == []
