"""Bad input is bounded and refused clearly: long strips of pixels, zips that expand or clash, NaN thresholds, TF_CONFIG typos."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from pathlib import Path

import pytest

from catdog import cli, sources
from catdog.archive import ArchiveError, extract_zip
from catdog.distribute import tf_config_workers
from catdog.errors import ImageError
from catdog.preprocess import load_array
from tests.fixtures import REPO, image_bytes, make_class_folders

ASPECT = r"aspect ratio.*the limit is \d+:1.*crop"


def grey_png(width: int, height: int, data: bool = True) -> bytes:
    """A grey PNG of any shape, built row by row (Pillow would allocate the whole image); header only when not `data`."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    pixels = zlib.compress((b"\0" + b"\x80" * width) * height, 9) if data else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + (chunk(b"IDAT", pixels) if data else b"") + chunk(b"IEND", b""))


# --- item 14: extreme aspect ratios --------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 20_000), (20_000, 1), (3, 1_000)])
def test_a_long_strip_of_pixels_is_refused_with_a_clear_message(shape, stats):
    with pytest.raises(ImageError, match=ASPECT):
        load_array(grey_png(*shape), 32)
    stats.input(ok=False)


def test_the_header_of_the_reported_strip_is_refused_before_decoding(stats):
    # 1 x 119,999,999 pixels is within the pixel limit; decoding it took 4.4 GB.
    with pytest.raises(ImageError, match=ASPECT):
        load_array(grey_png(1, 119_999_999, data=False), 160)
    stats.input(ok=False)


def test_a_wide_panorama_within_the_limit_still_loads(stats):
    assert load_array(grey_png(600, 40), 32).shape == (32, 32, 3)
    stats.input(ok=True)


STRIP_CHILD = textwrap.dedent(
    """
    import sys
    from catdog.errors import ImageError
    from catdog.preprocess import load_array

    def peak_kb():
        with open("/proc/self/status") as fh:
            return int(next(line for line in fh if line.startswith("VmHWM:")).split()[1])

    data = open(sys.argv[1], "rb").read()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    rss = peak_kb()
    try:
        load_array(data, 160)
        print("accepted", (peak_kb() - rss) / 1024)
    except ImageError as exc:
        print("refused", (peak_kb() - rss) / 1024)
    """
)


