"""The dashboard's fixtures (the scene itself is in tui_scene.py, which the tests import)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tui_scene import Scene, scene


@pytest.fixture(scope="package")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One agent for the tests that only look (they change nothing on it)."""
    with scene(tmp_path_factory.mktemp("tui")) as ready:
        yield ready
