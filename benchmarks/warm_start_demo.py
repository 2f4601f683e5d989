"""A first training as a new user makes it: the Train page in headless Chromium, warm start on.

    python -m benchmarks.warm_start_demo --data DIR [--epochs 3] [--scratch] [--shot docs/warm-start.png]

Starts `streamlit run` on 127.0.0.1 with a temporary CATDOG_HOME, types DIR into the
Train page's dataset box, sets the epochs, leaves every other setting at the page's
default (the 20% validation split; "Start from the bundled model" on when it fits,
or off with --scratch), presses Start and waits for the run to end. Prints the wall
time from the click to the finished run, each epoch's validation accuracy, and the
CPU. Prepare DIR with cats/ and dogs/, e.g. 150 + 150 photos copied from
catdog-small/validation (no training photo of the bundled model comes from it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from catdog.hardware import cpu_model
from tests.server import CHROMIUM, CHROMIUM_ARGS, streamlit_server

TIMEOUT_S = 900


def _finished_run(home: Path) -> Path | None:
    for status in (home / "runs").glob("*/status.json"):
        try:
            if json.loads(status.read_text()).get("state") in ("finished", "stopped", "failed"):
                return status.parent
        except (OSError, ValueError):
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a cats/ + dogs/ folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--scratch", action="store_true", help="turn the warm start off")
    parser.add_argument("--shot", default=None, help="save a screenshot of the finished page here")
    parser.add_argument("--width", type=int, default=1440)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    data = Path(args.data).resolve()
    home = Path(tempfile.mkdtemp(prefix="catdog-demo-"))
    with streamlit_server(home, CATDOG_DATA_ROOTS=str(data.parent)) as (url, _log):
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 1800})
            page.goto(f"{url}/train", wait_until="networkidle")
            box = page.get_by_label("Dataset folder", exact=True).and_(page.locator("input"))
            box.fill(str(data))
            box.press("Enter")
            page.get_by_text("training images").first.wait_for(timeout=60_000)
            epochs = page.get_by_label("Epochs", exact=True).and_(page.locator("input"))
            epochs.fill(str(args.epochs))
            epochs.press("Enter")
            time.sleep(1.5)
            warm = page.locator("label", has_text="Start from the bundled model").locator("input")
            if args.scratch and warm.is_checked():
                warm.click(force=True)
                time.sleep(1.5)
            warm_on = warm.is_checked()
            page.get_by_role("button", name="Start training").click()
            t0 = time.time()
            run = None
            while time.time() - t0 < TIMEOUT_S and run is None:
                time.sleep(1.0)
                run = _finished_run(home)
            seconds = time.time() - t0
            page.wait_for_timeout(4000)
            if args.shot:
                page.screenshot(path=args.shot, full_page=True)
            browser.close()
    if run is None:
        print(f"the training did not end within {TIMEOUT_S} s", file=sys.stderr)
        return 1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    cfg = json.loads((run / "config.json").read_text())
    print(f"CPU: {cpu_model()}; data {data} ({cfg.get('n_train')} train / {cfg.get('n_validation')} validation / "
          f"{cfg.get('n_calibration')} calibration photos); warm start {'on' if warm_on else 'off'} ({cfg.get('init_from')})")
    for r in rows:
        print(f"epoch {r['epoch']}: val_accuracy {r['val_accuracy']:.4f}  val_loss {r['val_loss']:.4f}  ({r['seconds']:.1f} s)")
    state = json.loads((run / "status.json").read_text()).get("state")
    print(f"state {state}; wall time from Start to the end of the run: {seconds:.0f} s")
    accuracies = [r["val_accuracy"] for r in rows]
    print(json.dumps({"warm_start": warm_on, "seconds": round(seconds, 1), "val_accuracy": accuracies, "state": state}))
    return 0 if state == "finished" else 1


if __name__ == "__main__":
    sys.exit(main())
