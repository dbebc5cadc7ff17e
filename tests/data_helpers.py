"""The root conftest's test data helpers under a name no other folder uses.

`from conftest import ALPACA_ROWS` is ambiguous as soon as a test folder has its own conftest.py
(pytest imports every one of them as the module `conftest`, so the name means whichever was
imported last). Importing from here always gets tests/conftest.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_NAME = "daar_tests_root_conftest"
if _NAME not in sys.modules:
    _spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("conftest.py"))
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = _module
    _spec.loader.exec_module(_module)
_root = sys.modules[_NAME]

ALPACA_ROWS = _root.ALPACA_ROWS
SHARED_DATA = _root.SHARED_DATA
write_jsonl = _root.write_jsonl
build_tiny_model = _root.build_tiny_model

__all__ = ["ALPACA_ROWS", "SHARED_DATA", "write_jsonl", "build_tiny_model"]
