"""The Azurite launcher: a restart keeps ports and data (chaos tests rely on it); busy ports fail clearly."""

from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from tools.azurite import Azurite, AzuriteError

pytestmark = pytest.mark.azurite


def test_restart_keeps_the_same_endpoints_and_the_stored_messages(tmp_path: Path) -> None:
    with Azurite.on_free_ports(tmp_path / "data") as emulator:
        connection_string = emulator.connection_string
        client = QueueClient.from_connection_string(connection_string, "citas")
        client.create_queue()
        client.send_message("sigue aquí")
        emulator.stop()
        assert not emulator.running
        emulator.start()
        assert emulator.connection_string == connection_string
        assert [m.content for m in client.peek_messages()] == ["sigue aquí"]
    assert not emulator.running


def test_starting_on_ports_already_taken_fails_with_a_clear_error(azurite: Azurite, tmp_path: Path) -> None:
    second = Azurite(tmp_path / "other", azurite.ports)
    with pytest.raises(AzuriteError, match="already in use"):
        second.start()