@pytest.mark.slow
def test_a_12_megapixel_strip_costs_no_memory(tmp_path, stats):
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux's /proc/self/clear_refs to measure a peak")
    path = tmp_path / "strip.png"
    path.write_bytes(grey_png(1, 12_000_000))  # 23 KB; decoding and resizing it took 435 MB
    proc = subprocess.run([sys.executable, "-c", STRIP_CHILD, str(path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict, megabytes = proc.stdout.split()
    stats.note(f"a 1 x 12,000,000 px PNG ({path.stat().st_size / 1e3:.0f} KB): {verdict}, peak {float(megabytes):.0f} MB")
    assert verdict == "refused" and float(megabytes) < 50
    stats.input(ok=False)


# --- item 15: zips that expand too far, over one archive and over a session ---------


def _zip(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def test_many_small_entries_of_zeros_are_refused_as_a_whole(tmp_path, stats):
    # Each entry is under the per-entry floor (10 MB); together they expand 1000x.
    payload = _zip([(f"cats/{i}.jpg", bytes(1024 * 1024)) for i in range(12)])
    assert len(payload) < 100_000
    stats.fault()
    with pytest.raises(ArchiveError, match=r"expands .*x.*zip bomb"):
        extract_zip(io.BytesIO(payload), tmp_path / "out")
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []
    stats.input(ok=False)


def test_the_bytes_one_session_may_unpack_are_bounded(tmp_path, monkeypatch, stats):
    from catdog.archive import UnpackBudget

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    good = _zip([(f"cats/{i}.jpg", image_bytes(seed=i)) for i in range(3)] + [(f"dogs/{i}.jpg", image_bytes(seed=9 + i)) for i in range(3)])
    size = sum(len(image_bytes(seed=i)) for i in range(3)) + sum(len(image_bytes(seed=9 + i)) for i in range(3))
    budget = UnpackBudget(int(size * 2.5))
    sources.import_zip(io.BytesIO(good), "one.zip", budget=budget)
    sources.import_zip(io.BytesIO(good), "two.zip", budget=budget)
    stats.fault()
    with pytest.raises(ArchiveError, match="this session"):
        sources.import_zip(io.BytesIO(good), "three.zip", budget=budget)
    assert sorted(p.name for p in (tmp_path / "home" / "datasets").iterdir()) == ["one", "two"]
    stats.input(ok=True, n=2)
    stats.input(ok=False)


# --- item 16: entries that clash or cannot be names ----------------------------------


def test_clashing_and_unnameable_zip_entries_are_refused_one_by_one(tmp_path, monkeypatch, stats):
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    deep = "d/" * 2100 + "deep.jpg"  # 4,208 characters: ENAMETOOLONG
    long_path = "/".join(["p" * 200] * 20) + ".jpg"  # 20 folders of 200 bytes: within the depth limit, too long a path
    entries = [
        ("cats/a.jpg", image_bytes(seed=1)),
        ("cats/x", b"a file named like the folder below"),
        ("cats/x/y.jpg", image_bytes(seed=2)),
        ("dogs/y/z.jpg", image_bytes(seed=6)),
        ("dogs/" + "n" * 300 + ".jpg", image_bytes(seed=3)),
        (deep, image_bytes(seed=4)),
        (long_path, image_bytes(seed=4)),
        ("dogs/b.jpg", image_bytes(seed=5)),
        ("dogs/y", b"a file named like the folder above"),
        ("dogs/b.jpg", b"a second entry of the same name"),
    ]
    refused: list[tuple[str, str]] = []
    with pytest.warns(UserWarning, match="Duplicate name"):
        payload = _zip(entries)
    dest = sources.import_zip(io.BytesIO(payload), "clash.zip", refused=refused)
    stats.fault(len(entries))
    reasons = dict(refused)
    assert set(reasons) == {"cats/x/y.jpg", "dogs/" + "n" * 300 + ".jpg", deep, long_path, "dogs/y", "dogs/b.jpg"}, refused
    assert "file of the same name" in reasons["cats/x/y.jpg"] and "255" in reasons["dogs/" + "n" * 300 + ".jpg"]
    assert "long" in reasons[long_path] and "deep" in reasons[deep] and "same name" in reasons["dogs/b.jpg"]
    assert (dest / "cats" / "a.jpg").read_bytes() == image_bytes(seed=1)
    assert (dest / "dogs" / "b.jpg").read_bytes() == image_bytes(seed=5)  # the first entry of a name is kept
    assert (dest / "cats" / "x").is_file() and (dest / "dogs" / "y" / "z.jpg").is_file()
    assert "folder of the same name" in reasons["dogs/y"]
    stats.input(ok=True, n=4)
    stats.input(ok=False, n=len(refused))


def test_without_a_refused_list_the_first_bad_entry_refuses_the_zip(tmp_path, stats):
    payload = _zip([("cats/x", b"file"), ("cats/x/y.jpg", image_bytes())])
    with pytest.raises(ArchiveError, match="cats/x/y.jpg"):
        extract_zip(io.BytesIO(payload), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    stats.input(ok=False)


# --- item 21: thresholds -------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.5"])
def test_evaluate_refuses_a_threshold_outside_0_1(tmp_path, value, stats):
    folder = make_class_folders(tmp_path / "data", n=2)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["evaluate", "--data", str(folder), "--threshold", value, "--json"], out=out, err=err)
    stats.input(ok=False)
    assert code == 2 and "threshold" in err.getvalue() and "[0, 1]" in err.getvalue(), err.getvalue()
    assert "NaN" not in out.getvalue() and out.getvalue() == ""


def test_evaluate_images_refuses_a_bad_threshold_too(stats):
    from catdog.evaluate import evaluate_images

    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\], got nan"):
        evaluate_images(object(), None, [], "x", threshold=float("nan"))
    stats.input(ok=False)


# --- item 25: TF_CONFIG --------------------------------------------------------------


@pytest.mark.parametrize("cluster", [{"worker": "host:1234"}, {"worker": ["a:1"], "chief": "b:2"}, {"worker": [1, 2]}, ["a:1"]])
def test_tf_config_with_a_string_for_the_worker_list_is_refused(cluster, stats):
    with pytest.raises(ValueError, match="TF_CONFIG"):
        tf_config_workers({"TF_CONFIG": json.dumps({"cluster": cluster})})
    stats.input(ok=False)


def test_a_good_tf_config_still_counts_its_workers():
    env = {"TF_CONFIG": json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "chief"}})}
    assert tf_config_workers(env) == 3


@pytest.mark.slow
def test_the_data_page_imports_a_clashing_zip_and_lists_what_it_left_out(tmp_path, monkeypatch, stats):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CATDOG_DATA_ROOTS", str(tmp_path))
    payload = _zip([("cats/x", image_bytes(seed=1)), ("cats/x/y.jpg", image_bytes(seed=2)), ("dogs/a.jpg", image_bytes(seed=3)),
                    ("dogs/" + "n" * 300 + ".jpg", image_bytes(seed=4))])
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    at = at.switch_page("pages/data.py").run()
    at.file_uploader(key="data_zip").set_value([("clash.zip", payload, "application/zip")]).run()
    at.button(key="import_zip").click().run()
    stats.fault(2)
    assert not at.exception, at.exception
    warning = " ".join(str(w.value) for w in at.warning)
    assert "2 zip entries could not be stored" in warning and "cats/x/y.jpg" in warning and "255" in warning, warning
    assert at.selectbox(key="data_pick").value.endswith("clash")
    stats.input(ok=True, n=2)
    stats.input(ok=False, n=2)
