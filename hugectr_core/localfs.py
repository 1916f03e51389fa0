"""The Local filesystem, registered through the same entry-point path as third-party ones."""
from __future__ import annotations

import os
import shutil

from .contracts.filesystem import FileSystem
from .errors import DataError


class LocalFileSystem(FileSystem):
    """Plain files on this machine.

    Example:
        >>> fs = LocalFileSystem()
        >>> fs.exists("/")
        True
    """

    def open(self, path, mode="rb"):
        if os.path.isdir(path):  # readers and checkpoints name files: say so rather than IsADirectoryError
            raise DataError(f"'{path}' is a folder; a file name is needed here")
        return open(path, mode)

    def exists(self, path):
        return os.path.exists(path)

    def makedirs(self, path):
        os.makedirs(path, exist_ok=True)

    def rename(self, src, dst):
        if os.path.isdir(dst) and os.path.isdir(src):
            shutil.rmtree(dst)
        os.replace(src, dst)

    def remove(self, path):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)

    def size(self, path):
        return os.path.getsize(path)
