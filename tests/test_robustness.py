"""Interrupted, killed, misconfigured and concurrent runs, with real processes and signals.

Each test runs the stages' own command lines (taken from dvc.yaml) or the real `dvc` in a
copy of the project under tmp_path, then checks what was left behind: exit codes, files
byte for byte, processes, and the MLflow store read back through MlflowClient.
"""

import contextlib
import copy
import hashlib
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from pipeline.files.atomic import TMP_SUFFIX
from pipeline.tracking.store import CONTENT_KEY, PARENT_RUN_TAG, PID_TAG
from tests.conftest import ROOT, cell_names, cell_table, copy_project, small_grid, write_params
from tests.helpers.signals import needs_sigint
from tools import deps

pytestmark = pytest.mark.slow
BIN = str(Path(sys.executable).parent)  # dvc and the stages' `python` come from this venv
SEEDS = [1, 2, 3, 4]  # 32 cells: publishing them takes long enough to be interrupted
OUTPUTS = ("data", "traces", "reports")  # every DVC output lives under one of these
TRAINING_OUTPUTS = ("traces", "reports/cells.csv", "reports/metrics.json")  # stage train's
# Seconds from SIGINT/SIGTERM to exit: the promise itself. Measured 0.06-0.4 s on a loaded
# 2-core machine; without gc.freeze() in pipeline/run/interrupt.py it was 1.0-1.7 s, so a
# looser limit would hide that regression.
STOP_LIMIT = 1.0


def environ() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)  # always the project's own sqlite store
    return env


