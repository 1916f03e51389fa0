"""HugeCTR's file lists (Parquet and Norm sources): line 1 = the number of files N, then N paths."""
from __future__ import annotations

import posixpath

from .errors import DataError


def read_file_list(fs, list_path: str, reader: str) -> list:
    """Data-file paths of a file list; a relative path is taken as is when it exists (from the working
    folder), else against the list's folder; URLs (``s3://...``) are kept as they are.

    Every problem is a DataError naming ``reader`` and the list file.

    Example:
        >>> import os, tempfile
        >>> from hugectr_core.localfs import LocalFileSystem
        >>> d = tempfile.mkdtemp(); p = os.path.join(d, "list.txt")
        >>> _ = open(p, "w").write("2\\na.data\\nb.data\\n")
        >>> [os.path.basename(f) for f in read_file_list(LocalFileSystem(), p, "Norm")]
        ['a.data', 'b.data']
    """
    where = f"{reader}: file list '{list_path}'"
    if not fs.exists(list_path):
        raise DataError(f"{where} does not exist; check source/eval_source")
    try:
        with fs.open(list_path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{where} cannot be read ({exc})") from exc
    try:
        lines = [line.strip() for line in raw.decode("utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text ({exc}); it must hold the number of files on line 1, "
                        f"then one path per line") from exc
    if not lines:
        raise DataError(f"{where} is empty; line 1 must be the number of files")
    try:
        count, paths = int(lines[0]), lines[1:]
    except ValueError:
        raise DataError(f"{where} must start with the number of files on line 1, got {lines[0]!r}") from None
    if count != len(paths) or count < 1:
        raise DataError(f"{where} says {count} files on line 1 but lists {len(paths)}; fix the count line")
    base = posixpath.dirname(list_path)
    return [p if "://" in p or posixpath.isabs(p) or not base or fs.exists(p) else posixpath.join(base, p)
            for p in paths]
