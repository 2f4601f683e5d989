"""Take the README's screenshots by driving the real app in headless Chromium, at 1440 px and 390 px.

    python -m scripts.screenshots [--data ../shared/data/catdog-small] [--out docs] [--only home,predict]

It starts `streamlit run` on 127.0.0.1 with a temp CATDOG_HOME and a small copied
subset of the photos, then walks the fixes of issue 12 and saves docs/<name>-<width>.png:

- home: first launch, the bundled model's real facts (preset, size, accuracy and its data);
- predict: the sample buttons in one wrapping row, cards with class-coloured confidence bars,
  and Grad-CAM two cards a row (desktop); the picker lists the bundled model;
- train-live: a warm start from the bundled model (the page's default) on a few hundred photos:
  one progress bar for the whole run with its ETA, contrasting curves on 0..1 axes;
- train-done: the same run finished, its curves once, the PNGs folded away, Use and the report;
- runs: the models table (bundled always, the active one marked), readable run names in the compare legend;
- evaluate: the bundled model on labelled photos, threshold slider and figures;
- data: a dataset's report row; report: the HTML run report, opened offline.

train.png and predict.png (the README's pictures) are the 1440 px train-live and predict shots.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.server import CHROMIUM, CHROMIUM_ARGS, free_port, stop_server, wait_healthy

REPO = Path(__file__).resolve().parent.parent


def make_subset(src: Path, dst: Path, n_train: int, n_val: int, seed: int = 0) -> Path:
    """train/{cats,dogs} and validation/{cats,dogs} with a few photos each."""
    rng = random.Random(seed)
    for split, n in (("train", n_train), ("validation", n_val)):
        for cls in ("cats", "dogs"):
            files = sorted((src / split / cls).glob("*.jpg"))
            (dst / split / cls).mkdir(parents=True, exist_ok=True)
            for f in rng.sample(files, min(n, len(files))):
                shutil.copy2(f, dst / split / cls / f.name)
    return dst


def trim_bottom(path: Path, margin: int = 48) -> None:
    """Cut the empty space under the last element (the viewport was made tall on purpose)."""
    import numpy as np
    from PIL import Image

    img = Image.open(path).convert("RGB")
    pixels = np.asarray(img)[:, img.width // 4 :]  # right of the sidebar
    busy_rows = np.where((pixels.min(axis=2) < 235).any(axis=1))[0]
    if len(busy_rows):
        img.crop((0, 0, img.width, min(img.height, int(busy_rows[-1]) + margin))).save(path)


def shrink_png(path: Path, max_bytes: int = 450_000) -> None:
    """Quantise to a palette (screenshots have few colours) so the PNG stays small."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    for colours in (256, 128, 64):
        buf = io.BytesIO()
        img.quantize(colours, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
        if buf.tell() <= max_bytes:
            break
    path.write_bytes(buf.getvalue())


WIDE, PHONE = 1440, 390


def shot(page, out: Path, name: str, width: int, height: int = 2400, settle: float = 2.0) -> Path:
    """A screenshot of the whole page at this width (Streamlit scrolls inside its own container: a tall viewport)."""
    page.set_viewport_size({"width": width, "height": height})
    time.sleep(settle)
    page.mouse.move(2, 2)  # no hover toolbars
    time.sleep(0.5)
    target = out / f"{name}-{width}.png"
    page.screenshot(path=str(target), full_page=True)
    trim_bottom(target)
    shrink_png(target)
    print(f"{target}: {target.stat().st_size / 1000:.0f} KB", flush=True)
    return target


def wait_text(page, text: str, timeout: float = 180) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout * 1000)


def wait_count(locator, n: int, timeout: float) -> None:
    """Until `locator` matches at least `n` elements (a rerun draws cards one after another)."""
    deadline = time.time() + timeout
    while locator.count() < n:
        if time.time() > deadline:
            raise TimeoutError(f"fewer than {n} of {locator} after {timeout:.0f}s")
        time.sleep(0.5)


def wait_images(page, timeout: float = 60) -> None:
    """Every <img> decoded: a sample grid still loading would be cut off by `trim_bottom`."""
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)", timeout=timeout * 1000)
    time.sleep(1)


def goto(page, url: str, heading: str) -> None:
    page.goto(url)
    page.locator("h1", has_text=heading).first.wait_for(timeout=120_000)
    time.sleep(1.5)


def both(page, out: Path, name: str, height: int = 2400, phone_height: int = 3600) -> None:
    shot(page, out, name, WIDE, height)
    shot(page, out, name, PHONE, phone_height)
    page.set_viewport_size({"width": WIDE, "height": 1000})


def shoot_home(page, url: str, out: Path) -> None:
    goto(page, url, "catdog studio")
    wait_text(page, "preset")
    both(page, out, "home", 1100, 2600)


