"""moto in server mode, with DynamoDB's atomic conditional writes restored.

moto gap: the moto server handles requests on concurrent threads, and its
DynamoDB ``UpdateItem``/``PutItem``/``DeleteItem`` check the condition and apply
the write as separate Python steps without a lock. Two conditional writes
racing for the same item can then both succeed - which DynamoDB guarantees
never happens, and which is exactly what the broker's "never double-book"
rests on. Against the plain server the 200-claims test does catch such double
wins (the loser's follow-up write then fails its session check).

This runs the very same moto server, with one lock around the DynamoDB
backend's write operations: condition check and write become one step, as in
DynamoDB. Request parsing, reads and every other service stay concurrent.

    python -m tests.integration.pool.serial_moto PORT
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

from moto import server
from moto.dynamodb.models import DynamoDBBackend

WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def atomic_writes() -> None:
    lock = threading.RLock()

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in WRITES:
        if hasattr(DynamoDBBackend, name):
            setattr(DynamoDBBackend, name, locked(getattr(DynamoDBBackend, name)))


def main(argv: list[str]) -> None:
    atomic_writes()
    server.main(["-H", "127.0.0.1", "-p", argv[0]])


if __name__ == "__main__":
    main(sys.argv[1:])
