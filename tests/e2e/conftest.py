"""Live LedgerFS servers (`tests.support.servers`) for the end-to-end tests.

`api_server` runs every test that uses it twice, once per mode (test ids end in `[embedded]`
and `[distributed]`): the API contract holds in both. One server per module and mode.
"""

from collections.abc import Iterator

import pytest

from tests.support.servers import MODES, LiveServer


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The web process as `make run` starts it (embedded mode)."""
    with LiveServer(tmp_path_factory.mktemp("server")) as server:
        yield server.url


@pytest.fixture(scope="module", params=MODES)
def api_server(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    mode = request.param
    postgres = request.getfixturevalue("postgres_server") if mode == "distributed" else None
    directory = tmp_path_factory.mktemp(f"{request.module.__name__.rpartition('.')[2]}-{mode}")
    with LiveServer(directory, mode, postgres_server=postgres) as server:
        yield server