def shoot_predict(page, url: str, out: Path) -> None:
    goto(page, f"{url}/predict", "Predict")
    for stem in ("cat-1", "dog-1", "cat-2", "dog-2"):
        page.get_by_role("button", name=stem, exact=True).click()
        time.sleep(1.0)
    wait_text(page, "of 4 classified", 240)
    time.sleep(3)
    both(page, out, "predict", 1900, 5200)
    page.get_by_text("Explain (Grad-CAM)").click()
    wait_count(page.get_by_text("Grad-CAM", exact=True), 4, 300)  # each card's caption (the toggle says "Explain (Grad-CAM)")
    page.get_by_text("Explaining").first.wait_for(state="hidden", timeout=300_000)
    wait_images(page)
    shot(page, out, "predict-gradcam", WIDE, 2600)


def start_training(page, url: str, data: Path, epochs: int, size: int | None, batch: int | None) -> None:
    """Type the folder, set the epochs (and size/batch if given), keep the page's defaults (the warm start), Start."""
    goto(page, f"{url}/train", "Train")
    box = page.get_by_label("Dataset folder", exact=True).and_(page.locator("input"))
    box.fill(str(data / "train"))
    box.press("Enter")
    wait_text(page, "training images", 60)
    for label, value in (("Epochs", epochs), ("Batch size", batch), ("Image size (px)", size)):
        if value is None:
            continue
        field = page.get_by_label(label, exact=True).and_(page.locator("input"))
        settle = time.time() + 30  # a rerun that re-keys the box (the warm-start default) briefly shows two
        while field.count() != 1 and time.time() < settle:
            time.sleep(0.5)
        field.fill(str(value))
        field.press("Enter")
        time.sleep(1)
    page.get_by_role("button", name="Start training").click()


def wait_for_epochs(home: Path, epochs: int, timeout: float) -> Path:
    """The run folder once it has `epochs` epochs (on a quiet machine an epoch of the small walk
    takes under a second, so waiting for a mid-epoch moment can miss the whole run)."""
    from catdog.runs import Run

    deadline = time.time() + timeout
    while time.time() < deadline:
        for folder in (home / "runs").glob("*"):
            run = Run(folder)
            if len(run.metrics()) >= epochs:
                return folder
            if run.status().get("state") in ("finished", "stopped", "failed"):
                return folder
        time.sleep(0.3)
    raise SystemExit(f"training did not reach {epochs} epochs in {timeout}s")


def shoot_train(page, url: str, data: Path, home: Path, out: Path, args) -> Path:
    """Live (one bar for the run, ETA), a reload (re-attached, settings restored), then the finished run."""
    start_training(page, url, data, args.epochs, args.image_size, args.batch_size)
    run_dir = wait_for_epochs(home, args.shot_after, timeout=1200)
    goto(page, f"{url}/train", "Train")  # a reload while it trains: the page re-attaches and restores the settings
    page.locator("[data-testid=stProgress]").first.wait_for(timeout=30_000)
    both(page, out, "train-live", 1900, 4200)
    _wait_finished(run_dir)  # a real run to the end: the pictures show a good model, not one cut short
    wait_text(page, "Use this model for Predict", 120)
    page.get_by_role("button", name="Use this model for Predict").click()
    page.get_by_text(re.compile("now uses|Replace it anyway")).first.wait_for(timeout=60_000)  # the click's answer is drawn
    time.sleep(2)
    both(page, out, "train-done", 2400, 5200)
    return run_dir


def shoot_runs(page, url: str, out: Path) -> None:
    goto(page, f"{url}/runs", "Runs")
    wait_text(page, "Compare")
    time.sleep(2)
    both(page, out, "runs", 2600, 5600)


def shoot_evaluate(page, url: str, data: Path, out: Path) -> None:
    goto(page, f"{url}/evaluate", "Evaluate")
    box = page.get_by_label("Labelled folder", exact=True).and_(page.locator("input"))
    box.fill(str(data / "validation"))
    box.press("Enter")
    time.sleep(1)
    page.get_by_role("button", name="Evaluate").click()
    wait_text(page, "Most confidently wrong", 300)
    time.sleep(3)
    wait_images(page)
    both(page, out, "evaluate", 3400, 7600)


def shoot_data(page, url: str, data: Path, out: Path) -> None:
    goto(page, f"{url}/data", "Data")
    page.get_by_role("tab", name="Local folder").click()
    box = page.get_by_label("Folder on this computer", exact=True).and_(page.locator("input"))
    box.fill(str(data))
    box.press("Enter")
    time.sleep(1)
    page.get_by_role("button", name="Use this folder").click()
    wait_text(page, "duplicate groups", 120)
    page.get_by_role("button", name="Use this dataset for training").wait_for(timeout=120_000)
    wait_images(page)
    both(page, out, "data", 1800, 4200)


