"""The sync protocol against a model of GHL, the network and two workers (see `tests.unit.protocol_model`)."""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from tests.unit.protocol_model import CI_SETTINGS, GhlWinsMachine, ProtocolMachine, RvThreeWinsMachine


@pytest.mark.parametrize("machine", [ProtocolMachine, RvThreeWinsMachine, GhlWinsMachine], ids=lambda m: m.policy)
def test_no_edit_is_lost_duplicated_or_echoed_under_any_interleaving(machine: type[ProtocolMachine]) -> None:
    run_state_machine_as_test(machine, settings=CI_SETTINGS)
