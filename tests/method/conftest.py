"""The method tests run DaaR on the same small 4-domain pool as the selection tests."""

from tests.selection.conftest import domains_file, pool_file, select_kwargs  # noqa: F401
