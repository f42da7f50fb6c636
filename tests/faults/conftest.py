"""The web stack of the fault-injection suite: php-fpm behind a real Caddy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from services.caddy import Caddy, run_caddy
from services.php_fpm import PhpFpm, run_php_fpm


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[PhpFpm, Caddy]]:
    """php-fpm behind a real Caddy: ``/checkout`` answers 500, PHP scripts run in the pool."""
    with run_php_fpm(tmp_path / "fpm", max_children=4) as fpm:
        body = (
            '\thandle /checkout {\n\t\trespond "boom" 500\n\t}\n'
            f"\troot * {fpm.docroot}\n"
            f"\tphp_fastcgi unix/{fpm.socket}"
        )
        with run_caddy(tmp_path / "caddy", ["shop.test"], body) as caddy:
            yield fpm, caddy
