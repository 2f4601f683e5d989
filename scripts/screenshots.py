"""Take the README's screenshots by driving the real app in headless Chromium, at 1440 px and 390 px.

    python -m scripts.screenshots [--data ../shared/data/catdog-small] [--out docs] [--only home,predict]

It starts `streamlit run` on 127.0.0.1 with a temp CATDOG_HOME and a small copied subset of the
photos, makes a shirt-vs-pants dataset (`catdog data pair`, 20 training photos a class), then walks
the app and saves docs/<name>-<width>.png:

- home: first launch, the bundled model's real facts and its "not a cat or dog" check in words;
- predict: the example buttons in one wrapping row, cards with class-coloured confidence bars,
  and Grad-CAM two cards a row (desktop); the picker lists the bundled model;
- predict-not-pets (1440 px): a person, a flower, a cup and a cat dropped together (`--not-pets-photos`,
  scikit-image's astronaut, flower, coffee and chelsea): "Not a cat or dog" on the first three, "Cat" on the cat;
- train-live: a lite0 training from scratch on shirt-vs-pants (classes the bundled model never saw,
  with the page's defaults), while it calibrates and saves: the curves, the metric cards, one bar;
- train-done: the same run finished: its before → after on validation photos that chose nothing;
- runs: the models and the runs as cards, readable run names in the compare legend;
- evaluate: the bundled model on labelled photos, threshold slider and figures;
- data: a dataset's report row; report: the run's HTML report, opened offline.

train.png and predict.png (the README's pictures) are the 1440 px train-done and predict shots.
"""

from __future__ import annotations

import argparse
import io
import os
import random
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
    wait_fresh(page)
    target = out / f"{name}-{width}.png"
    page.screenshot(path=str(target), full_page=True)
    trim_bottom(target)
    shrink_png(target)
    print(f"{target}: {target.stat().st_size / 1000:.0f} KB", flush=True)
    return target


def wait_fresh(page, timeout: float = 15) -> None:
    """Until no element is faded as stale (a live page reruns every 1.5 s; a shot mid-rerun greys a chart out)."""
    try:
        page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=timeout * 1000)
    except Exception:  # noqa: BLE001 - a page that stays busy is shot as it is
        pass


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


def make_pair(source: Path, classes: tuple[str, str], per_class: int, dest: Path, env: dict) -> Path:
    """A two-class train/ + test/ dataset from the file-name prefixes in `source` (`catdog data pair`)."""
    subprocess.run([sys.executable, "-m", "catdog", "data", "pair", str(source), *classes, "--train-per-class", str(per_class),
                    "--dest", str(dest)], env=env, cwd=REPO, check=True)
    return dest


def start_training(page, url: str, data: Path) -> None:
    """Type the dataset folder, keep every other setting as the page suggests (the lite0 preset), Start."""
    goto(page, f"{url}/train", "Train")
    box = page.get_by_label("Dataset folder", exact=True).and_(page.locator("input"))
    box.fill(str(data))
    box.press("Enter")
    wait_text(page, "training images", 60)
    time.sleep(1)
    page.get_by_role("button", name="Start training").click()


def wait_for_phase(home: Path, phase: str, timeout: float) -> Path:
    """The run folder once its progress.json says `phase` (or it has ended: the caller checks what it got)."""
    from catdog.runs import Run

    deadline = time.time() + timeout
    while time.time() < deadline:
        for folder in (home / "runs").glob("*"):
            run = Run(folder)
            if run.progress().get("phase") == phase or run.status().get("state") in ("finished", "stopped", "failed"):
                return folder
        time.sleep(0.2)
    raise SystemExit(f"training never reached its {phase!r} phase in {timeout}s")


def shoot_train(page, url: str, data: Path, home: Path, out: Path) -> Path:
    """Live (a reload while it calibrates and saves: curves, cards and the bar), then the finished run."""
    start_training(page, url, data)
    run_dir = wait_for_phase(home, "finishing", timeout=1200)  # lite0's epochs take a tenth of a second each
    goto(page, f"{url}/train", "Train")  # a reload while it trains: the page re-attaches and restores the settings
    page.locator("[data-testid=stProgress]").first.wait_for(timeout=30_000)
    both(page, out, "train-live", 1900, 4200)
    _wait_finished(run_dir)  # a real run to the end: the pictures show the model it saved
    wait_text(page, "Use this model for Predict", 180)
    time.sleep(2)
    both(page, out, "train-done", 2400, 5200)
    return run_dir