def shoot_report(browser, run_dir: Path, data: Path, env: dict, tmp: Path, out: Path) -> None:
    report = tmp / "report.html"
    subprocess.run([sys.executable, "-m", "catdog", "report", str(run_dir), "--out", str(report), "--data", str(data / "validation")],
                   env=env, cwd=REPO, check=True)
    page = browser.new_page(viewport={"width": WIDE, "height": 1000})
    outside: list[str] = []
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
               else (outside.append(route.request.url), route.abort()))
    page.goto(report.as_uri())
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)
    for width, height in ((WIDE, 3200), (PHONE, 9000)):
        page.set_viewport_size({"width": width, "height": height})
        time.sleep(1.5)
        target = out / f"report-{width}.png"
        page.screenshot(path=str(target), full_page=True)
        trim_bottom(target)
        shrink_png(target)
        print(f"{target}: {target.stat().st_size / 1000:.0f} KB (network requests: {len(outside)})", flush=True)
    page.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "catdog-small")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--subset", type=int, default=150, metavar="N", help="training photos per class copied (0: all)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the walk's training (a warm start: a few are enough)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the page's (the preset's)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="default: the page's, the bundled model's size, so the page starts from the bundled model")
    parser.add_argument("--shot-after", type=int, default=2, help="epochs done before the live Train screenshot")
    parser.add_argument("--only", default="", help="comma-separated: home,predict,train,runs,evaluate,data,report (default all)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    only = set(filter(None, args.only.split(","))) or {"home", "predict", "train", "runs", "evaluate", "data", "report"}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="catdog-shots-") as tmp:
        tmp = Path(tmp)
        data = make_subset(args.data, tmp / "photos", args.subset, max(8, args.subset // 3)) if args.subset else args.data.resolve()
        home = tmp / "home"
        env = dict(os.environ, CATDOG_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2",
                   CATDOG_DATA_ROOTS=os.pathsep.join([str(tmp), str(args.data.resolve().parent)]))
        env.pop("CATDOG_RUNS_DIR", None)
        env.pop("CATDOG_PASSWORD", None)
        port = free_port()
        log = tmp / "streamlit.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
                                     "--server.address", "127.0.0.1", "--server.headless", "true"],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        run_dir = None
        try:
            wait_healthy(url, proc, log)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": WIDE, "height": 1000})
                steps = [("home", lambda: shoot_home(page, url, args.out)),
                         ("predict", lambda: shoot_predict(page, url, args.out)),
                         ("data", lambda: shoot_data(page, url, data, args.out))]
                for name, step in steps:
                    if name in only:
                        _step(name, step, page, args.out)
                if only & {"train", "runs", "report"}:
                    run_dir = _step("train", lambda: shoot_train(page, url, data, home, args.out, args), page, args.out)
                if "runs" in only:
                    _step("runs", lambda: shoot_runs(page, url, args.out), page, args.out)
                if "evaluate" in only:
                    _step("evaluate", lambda: shoot_evaluate(page, url, data, args.out), page, args.out)
                if "report" in only and run_dir is not None:
                    _step("report", lambda: shoot_report(browser, run_dir, data, env, tmp, args.out), page, args.out)
                browser.close()
        finally:
            stop_server(proc)
            _kill_training(home)
    for wide, readme in (("train-live", "train"), ("predict", "predict")):
        source = args.out / f"{wide}-{WIDE}.png"
        if source.exists():
            shutil.copyfile(source, args.out / f"{readme}.png")
    return 0


def _step(name: str, fn, page, out: Path):
    """Run one walk step; a failure is reported with a screenshot of where it stopped, and the walk goes on."""
    started = time.time()
    try:
        result = fn()
        print(f"{name}: done in {time.time() - started:.0f}s", flush=True)
        return result
    except Exception as exc:  # noqa: BLE001 - one failed step must not lose the others' pictures
        print(f"{name}: FAILED after {time.time() - started:.0f}s: {exc}", flush=True)
        try:
            page.screenshot(path=str(out / f"failed-{name}.png"))
        except Exception:  # noqa: BLE001
            pass
        return None


def _wait_finished(run_dir: Path, timeout: float = 900) -> None:
    from catdog.runs import Run

    deadline = time.time() + timeout
    while time.time() < deadline and Run(run_dir).status().get("state") in ("queued", "running"):
        time.sleep(1)


def _kill_training(home: Path) -> None:
    from catdog.runs import read_lock

    holder = read_lock(home / "runs")
    if holder:
        os.kill(holder["pid"], signal.SIGTERM)


if __name__ == "__main__":
    sys.exit(main())
