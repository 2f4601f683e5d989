"""Shared fixtures: tiny datasets and a trained run, an isolated CATDOG_HOME (helpers: tests/fixtures.py)."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest

from tests.fixtures import REPO, SHARED_DATA, make_class_folders, write_image
from tests.robustness.stats import STATS
from tests.server import CHROMIUM, CHROMIUM_ARGS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Every test runs with its own CATDOG_HOME, never the user's."""
    home = tmp_path_factory.mktemp("catdog-home")
    old = {k: os.environ.get(k) for k in ("CATDOG_HOME", "CATDOG_RUNS_DIR", "CATDOG_CACHE_DIR", "CATDOG_DATA_ROOTS")}
    os.environ["CATDOG_HOME"] = str(home)
    # The pages apply the server's path rule: the tests' datasets live in pytest's temp folder and ../shared/data.
    os.environ["CATDOG_DATA_ROOTS"] = os.pathsep.join(map(str, (tmp_path_factory.getbasetemp(), SHARED_DATA.parent, REPO)))
    os.environ.pop("CATDOG_RUNS_DIR", None)
    # One cache for the session, shared by the xdist workers and every CATDOG_HOME a test sets: the bundled
    # model's ONNX conversion and the Lite0 weights are made once, not once per test (tests of caches set their own).
    base = tmp_path_factory.getbasetemp()
    os.environ["CATDOG_CACHE_DIR"] = str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-cache")
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A plain cats/dogs folder with 12 images per class."""
    return make_class_folders(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_dataset):
    """A finished seed run at 32x32 on the tiny dataset (trained once per session)."""
    from catdog.training import TrainConfig, train

    runs_dir = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(data=str(tiny_dataset), model="seed", epochs=2, batch_size=8, image_size=32, val_split=0.25, precision="float32")
    return train(cfg, runs_dir=runs_dir, run_id="tiny-seed", verbose=0, stream=io.StringIO(), lock=False, handle_signals=False)


@pytest.fixture(scope="session")
def run_with_check(tmp_path_factory, tiny_run):
    """The tiny run with a "not a cat or dog" check fitted on 120 generated photos (noise stands for 'not a pet').

    Returns:
        (run folder, the photos' folder, the noise folder, the fitted `OpenSet`); a test that
        changes the run works on a copy.
    """
    import shutil

    from catdog import openset

    root = tmp_path_factory.mktemp("openset")
    photos = make_class_folders(root / "photos", n=60, size=(40, 40))
    negatives = root / "noise"
    for i in range(6):
        write_image(negatives / f"n{i}.png", size=(40, 40), seed=500 + i, colour=(250, 250, 250))
    run_dir = root / "run"
    shutil.copytree(tiny_run.path, run_dir)
    for stale in ("model.onnx", "model.onnx.catdog.json"):
        (run_dir / stale).unlink(missing_ok=True)
    check, _ = openset.fit_for_model(run_dir, [str(photos)], [str(negatives)], log=lambda m: None)
    return run_dir, photos, negatives, check


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "train").is_dir():
        pytest.skip(f"real photos not found at {SHARED_DATA}; integration test needs ../shared/data/catdog-small")
    return SHARED_DATA


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh CATDOG_HOME for one test, runs included; a training left running is killed after it."""
    from catdog import config, runs

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CATDOG_RUNS_DIR", raising=False)
    yield tmp_path / "home"
    holder = runs.read_lock(config.runs_dir())
    if holder:  # never leave a detached training behind
        try:
            os.kill(holder["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def no_bundled_model(tmp_path, monkeypatch) -> None:
    """No bundled model and no sample photos: catdog's assets folder is an empty one."""
    from catdog import config

    monkeypatch.setattr(config, "assets_dir", lambda: tmp_path / "assets")


@pytest.fixture(scope="module")
def chromium():
    """Debian's headless Chromium through Playwright (skips with the reason when either is missing)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; run `bash scripts/install-browser.sh` (Debian's chromium package)")
    playwright = pytest.importorskip("playwright.sync_api", reason="the `playwright` package is not installed (requirements.txt)")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# --- The robustness summary (tests/robustness/stats.py), printed once, workers' counts added up ---

def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the counts to the controller
        session.config.workeroutput["catdog_robustness"] = STATS.as_dict()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    STATS.add(getattr(node, "workeroutput", {}).get("catdog_robustness", {}))


FAST_LIMIT_S = 5.0  # "slow: takes more than a few seconds" (pyproject.toml); a fast test over this is listed
_slow_unmarked: list[tuple[float, str]] = []


def pytest_runtest_logreport(report):
    """Note a test without the slow mark whose setup or call took over FAST_LIMIT_S (listed, never failed)."""
    if report.when in ("setup", "call") and report.duration > FAST_LIMIT_S and "slow" not in report.keywords:
        _slow_unmarked.append((report.duration, f"{report.nodeid} ({report.when})"))


def pytest_terminal_summary(terminalreporter):
    lines = STATS.lines()
    if lines:
        terminalreporter.section("catdog robustness summary")
        for line in lines:
            terminalreporter.line(line)
    if _slow_unmarked:
        terminalreporter.section(f"tests without the slow mark that took over {FAST_LIMIT_S:.0f} s (mark them slow)")
        for seconds, name in sorted(_slow_unmarked, reverse=True):
            terminalreporter.line(f"{seconds:6.1f}s {name}")