def dvc(
    root: Path, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [f"{BIN}/dvc", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=environ(),
        timeout=timeout,
    )
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def stage_cmd(root: Path, stage: str) -> list[str]:
    """The stage's `cmd` from the project's dvc.yaml, run by this venv's python."""
    cmd = shlex.split(deps.stages(root)[stage]["cmd"])
    assert cmd[0] == "python", cmd
    return [sys.executable, *cmd[1:]]


def run_stage(root: Path, stage: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        stage_cmd(root, stage), cwd=root, capture_output=True, text=True, env=environ(), timeout=300
    )


class Stage:
    """A stage's command running in the background, its stderr collected as it comes."""

    def __init__(self, root: Path, stage: str) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            stage_cmd(root, stage),
            cwd=root,
            env=environ(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        while data := os.read(self.proc.stderr.fileno(), 1 << 16):
            self._chunks.append(data)

    @property
    def stderr(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def lines(self) -> list[str]:
        """stderr lines once the process is gone; tqdm's \\r-redrawn bars split apart."""
        self._reader.join(timeout=10)
        return [line.strip() for line in self.stderr.replace("\r", "\n").splitlines()]

    def wait_for(self, text: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.stderr}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout} s:\n{self.stderr}"
            time.sleep(0.02)

    def wait_training(self) -> None:
        """Until cells are being trained: the progress bar is up and a worker is running."""
        self.wait_for("train:")
        deadline = time.monotonic() + 60
        while not any("spawn_main" in " ".join(p.cmdline()) for p in self.descendants()):
            assert time.monotonic() < deadline, self.stderr
            time.sleep(0.05)
        time.sleep(1.0)

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def stop(self, sig: signal.Signals) -> tuple[int, float]:
        """Send `sig`; the exit code and the seconds from the signal to the exit."""
        sent = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        return code, time.monotonic() - sent


@pytest.fixture(autouse=True)
def _reap(tmp_path: Path) -> Iterator[None]:
    """After a (failed) test, end what it left running in its tmp_path."""
    yield
    for proc in processes_in(tmp_path):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


@pytest.fixture
def launch() -> Iterator[type[Stage]]:
    """Stage, with every process it started ended afterwards."""
    started: list[Stage] = []

    class Tracked(Stage):
        def __init__(self, root: Path, stage: str) -> None:
            super().__init__(root, stage)
            started.append(self)

    yield Tracked
    for stage in started:
        if stage.proc.poll() is None:
            stage.proc.kill()
            stage.proc.wait(timeout=30)


def processes_in(root: Path) -> list[psutil.Process]:
    """Live (non-zombie) processes whose working directory is inside `root`."""
    found = []
    for proc in psutil.process_iter(["cwd", "status"]):
        cwd = proc.info["cwd"]
        if cwd and proc.info["status"] != psutil.STATUS_ZOMBIE and Path(cwd).is_relative_to(root):
            found.append(proc)
    return found


def survivors(
    procs: list[psutil.Process], root: Path, timeout: float = 10
) -> list[tuple[int, str]]:
    """Those of `procs`, or of the processes working in `root`, still alive after `timeout`.
    Zombies count as gone: init reaps orphans here only every second or so."""

    def alive() -> list[psutil.Process]:
        live = []
        for proc in {*procs, *processes_in(root)}:
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    live.append(proc)
            except psutil.NoSuchProcess:
                pass
        return live

    deadline = time.monotonic() + timeout
    while (live := alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    described = []
    for proc in live:
        with contextlib.suppress(psutil.NoSuchProcess):
            described.append((proc.pid, " ".join(proc.cmdline())))
    return described


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under the output folders (temp files of atomic writes aside)."""
    files = [p for d in OUTPUTS for p in (root / d).rglob("*") if p.is_file()]
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(files)
        if not p.name.endswith(TMP_SUFFIX)
    }


def temp_leftovers(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob(f"*{TMP_SUFFIX}")
        if not p.relative_to(root).parts[0].startswith((".git", ".dvc"))
    )


def all_runs(root: Path) -> list:
    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    experiment = client.get_experiment_by_name("gradlab")
    return client.search_runs([experiment.experiment_id], max_results=5000)


def assert_every_cell_finished_once(root: Path) -> None:
    """Each cell of reports/cells.csv is exactly one FINISHED run, all under one FINISHED
    parent (a resumed publish keeps the parent it started); none RUNNING or FAILED."""
    runs = all_runs(root)
    cells = [r for r in runs if r.info.status == "FINISHED" and PARENT_RUN_TAG in r.data.tags]
    assert sorted(r.info.run_name for r in cells) == sorted(cell_names(root))
    assert not {r.info.status for r in runs} & {"RUNNING", "FAILED"}
    (parent,) = [r for r in runs if PARENT_RUN_TAG not in r.data.tags]
    assert parent.info.status == "FINISHED"
    assert {r.data.tags[PARENT_RUN_TAG] for r in cells} == {parent.info.run_id}


def remove_training_outputs(root: Path) -> None:
    """As before a first training: none of stage train's outputs exist."""
    shutil.rmtree(root / "traces")
    for name in TRAINING_OUTPUTS[1:]:
        (root / name).unlink()


def big_params(raw_params: dict) -> dict:
    """The committed grid (84 cells) at 2000 steps in two workers: ~35 s of training."""
    data = copy.deepcopy(raw_params)
    data["train"]["steps"] = 2000
    data["env"]["workers"] = 2
    return data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, raw_params: dict) -> Path:
    """A project copy with a 2x2x2x4-seed grid (32 cells), after one `dvc repro`, committed."""
    root = copy_project(tmp_path_factory.mktemp("built"))
    write_params(root / "params.yaml", small_grid(raw_params, seeds=SEEDS))
    dvc(root, "repro")
    env = {**environ(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "built"]):
        subprocess.run(cmd, cwd=root, check=True, env=env, timeout=60)
    return root


# --- 1. SIGINT / SIGTERM during training ----------------------------------------------
SIGNALS = [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]


def interrupt_training(
    root: Path, raw_params: dict, launch: type[Stage], sig: signal.Signals
) -> tuple[int, float, list[str], list[tuple[int, str]]]:
    """Train the big grid, signal it mid-training: exit code, seconds to exit, the
    non-progress stderr lines, and the processes of the stage still alive afterwards."""
    write_params(root / "params.yaml", big_params(raw_params))
    stage = launch(root, "train")
    stage.wait_training()
    children = stage.descendants()
    code, seconds = stage.stop(sig)
    said = [line for line in stage.lines() if line and not line.startswith("train:")]
    return code, seconds, said, survivors(children, root)


@pytest.mark.parametrize(("sig", "code", "word"), SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_signal_stops_training_within_limit_leaving_nothing(
    project: Path,
    raw_params: dict,
    launch: type[Stage],
    sig: signal.Signals,
    code: int,
    word: str,
    request: pytest.FixtureRequest,
) -> None:
    """SIGINT/SIGTERM mid-training: exit 130/143 within 1 s, one line, no output, no worker."""
    needs_sigint(request, sig)
    remove_training_outputs(project)
    got, seconds, said, alive = interrupt_training(project, raw_params, launch, sig)
    assert (got, alive) == (code, [])
    assert seconds < STOP_LIMIT, f"stopped {seconds:.2f} s after the signal"
    assert len(said) == 1 and word in said[0], said
    assert not any((project / out).exists() for out in TRAINING_OUTPUTS)
    assert temp_leftovers(project) == []


@pytest.mark.parametrize(("sig", "code", "word"), SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_signal_during_retraining_keeps_previous_outputs(
    project: Path,
    raw_params: dict,
    launch: type[Stage],
    sig: signal.Signals,
    code: int,
    word: str,
    request: pytest.FixtureRequest,
) -> None:
    """Interrupting a retrain leaves the earlier complete traces and metrics byte for byte."""
    needs_sigint(request, sig)
    before = snapshot(project)
    got, seconds, said, alive = interrupt_training(project, raw_params, launch, sig)
    assert (got, alive) == (code, [])
    assert seconds < STOP_LIMIT, f"stopped {seconds:.2f} s after the signal"
    assert len(said) == 1 and word in said[0], said
    assert snapshot(project) == before
    assert temp_leftovers(project) == []


# --- 2. SIGTERM / SIGINT during publishing ---------------------------------------------
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_signal_during_publish_kills_its_runs_and_a_rerun_completes(
    project: Path,
    launch: type[Stage],
    sig: signal.Signals,
    code: int,
    request: pytest.FixtureRequest,
) -> None:
    """Signalled mid-publish: exit 143/130 in 1 s, its runs KILLED; a rerun adds each cell once."""
    needs_sigint(request, sig)
    (project / "mlflow.db").unlink()
    stage = launch(project, "publish")
    stage.wait_for("publish grid:")
    time.sleep(0.2)
    got, seconds = stage.stop(sig)
    assert got == code, stage.stderr
    assert seconds < STOP_LIMIT, f"stopped {seconds:.2f} s after the signal"
    runs = all_runs(project)
    mine = [r for r in runs if r.data.tags.get(PID_TAG) == str(stage.proc.pid)]
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}
    assert len(mine) == len(runs) and any(r.info.status == "KILLED" for r in mine)
    (parent,) = [r for r in runs if PARENT_RUN_TAG not in r.data.tags]
    assert parent.info.status == "KILLED"  # it was still open: it closes last
    assert sum(r.info.status == "FINISHED" for r in runs) < len(SEEDS) * 8  # really mid-way

    rerun = run_stage(project, "publish")
    assert rerun.returncode == 0, rerun.stderr
    assert_every_cell_finished_once(project)


# --- 3. SIGKILL -------------------------------------------------------------------------
@pytest.mark.parametrize("moment", [0.5, 2.0, "training"])
def test_sigkill_of_train_keeps_previous_outputs_and_repro_recovers(
    project: Path, raw_params: dict, launch: type[Stage], moment: float | str
) -> None:
    """kill -9 of train at any moment: old outputs intact, no worker left, repro succeeds."""
    before, small = snapshot(project), (project / "params.yaml").read_bytes()
    write_params(project / "params.yaml", big_params(raw_params))
    stage = launch(project, "train")
    if moment == "training":  # the new traces are being written into a temp folder
        stage.wait_training()
        assert list(project.glob(f".traces.*{TMP_SUFFIX}")), stage.stderr
    else:
        time.sleep(max(0.0, stage.started + float(moment) - time.monotonic()))
    children = stage.descendants()
    stage.stop(signal.SIGKILL)
    assert survivors(children, project) == []  # no orphaned worker trains on (or hangs)
    assert snapshot(project) == before
    # only the temp files of atomic writes may be left, and git and DVC ignore them
    porcelain = subprocess.run(
        ["git", "status", "--porcelain"], cwd=project, capture_output=True, text=True, timeout=60
    ).stdout
    assert all(name.endswith(TMP_SUFFIX) for name in temp_leftovers(project))
    assert TMP_SUFFIX not in porcelain

    (project / "params.yaml").write_bytes(small)
    out = dvc(project, "repro").stdout
    assert "Running stage 'train'" not in out  # nothing was lost, so nothing to redo
    assert snapshot(project) == before


def test_sigkill_of_first_training_leaves_no_output_and_repro_recovers(
    project: Path, raw_params: dict, launch: type[Stage]
) -> None:
    """kill -9 of a first training leaves no traces or metrics; `dvc repro` then rebuilds them."""
    before, small = snapshot(project), (project / "params.yaml").read_bytes()
    remove_training_outputs(project)
    write_params(project / "params.yaml", big_params(raw_params))
    stage = launch(project, "train")
    stage.wait_training()
    children = stage.descendants()
    stage.stop(signal.SIGKILL)
    assert survivors(children, project) == []
    assert not any((project / out).exists() for out in TRAINING_OUTPUTS)

    (project / "params.yaml").write_bytes(small)
    dvc(project, "repro")
    assert snapshot(project) == before  # training is deterministic: the same bytes again


@pytest.mark.parametrize("moment", [1.0, "plotting"])
def test_sigkill_of_compare_leaves_each_output_old_or_new(
    project: Path, raw_params: dict, launch: type[Stage], moment: float | str
) -> None:
    """kill -9 of compare leaves every output file whole: its old or its new bytes."""
    before = snapshot(project)
    data = small_grid(raw_params, seeds=SEEDS)
    data["compare"]["threshold"] = 0.5  # changes the table's `first_below` column
    write_params(project / "params.yaml", data)
    stage = launch(project, "compare")
    if moment == "plotting":  # the table is new, the plots folder still being drawn
        deadline = time.monotonic() + 120
        while not list((project / "reports").glob(f".plots.*{TMP_SUFFIX}")):
            assert stage.proc.poll() is None and time.monotonic() < deadline, stage.stderr
            time.sleep(0.01)
    else:
        time.sleep(max(0.0, stage.started + float(moment) - time.monotonic()))
    assert stage.proc.poll() is None, "compare finished before it could be killed"
    stage.stop(signal.SIGKILL)
    killed = snapshot(project)

    dvc(project, "repro")
    new = snapshot(project)
    assert new["reports/compare.md"] != before["reports/compare.md"]
    for name, digest in killed.items():
        assert digest in (before.get(name), new.get(name)), name
    plots = {k for k in killed if k.startswith("reports/plots/")}
    assert plots in [{k for k in d if k.startswith("reports/plots/")} for d in (before, new)]


def test_sigkill_during_publish_leaves_a_running_run_that_next_publish_kills(
    project: Path, launch: type[Stage]
) -> None:
    """kill -9 mid-publish leaves runs RUNNING; the next publish KILLs the cell runs, resumes
    the parent (one parent, not a KILLED and a FINISHED one) and adds each cell once."""
    (project / "mlflow.db").unlink()
    stage = launch(project, "publish")
    stage.wait_for("publish grid:")
    time.sleep(0.2)
    stage.stop(signal.SIGKILL)
    left = {r.info.run_id for r in all_runs(project) if r.info.status == "RUNNING"}
    assert left  # MLflow never closes them by itself

    rerun = run_stage(project, "publish")
    assert rerun.returncode == 0, rerun.stderr
    cells = {r.info.run_id for r in all_runs(project) if PARENT_RUN_TAG in r.data.tags}
    assert {r.info.status for r in all_runs(project) if r.info.run_id in left & cells} <= {"KILLED"}
    assert_every_cell_finished_once(project)
    assert "left RUNNING: opened under store lock" in rerun.stdout


# --- 3b. DVC stopped alone --------------------------------------------------------------------
def readme_recovery() -> str:
    """The README's command back to the committed state, as written there."""
    marker = "# back to the committed state"
    (line,) = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.endswith(marker)]
    return line.removesuffix(marker).strip()


def test_dvc_stopped_alone_stops_its_stage_and_the_readme_recovery_restores_everything(
    project: Path,
) -> None:
    """SIGTERM to `dvc exp run` only (as `kill` or a container stop sends it): DVC exits,
    and the training it started ends within seconds (it trained on with PPID 1); the
    README's recovery brings back the committed params, edits `dvc exp run` staged
    included, and every output: a clean git status."""
    before = snapshot(project)
    cmd = [f"{BIN}/dvc", "exp", "run", "-S", "train.steps=20000", "-S", "env.workers=2"]
    dvc_run = subprocess.Popen(cmd, cwd=project, env=environ(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    deadline, stage = time.monotonic() + 120, []
    while not stage:
        assert dvc_run.poll() is None and time.monotonic() < deadline, "train never started"
        family = psutil.Process(dvc_run.pid).children(recursive=True)
        stage = [p for p in family if "pipeline train" in " ".join(p.cmdline())]
        time.sleep(0.1)
    time.sleep(3.0)  # training, its worker started

    dvc_run.send_signal(signal.SIGTERM)
    dvc_run.wait(timeout=60)

    assert survivors(stage, project, timeout=10) == []
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=project,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    recover = subprocess.run(readme_recovery(), shell=True, cwd=project, env=environ(),
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert recover.returncode == 0, recover.stderr
    status = subprocess.run(["git", "status", "--porcelain"], cwd=project, capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert (status, snapshot(project)) == ("", before), staged


# --- 4. bad params through DVC -------------------------------------------------------------
def test_bad_params_fail_repro_with_one_line_each_and_keep_outputs(
    project: Path, raw_params: dict
) -> None:
    """Two mistakes: `dvc repro` fails, one `error:` line each, no traceback, outputs intact."""
    before = snapshot(project)
    data = small_grid(raw_params, seeds=SEEDS)
    data["train"]["steps"] = 0
    data["train"]["grid"]["losses"] = ["mse", "hinge"]
    write_params(project / "params.yaml", data)

    run = dvc(project, "repro", check=False)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, out
    assert any("train.steps = 0" in e for e in errors), errors
    assert any("train.grid.losses" in e and "'hinge'" in e for e in errors), errors
    assert "Traceback" not in out
    assert snapshot(project) == before
    assert {"data/points.csv", "reports/metrics.json", "reports/compare.md"} <= set(before)


# --- 5. divergence through DVC -----------------------------------------------------------
def test_divergence_is_reported_everywhere_without_non_finite_metrics(
    tmp_path: Path, raw_params: dict
) -> None:
    """sgd at lr 10: repro succeeds; metrics, table and MLflow mark divergence; all finite."""
    root = copy_project(tmp_path / "p")
    data = small_grid(raw_params)
    data["train"]["steps"] = 200
    data["train"]["optimizers"]["sgd"]["lr"] = 10.0
    write_params(root / "params.yaml", data)
    dvc(root, "repro")

    metrics = cell_table(root).set_index("cell").to_dict("index")
    diverged = {name for name, m in metrics.items() if m["diverged"]}
    # only mse without clipping has unbounded updates: l1 and clipped gradients stay bounded
    assert diverged == {"mse-sgd-none"}
    table = (root / "reports/compare.md").read_text()
    for name in diverged:
        step, reason = metrics[name]["diverged_step"], metrics[name]["diverged_reason"]
        assert step == int(step) and reason in ("loss", "gradient", "parameters")
        (row,) = [line for line in table.splitlines() if f"| {name} " in line]
        assert f"step {int(step)} ({reason})" in row

    client = MlflowClient(f"sqlite:///{root}/mlflow.db")
    runs = all_runs(root)
    for run in runs:
        for key in run.data.metrics:
            values = [m.value for m in client.get_metric_history(run.info.run_id, key)]
            assert all(map(math.isfinite, values)), (run.info.run_name, key)
    by_name = {r.info.run_name: r for r in runs if PARENT_RUN_TAG in r.data.tags}
    assert sorted(by_name) == sorted(metrics)
    for name, run in by_name.items():
        assert run.data.tags["diverged"] == str(name in diverged).lower()
    assert (
        by_name["mse-sgd-none"].data.metrics["diverged_step"]
        == metrics["mse-sgd-none"]["diverged_step"]
    )


# --- 6. concurrent queued experiments --------------------------------------------------------
def test_parallel_queued_experiments_publish_every_cell_once_at_the_root(project: Path) -> None:
    """Two `dvc queue` workers at once: both experiments' cells land once in the root store,
    and each says where its report is (it linked into its deleted temporary copy)."""
    names = {"adam-lr-02": "0.2", "adam-lr-03": "0.3"}
    for name, lr in names.items():
        dvc(project, "exp", "run", "--queue", "-n", name, "-S", f"train.optimizers.adam.lr={lr}")
    try:
        dvc(project, "queue", "start", "-j", "2")
        deadline = time.monotonic() + 300
        while True:
            status = dvc(project, "queue", "status").stdout
            rows = [r for r in map(str.split, status.splitlines()) if len(r) > 1 and r[1] in names]
            if len(rows) == 2 and all(r[-1] in ("Success", "Failed") for r in rows):
                break
            assert time.monotonic() < deadline, status
            time.sleep(2)
        for row in rows:
            logs = dvc(project, "queue", "logs", row[1], check=False)
            assert row[-1] == "Success", logs.stdout + logs.stderr
            (report,) = [ln for ln in logs.stdout.splitlines() if ln.startswith("Report:")]
            html = (project / "reports/study/index.html").as_uri()  # not the deleted copy's
            assert f"`dvc exp apply {row[1]}` brings it to {html}" in report, report
    finally:
        dvc(project, "queue", "stop", check=False, timeout=120)
    assert survivors([], project, timeout=60) == []

    runs = all_runs(project)
    assert not {r.info.status for r in runs} & {"RUNNING", "FAILED"}
    cells = [r for r in runs if r.info.status == "FINISHED" and PARENT_RUN_TAG in r.data.tags]
    keys = [r.data.tags[CONTENT_KEY] for r in cells]
    assert len(keys) == len(set(keys))  # no cell published twice
    adam = sorted(name for name in cell_names(project) if "-adam-" in name)
    for lr in names.values():
        landed = [
            r.info.run_name
            for r in cells
            if r.data.params["optimizer"] == "adam" and r.data.params["lr"] == lr
        ]
        assert sorted(landed) == adam, lr
    assert not list((project / ".dvc/tmp").rglob("mlflow.db"))
