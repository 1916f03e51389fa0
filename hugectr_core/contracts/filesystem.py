"""The filesystem contract: what the engine needs to read data and write checkpoints anywhere."""
from __future__ import annotations


class FileSystem:
    """Base class of filesystem plugins (Local lives in the core; fsspec-backed ones in plugins)."""

    def __init__(self, server: str = "localhost", port: int = 9000):
        self.server = server
        self.port = port

    def open(self, path: str, mode: str = "rb"):
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        """Atomic where the store allows: checkpoints are written to a temporary name, then renamed."""
        raise NotImplementedError

    def remove(self, path: str) -> None:
        raise NotImplementedError

    def size(self, path: str) -> int:
        raise NotImplementedError
