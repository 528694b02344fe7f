# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""errors.run_program: every command line's failures end as one line, exit 1."""

import signal

import pytest

from adapter_bert import errors


def run(job, **kwargs):
  """(exit code, None) if run_program("prog.py", job) exits, else (None, result)."""
  try:
    result = errors.run_program("prog.py", job, **kwargs)
  except SystemExit as e:
    return e.code, None
  return None, result


def test_returns_what_the_job_returns():
  assert run(lambda: 42) == (None, 42)


def test_input_error_is_one_line_and_exit_1(capsys):
  def job():
    raise errors.InputError("bad\n  value", where="f.tsv", line=3)
  assert run(job)[0] == 1
  assert capsys.readouterr().err == "prog.py: error: f.tsv:3: bad value\n"


def test_only_the_named_extra_types_are_the_users(capsys):
  def job():
    raise OSError(2, "No such file or directory", "x.csv")
  assert run(job, also=(OSError,))[0] == 1
  assert capsys.readouterr().err == (
      "prog.py: error: x.csv: No such file or directory\n")
  with pytest.raises(OSError):  # Not named: a bug, with its traceback.
    errors.run_program("prog.py", job)


def test_a_signal_during_the_job_is_the_interrupted_line(capsys):
  previous = signal.getsignal(signal.SIGTERM)
  try:
    def job():
      signal.raise_signal(signal.SIGTERM)
    assert run(job)[0] == 1
    err = capsys.readouterr().err
    assert err.startswith("prog.py: error: stopped by SIGTERM;")
    assert err.count("\n") == 1
  finally:
    signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def test_without_signal_handling_an_interrupt_goes_on_up():
  def job():
    raise KeyboardInterrupt()
  with pytest.raises(KeyboardInterrupt):
    errors.run_program("prog.py", job, on_signals=False)
