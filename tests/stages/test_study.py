"""Stage study end to end: the same bits whatever the chunk size, the number of workers or
the cluster a chunk ran on; an interrupted or failing study leaves no partial output."""

import copy
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from tests.conftest import ROOT, sandbox_env, write_params
from tests.helpers.dask_cluster import survivors
from tests.helpers.signals import needs_sigint

pytestmark = pytest.mark.slow
OUTPUTS = ("cells.parquet", "traces.parquet", "classes.parquet")


def tiny(raw: dict, steps: int = 40, **engine: object) -> dict:
    """A study of 2 scenarios x 2 losses x 2 optimizers x 2 clips, a few lrs, 15 seeds, 40
    steps, with its edge and twin parts: ~1,000 cells, seconds to train."""
    data = copy.deepcopy(raw)
    s = data["study"]
    s.update(
        steps=steps,
        scenarios=["tutorial", "noisy"],
        losses=["mse", "huber"],
        optimizers=["sgd", "adam"],
        clips=["none", "norm"],
        lr={"low": 0.01, "high": 1.0, "per_decade": 2, "near_edge": [0.9]},
        stability={"steps": 200, "step": 0.05, "span": 0.1, "tol": 1.0e-4},
    )
    s["chunk"] = engine.pop("chunk", 10000)
    data["env"].update({"workers": 1, "scheduler": None, **engine})  # where the chunks run
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Path:
    """The tiny study's data, written by the generate stage."""
    folder = tmp_path_factory.mktemp("data")
    p = write_params(folder / "params.yaml", tiny(raw_params))
    run = subprocess.run(
        [sys.executable, "-m", "pipeline", "generate", "--params", str(p),
         "--out", str(folder / "points.csv"), "--scenarios", str(folder / "scenarios.csv"),
         "--classes", str(folder / "classes.csv")],
        cwd=ROOT, capture_output=True, text=True, env=sandbox_env(folder),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return folder


def command(data: Path, params_file: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "pipeline", "study", "--params", str(params_file),
        "--scenarios", str(data / "scenarios.csv"), "--points", str(data / "points.csv"),
        "--classes", str(data / "classes.csv"), "--cells", str(out / OUTPUTS[0]),
        "--traces", str(out / OUTPUTS[1]), "--class-cells", str(out / OUTPUTS[2]),
        "--tuned", str(out / "tuned.csv"), "--manifest", str(out / "manifest.json"),
    ]  # fmt: skip


def study(
    data: Path, tmp: Path, raw: dict, name: str, steps: int = 40, **engine: object
) -> dict[str, pd.DataFrame]:
    """Run the stage with these engine settings into tmp/name; both tables read back."""
    out = tmp / name
    out.mkdir()
    p = write_params(out / "params.yaml", tiny(raw, steps, **engine))
    run = subprocess.run(command(data, p, out), cwd=ROOT, capture_output=True, text=True,
                         env=sandbox_env(tmp))  # fmt: skip
    assert run.returncode == 0, run.stderr
    return {f: pd.read_parquet(out / f) for f in OUTPUTS}


def assert_same_bits(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in OUTPUTS:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True)


@pytest.fixture(scope="module")
def in_process(data: Path, tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> dict:
    return study(data, tmp_path_factory.mktemp("here"), raw_params, "one")


def test_chunk_size_does_not_change_a_bit(
    in_process: dict, data: Path, tmp_path: Path, raw_params: dict
) -> None:
    """Chunks of 97 cells give the same tables, bit for bit, as chunks of 10,000."""
    small = study(data, tmp_path, raw_params, "small", chunk=97)

    assert_same_bits(in_process, small)
    assert len(in_process["cells.parquet"]) > 5 * 97  # several chunks


def test_a_local_cluster_gives_the_same_bits(
    in_process: dict, data: Path, tmp_path: Path, raw_params: dict
) -> None:
    """Two processes of this machine, chunks of 300: the same tables as one process."""
    assert_same_bits(in_process, study(data, tmp_path, raw_params, "local", chunk=300, workers=2))


def test_a_real_cluster_gives_the_same_bits(
    in_process: dict, data: Path, tmp_path: Path, raw_params: dict, scheduler: str
) -> None:
    """A `dask scheduler` and two `dask worker`s on 127.0.0.1, by param: the same tables."""
    there = study(data, tmp_path, raw_params, "cluster", chunk=300, scheduler=scheduler)

    assert_same_bits(in_process, there)


def test_a_killed_worker_costs_nothing_but_time(
    in_process: dict, data: Path, tmp_path: Path, raw_params: dict, scheduler: str
) -> None:
    """SIGKILL of a real worker mid-study: Dask runs its chunk again elsewhere (the cluster
    restarts the worker), and the tables come out complete and identical."""
    out = tmp_path / "killed"
    out.mkdir()
    long = tiny(raw_params, steps=400, chunk=50, scheduler=scheduler)  # long enough to be hit
    p = write_params(out / "params.yaml", long)
    stage = subprocess.Popen(command(data, p, out), cwd=ROOT, env=sandbox_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(3)  # the stage has started sending chunks
    assert stage.poll() is None, "the study ended before a worker could be killed"
    kill_a_worker()
    _, err = stage.communicate(timeout=300)

    assert stage.returncode == 0, err
    here = study(data, tmp_path, raw_params, "here", steps=400)
    assert_same_bits(here, {f: pd.read_parquet(out / f) for f in OUTPUTS})


def kill_a_worker() -> None:
    """SIGKILL one worker process of the `dask worker`s (its nanny starts another)."""
    nannies = [
        p for p in psutil.process_iter(["cmdline"])
        if (cmd := " ".join(p.info["cmdline"] or [])) and "dask" in cmd and " worker " in f"{cmd} "
    ]  # fmt: skip
    workers = [c for n in nannies for c in n.children(recursive=True)]
    assert workers, "no dask worker process found"
    os.kill(workers[0].pid, signal.SIGKILL)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_no_partial_output_and_no_worker(
    data: Path,
    tmp_path: Path,
    raw_params: dict,
    sig: signal.Signals,
    code: int,
    request: pytest.FixtureRequest,
) -> None:
    """Ctrl-C or SIGTERM while two processes train: exit 130/143, no table written, no
    temp file, no worker process left."""
    needs_sigint(request, sig)
    p = write_params(tmp_path / "params.yaml", tiny(raw_params, chunk=20, workers=2))
    stage = subprocess.Popen(command(data, p, tmp_path), cwd=ROOT, env=sandbox_env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    process = psutil.Process(stage.pid)
    while len(process.children(recursive=True)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # workers up and computing
    children = process.children(recursive=True)
    stage.send_signal(sig)
    _, err = stage.communicate(timeout=60)

    assert stage.returncode == code, err
    assert sorted(f.name for f in tmp_path.iterdir()) == ["params.yaml", "sandbox"]
    assert survivors(children, timeout=10) == []


def _corrupt(data: Path, tmp: Path, name: str, line: int, column: str, value: str) -> Path:
    """A copy of the tiny study's data whose `name` file has `value` in `column` of `line`."""
    folder = tmp / "data"
    shutil.copytree(data, folder)
    path = folder / name
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    return folder


@pytest.mark.parametrize(
    ("name", "line", "column", "value", "rule"),
    [
        ("classes.csv", 2, "x1", "nan", "'nan' is not a finite number"),
        ("classes.csv", 40, "label", "2", "'2' is not a class label (0 or 1)"),
        ("scenarios.csv", 7, "y", "nan", "'nan' is not a finite number"),
        ("scenarios.csv", 30, "x", "abc", "'abc' is not a finite number"),
        ("scenarios.csv", 3, "seed", "-1", "'-1' is not a whole number >= 0"),
    ],
)
def test_a_bad_value_in_a_data_file_stops_the_study_naming_file_line_and_column(
    data: Path,
    tmp_path: Path,
    raw_params: dict,
    name: str,
    line: int,
    column: str,
    value: str,
    rule: str,
) -> None:
    """A NaN or a string in classes.csv or scenarios.csv: exit 2 and one line naming the
    file, line, column and value, before anything is trained or written (a NaN in
    classes.csv trained on silently; one in scenarios.csv ended in a traceback)."""
    folder = _corrupt(data, tmp_path, name, line, column, value)
    out = tmp_path / "out"
    out.mkdir()
    p = write_params(out / "params.yaml", tiny(raw_params))

    run = subprocess.run(command(folder, p, out), cwd=ROOT, capture_output=True, text=True,
                         env=sandbox_env(tmp_path))  # fmt: skip

    assert run.returncode == 2 and run.stderr.splitlines() == [
        f"error: {folder / name}: line {line}, column {column}: {rule}"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["params.yaml"]
