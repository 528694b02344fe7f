# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""The project's one error type for bad input, and the one way any error
becomes the single line a command line prints.

Library code raises `InputError` for anything the user can fix (a flag, a file,
a line of a file); command lines catch it in `main()` and call `exit_with`,
which prints `<program>: error: <message>` and exits 1. Nothing else prints
errors, so every message has the same shape.
"""

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
