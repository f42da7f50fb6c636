"""The dashboard's fixtures (the scene itself is in tui_scene.py, which the tests import)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import pytest_textual_snapshot
from tui_scene import Scene, scene

# pytest-textual-snapshot 1.0 names its extension with syrupy 4's attribute; syrupy 5 and later (the ones that run
# on pytest 9) read ``file_extension``: without this the snapshots are written as .raw instead of .svg
pytest_textual_snapshot.SVGImageExtension.file_extension = "svg"


@pytest.fixture(scope="package")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    """One agent for the tests that only look (they change nothing on it)."""
    with scene(tmp_path_factory.mktemp("tui")) as ready:
        yield ready
