"""What every client shares about its life: the ``with`` / ``async with`` blocks that close it."""

from __future__ import annotations


class Closing:
    """``with client:`` closes the client at the block's end (``close`` is the client's own)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncClosing:
    """``async with client:`` closes the client at the block's end."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
