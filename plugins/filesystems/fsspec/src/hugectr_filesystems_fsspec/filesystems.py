"""FileSystem contract classes over fsspec: S3 (s3fs), HDFS (pyarrow), GCS (gcsfs) and Other (any fsspec URL).

Each class is built from ``DataSourceParams(source, server, port)`` and connects lazily on first
use. Every remote failure other than "no such file" becomes a ``RemoteFileSystemError`` that names
the store and endpoint (never the credentials); connect timeouts and retries are kept low so an
unreachable endpoint fails within a few seconds instead of hanging the training loop.

Example:
    >>> fs = S3(server="us-east-1")
    >>> fs.strip("s3://bucket/data/train.parquet"), fs.strip("bucket/data/train.parquet")
    ('bucket/data/train.parquet', 'bucket/data/train.parquet')
"""
from __future__ import annotations

import importlib
import os
import threading
from urllib.parse import urlparse

from hugectr_core.contracts.filesystem import FileSystem
from hugectr_core.errors import HugeCTRError

CONNECT_TIMEOUT_S = 3      # seconds to open a connection before giving up
READ_TIMEOUT_S = 60        # seconds a single read may stall (large objects stream in many reads)
S3_ENDPOINT_VARS = ("HUGECTR_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
GCS_ENDPOINT_VARS = ("HUGECTR_GCS_ENDPOINT", "STORAGE_EMULATOR_HOST")
_NOT_WRAPPED = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)


class RemoteFileSystemError(HugeCTRError, OSError):
    """A remote store cannot be reached or refused an operation; the message names store and endpoint.

    Example:
        >>> issubclass(RemoteFileSystemError, OSError)
        True
    """


class MissingDependencyError(HugeCTRError, ImportError):
    """The Python package a filesystem needs is not installed; the message says what to install.

    Example:
        >>> str(MissingDependencyError("GCS needs gcsfs: run `pip install gcsfs`"))
        'GCS needs gcsfs: run `pip install gcsfs`'
    """


def require(module: str, store: str, install: str):
    """Import ``module`` or raise MissingDependencyError naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{store} filesystem needs the Python package '{module}', which is not "
                                     f"installed ({exc}); run `{install}`") from exc


class FsspecFileSystem(FileSystem):
    """Base: the FileSystem contract over one lazily created fsspec filesystem.

    Subclasses set ``store`` and ``protocols`` and implement ``_create`` and ``endpoint``.
    """

    store = "fsspec"
    protocols: tuple = ()

    def __init__(self, server: str = "localhost", port: int = 9000):
        super().__init__(server, port)
        self._fs = None
        self._lock = threading.Lock()

    # ----- subclass hooks ------------------------------------------------------------------------
    def _create(self):
        raise NotImplementedError

    @property
    def endpoint(self) -> str:
        return f"{self.server}:{self.port}"

    def strip(self, path: str) -> str:
        """The path as the fsspec filesystem wants it: without ``<protocol>://`` (bucket/key for object stores)."""
        for proto in self.protocols:
            if path.startswith(f"{proto}://"):
                return path[len(proto) + 3:]
        return path.lstrip("/") if self.protocols else path

    # ----- plumbing ------------------------------------------------------------------------------
    @property
    def fs(self):
        """The fsspec filesystem, created on first use."""
        with self._lock:
            if self._fs is None:
                self._fs = self._create()
            return self._fs

    def _call(self, what: str, path: str, fn):
        try:
            return fn()
        except (HugeCTRError, *_NOT_WRAPPED):
            raise
        except Exception as exc:  # noqa: BLE001 - every store raises its own types; callers get one
            raise RemoteFileSystemError(
                f"{self.store} ({self.endpoint}): {what} '{path}' failed: {_short(exc)}. "
                f"{self._hint(exc)}") from exc

    def _hint(self, exc: Exception) -> str:
        if isinstance(exc, PermissionError):
            return "Check the credentials and the bucket/object permissions."
        return "Check that the endpoint is reachable and the DataSourceParams server/port are right."

    # ----- the FileSystem contract ----------------------------------------------------------------
    def open(self, path, mode="rb"):
        return self._call(f"open ({mode})", path, lambda: self.fs.open(self.strip(path), mode))

    def exists(self, path):
        return bool(self._call("exists", path, lambda: self.fs.exists(self.strip(path))))

    def makedirs(self, path):
        self._call("makedirs", path, lambda: self.fs.makedirs(self.strip(path), exist_ok=True))

    def rename(self, src, dst):
        """Replace ``dst`` by ``src`` (file or folder). Object stores have no rename: copy, then delete."""
        self._call("rename to '" + dst + "' of", src, lambda: _move(self.fs, self.strip(src), self.strip(dst)))

    def remove(self, path):
        def rm():
            p = self.strip(path)
            if self.fs.exists(p):
                self.fs.rm(p, recursive=True)
        self._call("remove", path, rm)

    def size(self, path):
        return int(self._call("size", path, lambda: self.fs.size(self.strip(path))))

    def listdir(self, path) -> list:
        """Names directly under ``path`` (for checkpoint folders); not part of the core contract."""
        return self._call("listdir", path,
                          lambda: sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.strip(path),
                                                                                               detail=False)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint})"   # never the credentials


