# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The project's one error type for bad input, and the one way any error
becomes the single line a command line prints.

Library code raises `InputError` for anything the user can fix (a flag, a file,
a line of a file); command lines catch it in `main()` and call `exit_with`,
which prints `<program>: error: <message>` and exits 1. Nothing else prints
errors, so every message has the same shape.
"""

import errno
import signal
import sys

# A one-line message longer than this is cut: TF error texts can hold a whole
# node definition.
MAX_MESSAGE_CHARS = 400


class InputError(Exception):
  """Bad user input: a command line prints it as one line and exits 1.

  The message is made one line at construction (whitespace collapsed), so no
  caller can print a multi-line error by accident.
  """

  def __init__(self, message, where=None, line=None):
    """Constructs InputError.

    Args:
      message: what is wrong.
      where: (optional) the file (or flag) it is about; prefixes the message.
      line: (optional) 1-based line number in `where`.
    """
    text = one_line(message)
    if where is not None:
      text = ("%s:%d: %s" % (where, line, text) if line is not None else
              "%s: %s" % (where, text))
    super(InputError, self).__init__(text)
    self.where = where
    self.line = line


def one_line(error, limit=MAX_MESSAGE_CHARS):
  """Any exception, or a text, as one line of at most `limit` characters.

  - `tf.errors.OpError`: its `message` (not the node traceback str() adds).
  - `OSError`: `<file>: <reason>` when it names a file.
  - An empty message becomes the exception's type name (never an empty line).
  """
  if isinstance(error, str):
    text = error
  else:
    text = getattr(error, "message", None)
    if not isinstance(text, str):
      text = str(error)
    if isinstance(error, OSError) and error.strerror:
      text = error.strerror
      if error.filename:
        text = "%s: %s" % (error.filename, text)
    if not text.strip():
      text = type(error).__name__
  text = " ".join(text.split())
  if len(text) > limit:
    text = text[:limit - 3].rstrip() + "..."
  return text


def exit_with(program, error):
  """Prints `<program>: error: <one line>` to stderr and exits 1."""
  sys.stderr.write("%s: error: %s\n" % (program, one_line(error)))
  sys.stderr.flush()
  sys.exit(1)


class Interrupted(KeyboardInterrupt):
  """SIGTERM or SIGINT arrived outside training (training itself stops at a
  step boundary and saves, see classifier.hooks.StopOnSignalHook).

  A KeyboardInterrupt, so no `except Exception` swallows it; every output is
  written under a temporary name and renamed, so nothing is left half-written.
  """

  def __init__(self, signal_name):
    super(Interrupted, self).__init__(signal_name)
    self.signal_name = signal_name


def interrupt_on_signals():
  """Makes SIGTERM (as well as SIGINT) raise `Interrupted` in the main thread,
  for a command line's `main()` to turn into one line."""

  def handle(number, frame):  # pylint: disable=unused-argument
    raise Interrupted(signal.Signals(number).name)

  for number in (signal.SIGTERM, signal.SIGINT):
    signal.signal(number, handle)


def interrupted_message(error):
  """The one line for a run stopped by a signal outside training."""
  name = getattr(error, "signal_name", "SIGINT")
  return ("stopped by %s; every file already written is complete and nothing "
          "half-written is left; run the same command again to continue" %
          name)


def run_program(program, job, also=(), on_signals=True):
  """Runs a command line's body, so every failure the user can fix ends the
  same way: `<program>: error: <one line>` on stderr, exit status 1.

  Args:
    program: the name printed before "error:" (the script's file name).
    job: a function of no arguments, the command line's work.
    also: (optional) more exception types that are the user's to fix (for
      example `OSError` from a path the user named), beyond `InputError`.
    on_signals: whether SIGTERM (like SIGINT) stops the job with the one line
      of `interrupted_message` (False for a program with its own handlers).

  Returns:
    What `job` returns.
  """
  if on_signals:
    interrupt_on_signals()
  try:
    return job()
  except KeyboardInterrupt as e:
    if not on_signals:
      raise
    exit_with(program, interrupted_message(e))
  except Exception as e:  # pylint: disable=broad-except
    # A full disk is the user's to fix, at whatever stage TF meets it.
    message = write_failure(e)
    if message is not None:
      exit_with(program, message)
    if isinstance(e, (InputError,) + tuple(also)):
      exit_with(program, e)
    raise


# What a write meets on a full disk, over a quota, or past the file-size
# limit (`ulimit -f`): OSError's errno, or the text TF's errors carry.
_WRITE_FAILURES = {errno.ENOSPC: "No space left on device",
                   errno.EDQUOT: "Disk quota exceeded",
                   errno.EFBIG: "File too large"}


def write_failure(error):
  """The one line for an error a full disk (or quota, or file-size limit)
  caused, anywhere in its chain of causes; None for any other error."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    path = reason = None
    if isinstance(error, OSError) and error.errno in _WRITE_FAILURES:
      (path, reason) = (error.filename, _WRITE_FAILURES[error.errno])
    else:
      text = getattr(error, "message", None)
      text = text if isinstance(text, str) else str(error)
      for known in _WRITE_FAILURES.values():
        if known in text:
          # TF's file errors read "<path>; <reason>".
          (head, _, _) = text.partition("; " + known)
          path = head.strip().split()[-1] if head.strip() else None
          reason = known
          break
    if reason:
      return one_line(
          "cannot write %s: %s; free space there and run the same command "
          "again (training resumes from its last checkpoint, and what this "
          "run left half-written is removed at that start)" % (
              path or "its output", reason))
    error = error.__cause__ or error.__context__
  return None
