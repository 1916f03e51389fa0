"""Security rules of docs/security.md that a test can hold: no pickle/eval/exec of anything, metadata paths
confined to their folder, credentials kept out of logs and reprs."""
import pathlib
import re

import pytest

import hugectr
from hugectr_core.errors import DataError

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(r"\bimport pickle\b|\bpickle\.|\bmarshal\.loads|\bcPickle\b|(?<![\w.])(?<!def )eval\(|(?<![\w.])(?<!def )exec\("
                       r"|\bshelve\b|yaml\.load\(|allow_pickle\s*=\s*True")


def source_files():
    for top in ("hugectr_core", "hugectr", "plugins"):
        for path in (ROOT / top).rglob("*.py"):
            if "tests" not in path.parts and ".venv" not in path.parts:
                yield path


def test_no_pickle_or_eval_in_the_source_tree():
    files = list(source_files())
    assert len(files) > 50
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in files
            for n, line in enumerate(p.read_text().splitlines(), 1) if FORBIDDEN.search(line)]
    assert not hits, "pickle/eval/exec in the source tree:\n" + "\n".join(hits)


@pytest.mark.parametrize("name", ["../outside.parquet", "a/../../x.parquet", "..\\x.parquet"])
def test_metadata_file_names_stay_in_their_folder(tmp_path, name):
    from hugectr_reader_parquet import Metadata

    (tmp_path / "_metadata.json").write_text('{"file_stats": [{"file_name": "%s", "num_rows": 1}], "labels": [], '
                                             '"conts": [], "cats": []}' % name.replace("\\", "\\\\"))
    from hugectr_core.localfs import LocalFileSystem
    with pytest.raises(DataError, match="leaves the metadata folder"):
        Metadata.load(LocalFileSystem(), str(tmp_path / "part0.parquet"))


def test_absolute_metadata_names_resolve_to_a_basename(tmp_path):
    from hugectr_core.localfs import LocalFileSystem
    from hugectr_reader_parquet import Metadata

    (tmp_path / "_metadata.json").write_text('{"file_stats": [{"file_name": "/etc/passwd", "num_rows": 1}]}')
    md = Metadata.load(LocalFileSystem(), str(tmp_path / "x.parquet"))
    assert list(md.num_rows) == ["passwd"]


def test_credentials_never_in_filesystem_reprs_or_errors(monkeypatch, caplog):
    fsspec_fs = pytest.importorskip("hugectr_filesystems_fsspec.filesystems")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDSHOULDNOTLEAK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRETSHOULDNOTLEAK")
    fs = fsspec_fs.S3(server="http://127.0.0.1:9")  # nothing listens there: the error path runs
    texts = [repr(fs), str(vars(fs))]
    with caplog.at_level("DEBUG", logger="hugectr"):
        try:
            fs.exists("s3://bucket/key")
        except hugectr.Error as exc:
            texts.append(str(exc))
    texts += [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if "SHOULDNOTLEAK" in t]
