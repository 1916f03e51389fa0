"""Pick the FileSystem for a ``DataSourceParams`` or for a path's URL prefix.

Local is built in (``LocalFileSystem``); HDFS, S3, GCS and Other come from the ``hugectr.filesystems``
registry (``hugectr-filesystems-fsspec``), so a missing one says what to install.

Example:
    >>> from hugectr_core.params import DataSourceParams
    >>> type(filesystem_for(DataSourceParams())).__name__, type(filesystem_for_path("/tmp/x")).__name__
    ('LocalFileSystem', 'LocalFileSystem')
    >>> filesystem_kind("s3://bucket/key"), filesystem_kind("hdfs://nn:9000/a"), filesystem_kind("gs://b/k")
    ('S3', 'HDFS', 'GCS')
"""
from __future__ import annotations

from urllib.parse import urlparse

from .contracts.filesystem import FileSystem
from .enums import type_string
from .errors import ConfigError
from .localfs import LocalFileSystem
from .plugins import registry

# URL prefix -> FileSystemType_t name
PREFIXES = {"s3://": "S3", "s3a://": "S3", "s3n://": "S3", "hdfs://": "HDFS", "viewfs://": "HDFS",
            "gs://": "GCS", "gcs://": "GCS"}


def filesystem_kind(path: str) -> str | None:
    """The FileSystemType_t name a path's prefix asks for: S3/HDFS/GCS, Other for any other URL, None for none."""
    for prefix, kind in PREFIXES.items():
        if path.startswith(prefix):
            return kind
    if "://" in path and not path.startswith("file://"):
        return "Other"
    return None


def filesystem_for(data_source_params=None) -> FileSystem:
    """The FileSystem of ``DataSourceParams(source, server, port)``; Local when None or source=Local."""
    kind = type_string(data_source_params.source) if data_source_params is not None else "Local"
    if kind == "Local":
        return LocalFileSystem()
    return registry("filesystems").load(kind)(server=data_source_params.server, port=data_source_params.port)


def filesystem_for_path(path: str, data_source_params=None) -> FileSystem:
    """The FileSystem for ``path``: by its URL prefix (``s3://``, ``hdfs://``, ``gs://``, other fsspec URLs),
    else the one of ``data_source_params`` (so a plain ``bucket/key`` works with source=S3), else Local.

    ``data_source_params`` also supplies server/port (S3 region, HDFS name node) when its source matches
    the prefix; an ``hdfs://host:port/...`` path without matching params uses the URL's host and port.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError(f"a file or folder path must be a non-empty string, got {path!r}")
    kind = filesystem_kind(path)
    if kind is None:
        return filesystem_for(data_source_params)
    if data_source_params is not None and type_string(data_source_params.source) == kind:
        return filesystem_for(data_source_params)
    cls = registry("filesystems").load(kind)
    if kind == "HDFS":
        url = urlparse(path)
        return cls(server=url.hostname or "default", port=url.port or 8020)
    if kind == "Other":
        return cls(server=path.split("://", 1)[0])
    return cls()
