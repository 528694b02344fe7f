# coding=utf-8
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""TEMPORARY alias: `errors` is `adapter_bert.errors`.

modeling.py (which its owner is rewriting now) still says `import errors`.
This makes that import return the package's module itself, so there is one
InputError class. TODO(lead): when modeling.py says
`from adapter_bert import errors`, delete this file and its entry in
tests/test_structure.py's TEMPORARY_TOP_LEVEL_ALIASES.
"""

import sys

from adapter_bert import errors as _errors

sys.modules[__name__] = _errors