class S3(FsspecFileSystem):
    """Amazon S3 or an S3-compatible store through s3fs.

    ``server`` is the AWS region (HugeCTR's meaning); a ``server`` containing ``://`` is taken as
    the endpoint URL instead. The environment variable ``HUGECTR_S3_ENDPOINT`` (or
    ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``) overrides the endpoint, e.g. for a local
    MinIO/moto server. Credentials come from the usual AWS sources (``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, profiles) and are never logged. Paths may be
    ``s3://bucket/key`` or ``bucket/key``.

    Example:
        >>> S3(server="eu-west-1").region, S3(server="http://127.0.0.1:9000").endpoint
        ('eu-west-1', 'http://127.0.0.1:9000')
    """

    store = "S3"
    protocols = ("s3", "s3a", "s3n")

    @property
    def endpoint_url(self) -> str | None:
        for var in S3_ENDPOINT_VARS:
            if os.environ.get(var):
                return os.environ[var]
        return self.server if "://" in str(self.server) else None

    @property
    def region(self) -> str | None:
        server = str(self.server or "")
        if server and server != "localhost" and "://" not in server:
            return server
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or f"AWS region {self.region or '(default)'}"

    def _create(self):
        s3fs = require("s3fs", "S3", "pip install s3fs")
        # us-east-1 is S3's default and must not be sent as a bucket LocationConstraint (s3fs sends the
        # client's region when it creates a bucket), so it is left to botocore's default.
        client_kwargs = {"region_name": self.region} if self.region not in (None, "us-east-1") else {}
        fs = s3fs.S3FileSystem(
            endpoint_url=self.endpoint_url, client_kwargs=client_kwargs, skip_instance_cache=True,
            use_listings_cache=False,
            config_kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                           "retries": {"max_attempts": 1, "mode": "standard"}})
        fs.retries = 1  # s3fs's own retry loop (with back-off) on top of botocore's
        return fs


class GCS(FsspecFileSystem):
    """Google Cloud Storage through gcsfs (optional: ``pip install gcsfs``).

    A ``server`` containing ``://`` (or ``HUGECTR_GCS_ENDPOINT`` / ``STORAGE_EMULATOR_HOST``) is the
    endpoint URL; credentials come from the usual Google sources. Paths: ``gs://bucket/key``,
    ``gcs://bucket/key`` or ``bucket/key``.

    Example:
        >>> GCS().strip("gs://bucket/a/b")
        'bucket/a/b'
    """

    store = "GCS"
    protocols = ("gs", "gcs")

    @property
    def endpoint_url(self) -> str | None:
        for var in GCS_ENDPOINT_VARS:
            if os.environ.get(var):
                return os.environ[var]
        return self.server if "://" in str(self.server) else None

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or "storage.googleapis.com"

    def _create(self):
        gcsfs = require("gcsfs", "GCS", "pip install gcsfs")
        kwargs = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
        fs = gcsfs.GCSFileSystem(skip_instance_cache=True, timeout=CONNECT_TIMEOUT_S * 5, **kwargs)
        fs.retries = 1
        return fs