def shoot_runs(page, url: str, out: Path) -> None:
    goto(page, f"{url}/runs", "Runs")
    wait_text(page, "Compare")
    time.sleep(2)
    both(page, out, "runs", 2600, 5600)


def shoot_not_pets(page, url: str, photos: list[Path], out: Path) -> None:
    """Predict with a person, a flower, a cup and a cat dropped together (1440 px)."""
    goto(page, f"{url}/predict", "Predict")
    page.locator("input[type=file]").first.set_input_files([str(p) for p in photos])
    wait_text(page, f"of {len(photos)} classified", 240)
    time.sleep(3)
    wait_images(page)
    shot(page, out, "predict-not-pets", WIDE, 1900)
    page.set_viewport_size({"width": WIDE, "height": 1000})


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


def shoot_report(browser, run_dir: Path, env: dict, tmp: Path, out: Path) -> None:
    """The run's report, evaluated on the photos it validated on (its dataset's test/ folder), opened offline."""
    report = tmp / "report.html"
    subprocess.run([sys.executable, "-m", "catdog", "report", str(run_dir), "--out", str(report)], env=env, cwd=REPO, check=True)
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
    parser.add_argument("--pair-source", type=Path, default=REPO.parent / "shared" / "data" / "not-pets" / "clothing",
                        help="photos named by class (shirt_1.jpg, pants_2.jpg) for the training the walk shows")
    parser.add_argument("--pair", default="shirt,pants", help="the two classes of that training")
    parser.add_argument("--train-per-class", type=int, default=20)
    parser.add_argument("--not-pets-photos", type=Path, default=Path("/tmp/demo"),
                        help="a folder with astronaut.png, flower.jpg, coffee.png and chelsea.png (never committed)")
    parser.add_argument("--only", default="",
                        help="comma-separated: home,predict,not-pets,train,runs,evaluate,data,report (default all)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    only = set(filter(None, args.only.split(","))) or {"home", "predict", "not-pets", "train", "runs", "evaluate", "data", "report"}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="catdog-shots-") as tmp:
        tmp = Path(tmp)
        data = make_subset(args.data, tmp / "photos", args.subset, max(8, args.subset // 3)) if args.subset else args.data.resolve()
        home = tmp / "home"
        env = dict(os.environ, CATDOG_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2",
                   CATDOG_DATA_ROOTS=os.pathsep.join([str(tmp), str(args.data.resolve().parent)]))
        env.pop("CATDOG_RUNS_DIR", None)
        env.pop("CATDOG_PASSWORD", None)
        pair = make_pair(args.pair_source, tuple(args.pair.split(",")), args.train_per_class, tmp / "-vs-".join(args.pair.split(",")),
                         env) if only & {"train", "runs", "report"} else None
        not_pets = [args.not_pets_photos / name for name in ("astronaut.png", "flower.jpg", "coffee.png", "chelsea.png")]
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
                         ("not-pets", lambda: shoot_not_pets(page, url, not_pets, args.out)),
                         ("data", lambda: shoot_data(page, url, data, args.out))]
                for name, step in steps:
                    if name in only:
                        _step(name, step, page, args.out)
                if only & {"train", "runs", "report"}:
                    run_dir = _step("train", lambda: shoot_train(page, url, pair, home, args.out), page, args.out)
                if "runs" in only:
                    _step("runs", lambda: shoot_runs(page, url, args.out), page, args.out)
                if "evaluate" in only:
                    _step("evaluate", lambda: shoot_evaluate(page, url, data, args.out), page, args.out)
                if "report" in only and run_dir is not None:
                    _step("report", lambda: shoot_report(browser, run_dir, env, tmp, args.out), page, args.out)
                browser.close()
        finally:
            stop_server(proc)
            _kill_training(home)
    for wide, readme in (("train-done", "train"), ("predict", "predict")):
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
