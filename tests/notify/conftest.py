from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.notify.gated import GatedServer


@pytest.fixture
async def gated_server() -> AsyncIterator[Callable[..., Awaitable[GatedServer]]]:
    servers: list[GatedServer] = []

    async def make(status: int = 200) -> GatedServer:
        server = await GatedServer(status).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()
