"""hugectr-filesystems-fsspec: remote FileSystems (S3, HDFS, GCS, any fsspec URL) for hugectr-core.

Example:
    >>> from hugectr_filesystems_fsspec import S3
    >>> S3(server="us-west-2").strip("s3://my-bucket/criteo/file_list.txt")
    'my-bucket/criteo/file_list.txt'
"""
from .filesystems import (GCS, HDFS, S3, FsspecFileSystem, MissingDependencyError, Other, RemoteFileSystemError,
                          require)

__all__ = ["GCS", "HDFS", "S3", "FsspecFileSystem", "MissingDependencyError", "Other", "RemoteFileSystemError",
           "require"]
