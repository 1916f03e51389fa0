"""The README as a new user reads it: every command in its bash blocks exists and parses, the python block runs.

The setup commands themselves (a fresh .venv from PyPI) are not rerun here: the test checks that the
scripts they name exist and are executable and that the commands after them parse, then runs the
cheap ones and the README's Python example on a freshly generated data set.
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

from hugectr_core import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
VENV_BIN = os.path.dirname(sys.executable)   # the interpreter running the tests is the README's .venv


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def commands() -> list[list[str]]:
    """Every simple command of every bash block (``a && b`` is two commands), as argv lists."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                if part.strip() and not part.strip().startswith("#"):
                    out.append(shlex.split(part))
    return out


def resolve(program: str) -> str:
    """``.venv/bin/X`` -> the X beside the running interpreter (the tests run inside that venv)."""
    return os.path.join(VENV_BIN, os.path.basename(program)) if program.startswith(".venv/bin/") else \
        os.path.join(ROOT, program)


def test_readme_opens_with_the_two_setup_commands():
    first, second = blocks("bash")[:2]
    assert first.strip() == "./scripts/setup && .venv/bin/python examples/dcn_learnable.py"
    assert second.strip() == "./scripts/setup test && .venv/bin/python -m pytest -q"


@pytest.mark.parametrize("argv", commands(), ids=lambda a: " ".join(a)[:60])
def test_every_readme_command_exists_and_parses(argv):
    program = resolve(argv[0])
    assert os.path.isfile(program) and os.access(program, os.X_OK), f"{argv[0]} is not an executable file"
    args = argv[1:]
    if os.path.basename(program).startswith("python"):
        if args[:1] == ["-m"]:
            assert args[1] == "pytest"
            return
        script = os.path.join(ROOT, args[0])
        assert os.path.isfile(script), f"{args[0]} does not exist"
        help_run = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, cwd=ROOT)
        assert help_run.returncode == 0 and "usage" in help_run.stdout
    elif os.path.basename(program) == "hugectr":
        parsed = cli.build_parser().parse_args(args)   # exits 2 on a flag the command does not know
        for path in (getattr(parsed, "script", None),):
            assert path is None or os.path.isfile(os.path.join(ROOT, path)), f"{path} does not exist"
    elif os.path.basename(program) == "pip":
        assert args[:2] == ["install", "-e"] and args[2].startswith(".[")
        extras = args[2][2:-1].split(",")
        pyproject = open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8").read()
        assert all(re.search(rf"^{e} = \[", pyproject, flags=re.M) for e in extras)
    else:
        assert argv[0] == "./scripts/setup" and args in ([], ["test"])


def test_readme_cli_commands_run(tmp_path):
    """The `hugectr` commands of the README, run in order in a scratch folder (small sizes where it matters)."""
    exe = os.path.join(VENV_BIN, "hugectr")
    env = dict(os.environ, HUGECTR_PROGRESS="0")
    for argv in commands():
        if os.path.basename(argv[0]) != "hugectr":
            continue
        args = [a.replace("examples/", os.path.join(ROOT, "examples") + "/") for a in argv[1:]]
        if args[0] == "train":   # fewer iterations than written: the curves, not the AUC, are checked here
            args = [("12" if prev == "--iters" else a) for prev, a in zip([""] + args, args)] + ["--device", "cpu"]
        if args[0] == "bench":
            args = args[:1] + ["--device", "cpu", "--iters", "2", "--warmup", "1", "--batch", "64",
                               "--slot-sizes", "100,100", "--hidden", "8"]
        done = subprocess.run([exe, *args], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert done.returncode == 0, f"hugectr {' '.join(args)}: {done.stderr[-2000:]}"
    assert (tmp_path / "runs" / "dcn.png").stat().st_size > 10_000
    assert (tmp_path / "data" / "quick" / "train.bin").is_file()


def test_readme_python_example_trains(tmp_path, monkeypatch, capsys):
    (code,) = blocks("python")
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import dcn_learnable
    finally:
        sys.path.pop(0)
    monkeypatch.chdir(tmp_path)
    dcn_learnable.generate("./data/dcn")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Memory plan" in out and out.count("Iter: ") == 6 and "Evaluation, AUC" in out
    model = namespace["model"]
    assert model.runtime.step == 180
    auc = float(re.findall(r"Evaluation, AUC: ([0-9.]+)", out)[-1])
    assert 0.6 < auc <= 1.0
