"""A separate host process for the shared-budget tests: sends requests for one location, prints (status, when)."""

from __future__ import annotations

import json
import sys
import threading
import time

from azure.data.tables import TableClient
from pydantic import SecretStr

from shared.calls import CallRecord
from shared.ghl.client import GhlClient
from shared.ghl.rate_budget import TableRateBudget
from shared.ghl.tokens import PrivateTokenProvider
from tools.ghl_sandbox import DEMO_LOCATION_ID, DEMO_PRIVATE_TOKEN

from .scaled import SCALED_LIMITS

# python -m tests.integration.ghl_client.budget_worker SANDBOX_URL CONNECTION_STRING TABLE REQUESTS THREADS

Answer = tuple[int | None, float]


def send(sandbox_url: str, table: TableClient, requests: int, threads: int) -> list[Answer]:
    """`requests` GETs spread over `threads` threads sharing one client and the Table budget; each answer's
    status and the epoch time it arrived."""
    answers: list[Answer] = []
    lock = threading.Lock()

    def record(call: CallRecord) -> None:
        with lock:
            answers.append((call.status_code, time.time()))

    budget = TableRateBudget(table, SCALED_LIMITS)
    tokens = PrivateTokenProvider(SecretStr(DEMO_PRIVATE_TOKEN), DEMO_LOCATION_ID)
    with GhlClient(sandbox_url, tokens, budget, on_call=record) as client:
        share = [requests // threads + (i < requests % threads) for i in range(threads)]

        def work(count: int) -> None:
            for _ in range(count):
                client.get_location(DEMO_LOCATION_ID)

        workers = [threading.Thread(target=work, args=(count,)) for count in share]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return answers


def main(argv: list[str]) -> int:
    sandbox_url, connection_string, table_name, requests, threads = argv
    table = TableClient.from_connection_string(connection_string, table_name)
    print(json.dumps(send(sandbox_url, table, int(requests), int(threads))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
