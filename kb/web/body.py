"""A request body read as it arrives, in batches a worker thread writes while the next one is
read: never whole in memory, two cores at work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio

# One trip to a worker thread for this much: ASGI servers hand the body over in pieces of
# 64 to 256 KiB, and a thread hop for each would cost more than the write itself.
BATCH = 1024 * 1024


async def batches(stream: AsyncIterator[bytes], size: int = BATCH) -> AsyncIterator[list[bytes]]:
    """A request body in lists of pieces of at least `size` bytes in all: kept as they came,
    never joined (a join would copy every byte once more)."""
    pending: list[bytes] = []
    count = 0
    try:
        async for chunk in stream:
            if not chunk:
                continue
            pending.append(chunk)
            count += len(chunk)
            if count >= size:
                yield pending
                pending, count = [], 0
    except Exception:
        # The connection dropped: what did arrive is handed on first (tus keeps it).
        if pending:
            yield pending
        raise
    if pending:
        yield pending


async def pipelined(
    batches: AsyncIterator[list[bytes]], write: Callable[[list[bytes]], object]
) -> None:
    """While a worker thread writes and hashes one batch (both release the GIL), the event
    loop reads the next: two cores at work, at most two batches in memory."""
    send, receive_batches = anyio.create_memory_object_stream[list[bytes]](1)

    async def consume() -> None:
        async with receive_batches:
            async for batch in receive_batches:
                await anyio.to_thread.run_sync(write, batch)

    source_failed: Exception | None = None
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            async with send:
                try:
                    async for batch in batches:
                        await send.send(batch)
                except Exception as exc:  # a dropped connection: what arrived is still written
                    source_failed = exc
    except BaseExceptionGroup as group:  # one failure at a time: the first one says why
        raise _first_cause(group) from None
    if source_failed is not None:
        raise source_failed


def _first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The failure itself, not its echoes (the other side cancelled, or its stream broken)."""
    echoes = (anyio.get_cancelled_exc_class(), anyio.BrokenResourceError)
    leaves: list[BaseException] = []
    pending: list[BaseException] = list(group.exceptions)
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = list(exc.exceptions)
        else:
            leaves.append(exc)
    return next((e for e in leaves if not isinstance(e, echoes)), leaves[0])