class HDFS(FsspecFileSystem):
    """HDFS through pyarrow's libhdfs binding (fsspec ``arrow`` implementation).

    Needs pyarrow and a Hadoop client on this machine (``JAVA_HOME``, ``HADOOP_HOME``,
    ``CLASSPATH=$(hadoop classpath --glob)``). ``server``/``port`` are the name node; an
    ``hdfs://host:port/path`` path is reduced to ``/path``. Client retries are limited so an
    unreachable name node fails fast.

    Example:
        >>> HDFS("namenode", 9000).strip("hdfs://namenode:9000/data/list.txt")
        '/data/list.txt'
    """

    store = "HDFS"
    protocols = ("hdfs", "viewfs")

    def strip(self, path: str) -> str:
        if "://" in path:
            return urlparse(path).path or "/"
        return path

    def _create(self):
        require("pyarrow", "HDFS", "pip install pyarrow")
        arrow = require("fsspec.implementations.arrow", "HDFS", "pip install fsspec pyarrow")
        extra_conf = {"ipc.client.connect.max.retries": "1",
                      "ipc.client.connect.max.retries.on.timeouts": "1",
                      "ipc.client.connect.timeout": str(CONNECT_TIMEOUT_S * 1000)}
        try:
            return arrow.HadoopFileSystem(host=self.server, port=int(self.port), extra_conf=extra_conf)
        except Exception as exc:  # noqa: BLE001 - libhdfs load and connect errors arrive as OSError/ArrowException
            raise RemoteFileSystemError(
                f"HDFS ({self.endpoint}): cannot connect: {_short(exc)}. HDFS needs a reachable name "
                f"node at DataSourceParams(server, port) and a Hadoop client for pyarrow (JAVA_HOME, HADOOP_HOME, "
                f"CLASSPATH=$(hadoop classpath --glob), libhdfs.so on ARROW_LIBHDFS_DIR)") from exc


class Other(FsspecFileSystem):
    """Any fsspec URL (``memory://``, ``ftp://``, ``abfs://`` ...), chosen per path by its protocol.

    ``server`` may name a default protocol for paths without one (e.g. ``server="memory"``).

    Example:
        >>> fs = Other(server="memory")
        >>> with fs.open("memory://hugectr-doc/x.txt", "wb") as f:
        ...     _ = f.write(b"hi")
        >>> fs.size("hugectr-doc/x.txt")
        2
    """

    store = "Other"

    @property
    def endpoint(self) -> str:
        return f"fsspec protocol {self.server}"

    def _fs_for(self, path: str):
        fsspec = require("fsspec", "Other", "pip install fsspec")
        if "://" not in path:
            if not self.server or self.server == "localhost":
                raise RemoteFileSystemError(f"Other: path '{path}' has no protocol (like memory:// or ftp://) and "
                                            f"DataSourceParams(server=...) names none")
            path = f"{self.server}://{path}"
        return fsspec.core.url_to_fs(path)

    def strip(self, path: str) -> str:
        return self._fs_for(path)[1]

    @property
    def fs(self):
        raise AttributeError("Other picks an fsspec filesystem per path; use the FileSystem methods")

    def _run(self, what, path, method, *args, **kwargs):
        def call():
            fs, p = self._fs_for(path)
            return getattr(fs, method)(p, *args, **kwargs)
        return self._call(what, path, call)

    def open(self, path, mode="rb"):
        return self._run(f"open ({mode})", path, "open", mode)

    def exists(self, path):
        return bool(self._run("exists", path, "exists"))

    def makedirs(self, path):
        self._run("makedirs", path, "makedirs", exist_ok=True)

    def rename(self, src, dst):
        def move():
            fs, s = self._fs_for(src)
            _move(fs, s, self._fs_for(dst)[1])
        self._call("rename to '" + dst + "' of", src, move)

    def remove(self, path):
        def rm():
            fs, p = self._fs_for(path)
            if fs.exists(p):
                fs.rm(p, recursive=True)
        self._call("remove", path, rm)

    def size(self, path):
        return int(self._run("size", path, "size"))

    def listdir(self, path) -> list:
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self._run("listdir", path, "ls", detail=False))


def _short(exc: Exception) -> str:
    """``Type: first line of the message`` (libhdfs errors list dozens of probed paths)."""
    lines = str(exc).strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
    return f"{type(exc).__name__}: {lines[0][:300]}{more}"


def _move(fs, src: str, dst: str) -> None:
    """Move file or folder ``src`` over ``dst`` (removed first), object by object where folders are prefixes."""
    if fs.exists(dst):
        fs.rm(dst, recursive=True)
    if not fs.isdir(src):
        fs.mv(src, dst)
        return
    prefix = src.rstrip("/") + "/"
    for path in fs.find(src):
        fs.copy(path, dst.rstrip("/") + "/" + path[len(prefix):] if path.startswith(prefix) else dst)
    fs.rm(src, recursive=True)
