"""pytest plugin (entry point ``pytest11``): the ``bareos_director`` fixture."""

from __future__ import annotations

from typing import Iterator

import pytest

from .testing import Director


@pytest.fixture
def bareos_director() -> Iterator[Director]:
    """A mock Director whose plugin directory is bareosdir's own plugins
    directory; closed after the test."""
    director = Director()
    try:
        yield director
    finally:
        director.close()
