"""Take the README's screenshots by driving the real app in headless Chromium.

    python -m scripts.screenshots [--data ../shared/data/catdog-small] [--out docs]

It starts `streamlit run` on 127.0.0.1 with a temp CATDOG_HOME (optionally on a
copied subset of the photos), starts a training from the Train page,
captures it mid-training (docs/train.png), makes the model active, drops
validation photos on the Predict page (docs/predict.png), and stops the server.
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


def wait_for_epochs(home: Path, epochs: int, timeout: float) -> Path:
    """The run folder once it has `epochs` epochs and is part-way into the next."""
    from catdog.runs import Run

    deadline = time.time() + timeout
    while time.time() < deadline:
        for folder in (home / "runs").glob("*"):
            run = Run(folder)
            prog = run.progress()
            if (
                len(run.metrics()) >= epochs
                and prog.get("phase") == "train"
                and 0.3 < prog.get("batch", 0) / max(1, prog.get("batches", 1)) < 0.8
            ):
                return folder
        time.sleep(0.5)
    raise SystemExit(f"training did not reach {epochs} epochs in {timeout}s")


def shoot_train(page, url: str, data: Path, home: Path, args) -> Path:
    page.goto(f"{url}/train")
    page.get_by_label("Dataset folder", exact=True).and_(page.locator("input")).fill(str(data))
    page.get_by_label("Dataset folder", exact=True).and_(page.locator("input")).press("Enter")
    page.get_by_text("validation images").wait_for(timeout=60_000)
    for label, value in (("Epochs", args.epochs), ("Image size (px)", args.image_size)):
        page.get_by_label(label, exact=True).and_(page.locator("input")).fill(str(value))
        page.get_by_label(label, exact=True).and_(page.locator("input")).press("Enter")
        time.sleep(1)
    page.get_by_text("Early stopping", exact=True).click()  # keeps the best epoch's weights for Predict
    time.sleep(1)
    page.get_by_role("button", name="Start training").click()
    run_dir = wait_for_epochs(home, args.shot_after, timeout=1800)
    time.sleep(2.5)  # let the fragment redraw with the newest epoch
    page.mouse.move(5, 5)  # no hover toolbar on the charts
    page.screenshot(path=str(args.out / "train.png"), full_page=True)
    return run_dir


def shoot_predict(page, url: str, data: Path, args) -> None:
    photos = sorted((data / "validation" / "cats").glob("*.jpg"))[:4] + sorted((data / "validation" / "dogs").glob("*.jpg"))[:3]
    files = [{"name": p.name, "mimeType": "image/jpeg", "buffer": p.read_bytes()} for p in photos]
    files.append({"name": "holiday-notes.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0 not really a photo"})
    page.goto(f"{url}/predict")
    page.locator("input[type=file]").first.wait_for(state="attached", timeout=180_000)
    page.locator("input[type=file]").first.set_input_files(files)
    page.get_by_text(f"of {len(files)} classified").wait_for(timeout=180_000)
    time.sleep(4)  # thumbnails and the table stream in
    # Streamlit scrolls inside its own container, so show the whole page in one tall viewport.
    page.set_viewport_size({"width": 1360, "height": 2250})
    page.mouse.move(5, 5)
    time.sleep(2)
    page.screenshot(path=str(args.out / "predict.png"), full_page=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "catdog-small")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--subset", type=int, default=0, metavar="N", help="copy N training photos per class (0: use them all)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64, help="small, so the pictures take minutes on a laptop CPU")
    parser.add_argument("--shot-after", type=int, default=4, help="epochs done before the Train screenshot")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="catdog-shots-") as tmp:
        tmp = Path(tmp)
        data = make_subset(args.data, tmp / "photos", args.subset, args.subset // 4) if args.subset else args.data.resolve()
        home = tmp / "home"
        env = dict(os.environ, CATDOG_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("CATDOG_RUNS_DIR", None)
        port = free_port()
        log = tmp / "streamlit.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
                                     "--server.address", "127.0.0.1", "--server.headless", "true"],
                                    cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc, log)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                run_dir = shoot_train(page, url, data, home, args)
                _wait_model(run_dir)
                subprocess.run([sys.executable, "-m", "catdog", "use", str(run_dir)], env=env, cwd=REPO, check=True)
                shoot_predict(page, url, data, args)
                browser.close()
        finally:
            stop_server(proc)
            _kill_training(home)
    trim_bottom(args.out / "predict.png")
    for name in ("train.png", "predict.png"):
        shrink_png(args.out / name)
        print(f"{args.out / name}: {(args.out / name).stat().st_size / 1000:.0f} KB")
    return 0


def _wait_model(run_dir: Path, timeout: float = 300) -> None:
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
