"""First visit of each page in headless Chromium: the time until the page's main content is drawn.

    python -m benchmarks.page_load --label after --out docs/page_load.json [--home DIR] [--rounds 3]

It serves the studio (`streamlit run`, tests/server.py) with a CATDOG_HOME that holds a
finished lite0 run (the Runs page's slow case): `--home` reuses one, else it makes a
shirt-vs-pants dataset (`catdog data pair`) and trains one (about a minute). `--dataset`
makes a bigger folder the suggested one (catdog-small: 8,000 photos that the Data page checks
and the Train page lists and compares with the bundled model's training photos).
Each visit opens the page's URL in a new tab (a new Streamlit session) and waits until its
last main element (`MARKERS`) is visible; the time counts from the navigation, so it includes
Streamlit's own frontend (each visit also records when the frontend was up and when the app's
menu was drawn). Every page is visited twice a round: in a new browser context (a browser that
never opened the studio: Streamlit's 1-5 MB of JavaScript fetched and compiled again, the
pessimistic figure) and in a browser that opened the studio once (its files cached, as for
anyone who comes back). Round 1 is the server's first visit of each page (its imports
included, Home first); later rounds are a new visitor on a running server. The machine (lscpu's model name,
/proc/cpuinfo's cpu family) and the 1-minute load average before and after each round
are printed and written with the figures under `--label` in `--out` (other labels kept).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLOTHING = REPO.parent / "shared" / "data" / "not-pets" / "clothing"
# (page, URL path, what is drawn last on it): the main content is there once this is visible.
MARKERS = (
    ("home", "", ("text", "Compare runs")),
    ("data", "data", ("button", "Use this dataset for training")),
    ("train", "train", ("button", "Start training")),
    ("predict", "predict", ("button", "cat-1")),
    ("runs", "runs", ("button", "Delete run")),
    ("evaluate", "evaluate", ("text", "then press")),
)
TIMEOUT_MS = 120_000


def machine() -> dict:
    """lscpu's model name, /proc/cpuinfo's cpu family, and the core count."""
    from catdog.hardware import cpu_family, lscpu_model_name

    return {"lscpu_model_name": lscpu_model_name(), "cpu_family": cpu_family(), "cores": os.cpu_count()}


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def make_home(home: Path) -> Path:
    """A CATDOG_HOME with a shirt-vs-pants dataset and one finished lite0 run trained on it."""
    env = dict(os.environ, CATDOG_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    data = home / "datasets" / "shirt-vs-pants"
    for cmd in (["data", "pair", str(CLOTHING), "shirt", "pants", "--train-per-class", "20", "--dest", str(data)],
                ["train", "--data", str(data)]):
        subprocess.run([sys.executable, "-m", "catdog", *cmd], env=env, cwd=REPO, check=True, capture_output=True)
    return home


def _marker(page, kind: str, text: str):
    main = page.locator("[data-testid=stMain]")
    if kind == "button":
        return main.get_by_role("button", name=text, exact=True).first
    return main.get_by_text(text).first


def visit(browser, url: str, kind: str, text: str, width: int, context=None) -> dict:
    """Seconds from navigating to `url` in a new tab until: Streamlit's frontend is up (`app`), the app's menu is
    drawn (`menu`: the server ran the entry point to `st.navigation`), and the page's marker is visible (`main`,
    the figure that counts). The tab opens in `context` (a browser that has the frontend's files cached), else in
    a new context (a browser that never opened the studio)."""
    own = context is None
    context = context or browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url, wait_until="commit")
        marks = {}
        for name, locator in (("app", page.locator("[data-testid=stApp]").first),
                              ("menu", page.locator("[data-testid=stSidebarNav]").first),
                              ("main", _marker(page, kind, text))):
            locator.wait_for(state="visible" if name != "app" else "attached", timeout=TIMEOUT_MS)
            marks[name] = round(time.perf_counter() - started, 3)
        if page.locator("[data-testid=stException]").count():
            raise SystemExit(f"{url} shows an exception")
        return marks
    finally:
        page.close()
        if own:
            context.close()


def measure(home: Path, rounds: int, width: int, roots: list[Path]) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.server import CHROMIUM, CHROMIUM_ARGS, streamlit_server

    visits: dict[str, dict[str, list[dict]]] = {"new_browser": {name: [] for name, _p, _m in MARKERS},
                                                "cached_browser": {name: [] for name, _p, _m in MARKERS}}
    loads = []
    env = {"CATDOG_DATA_ROOTS": os.pathsep.join(str(r) for r in roots)} if roots else {}
    with streamlit_server(home, **env) as (url, _log), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        cached = browser.new_context(viewport={"width": width, "height": 900})
        for number in range(1, rounds + 1):
            before = load_average()
            for name, path, (kind, text) in MARKERS:
                visits["new_browser"][name].append(visit(browser, f"{url}/{path}", kind, text, width))
                if number == 1:  # this browser has seen the studio once (its files are cached), not this page
                    visit(browser, f"{url}/", *MARKERS[0][2], width, cached)
                visits["cached_browser"][name].append(visit(browser, f"{url}/{path}", kind, text, width, cached))
            loads.append({"round": number, "load_before": before, "load_after": load_average()})
            print(f"round {number}: " + ", ".join(f"{k} {v[-1]['main']:.2f}/{visits['cached_browser'][k][-1]['main']:.2f}s"
                                                   for k, v in visits["new_browser"].items())
                  + f" (new/cached browser; load {before} -> {loads[-1]['load_after']})", flush=True)
        cached.close()
        browser.close()
    return {"visits": visits, "load_average_1min": loads}


def summary(visits: dict[str, list[dict]]) -> dict:
    """Per page, to the main content drawn: round 1 (in a new browser, the server's first visit of the page) and
    the median of the later rounds (a new visitor on a running server), with the medians of when the frontend
    was up and of the part after the menu (the page's own work, Python and drawing)."""
    rows = {}
    for name, marks in visits.items():
        later = marks[1:]
        rows[name] = {
            "round_1": marks[0]["main"],
            "later_rounds_median": round(statistics.median(m["main"] for m in later), 3) if later else None,
            "frontend_up_median": round(statistics.median(m["app"] for m in marks), 3),
            "after_menu_median": round(statistics.median(m["main"] - m["menu"] for m in marks), 3),
        }
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a CATDOG_HOME to serve (default: a temp one with a run)")
    parser.add_argument("--dataset", type=Path, default=None,
                        help="make this folder the suggested dataset (the Data and Train pages read it), e.g. catdog-small")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--label", default="now", help="the key these figures are written under (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=None, help="a JSON file to add the figures to")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds!r}")
    info = machine()
    print(f"machine: {info['lscpu_model_name']} (cpu family {info['cpu_family']}, {info['cores']} cores)", flush=True)
    with tempfile.TemporaryDirectory(prefix="catdog-pageload-") as tmp:
        home = args.home or make_home(Path(tmp) / "home")
        roots = []
        if args.dataset:
            dataset = args.dataset.resolve()
            (home / "active_dataset.json").write_text(json.dumps({"path": str(dataset)}))
            roots = [home.resolve(), dataset.parent]
        result = measure(home, args.rounds, args.width, roots)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    record = {"machine": info, "command": "python -m benchmarks.page_load " + " ".join(sys.argv[1:]),
              "commit": commit, "width": args.width, "measured": time.strftime("%Y-%m-%d %H:%M"),
              "dataset": str(args.dataset) if args.dataset else None,
              "summary": {kind: summary(pages) for kind, pages in result["visits"].items()}, **result}
    for kind, rows in record["summary"].items():
        print(kind.replace("_", " ") + ":")
        for name, row in rows.items():
            later = f"{row['later_rounds_median']:.2f}s" if row["later_rounds_median"] is not None else "–"
            print(f"  {name:9s} round 1 {row['round_1']:.2f}s · later rounds {later} "
                  f"(frontend up {row['frontend_up_median']:.2f}s, after the menu {row['after_menu_median']:.2f}s)")
    if args.out:
        existing = json.loads(args.out.read_text()) if args.out.exists() else {}
        existing[args.label] = record
        args.out.write_text(json.dumps(existing, indent=1) + "\n")
        print(f"written to {args.out} under {args.label!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
