"""Dataset report: class counts, split, image sizes, duplicates, corrupt files, quarantine."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from catdog import data, preprocess
from catdog.errors import CatdogError


@dataclass
class FileCheck:
    """One file's hash, size, and (when unreadable) the reason."""

    path: Path
    part: str  # "train" or "validation"
    label: str
    digest: str = ""
    size: tuple[int, int] | None = None
    error: str | None = None


@dataclass
class DatasetReport:
    """Everything `inspect_dataset` found; `to_dict` gives the JSON form."""

    root: Path
    kind: str
    class_names: list[str]
    counts: dict[str, dict[str, int]]
    size_stats: dict[str, float]
    duplicates: list[list[str]]
    leaks: list[list[str]]
    corrupt: list[tuple[str, str]]
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["root"] = str(self.root)
        d["total"] = self.total
        return d


def inspect_dataset(path: str | os.PathLike, samples_per_class: int = 8, workers: int = 4) -> DatasetReport:
    """Scan every image of a dataset folder and build the report.

    Raises:
        DatasetError: the folder is missing or not a dataset (from `catdog.data.discover`).
    """
    layout = data.discover(path)
    checks = _checked(_planned_checks(layout), layout.root, workers)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {n: 0 for n in layout.class_names})
    for c in checks:
        counts[c.part][c.label] += 1
    samples = {n: [str(c.path) for c in checks if c.label == n and not c.error and c.part == "train"][:samples_per_class]
               for n in layout.class_names}
    duplicates, leaks = _duplicates(checks, layout.root)
    corrupt = [(_rel(c.path, layout.root), c.error) for c in checks if c.error]
    return DatasetReport(layout.root, layout.kind, layout.class_names, dict(counts), _size_stats(checks),
                         duplicates, leaks, corrupt, samples)


def _planned_checks(layout: data.DatasetLayout) -> list[FileCheck]:
    parts = [("train", layout.train)] + ([("validation", layout.validation)] if layout.validation else [])
    return [FileCheck(p, part, layout.class_names[label])
            for part, images in parts for p, label in zip(images.paths, images.labels)]


CHECKS_CACHE_FORMAT = 1


def checks_cache_path(root: Path) -> Path:
    """Where the checks of the photos under `root` are remembered (one JSON file per dataset folder)."""
    from catdog import config

    return config.cache_dir() / "inspect" / f"{hashlib.sha256(str(root).encode()).hexdigest()[:32]}.json"


def _checked(checks: list[FileCheck], root: Path, workers: int) -> list[FileCheck]:
    """Every file checked: read back from the cache when its size and modification time are unchanged,
    else read and decoded (a page's first visit after a restart reads 8,000 photos in seconds; this, in a stat each)."""
    cached = _read_checks_cache(root)
    stamps, todo = {}, []
    for check in checks:
        try:
            stat = check.path.stat()
            stamps[check.path] = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            stamps[check.path] = None
        hit = cached.get(str(check.path))
        if hit is not None and stamps[check.path] == hit[:2]:
            check.digest, size, check.error = hit[2], hit[3], hit[4]
            check.size = tuple(size) if size else None
        else:
            todo.append(check)
    if todo:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_check_file, todo))
        _write_checks_cache(root, checks, stamps)
    return checks


def _read_checks_cache(root: Path) -> dict[str, list]:
    """{path: [size, mtime_ns, digest, [width, height] or None, error or None]}; {} when missing or not ours."""
    try:
        record = json.loads(checks_cache_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("format") != CHECKS_CACHE_FORMAT or record.get("root") != str(root):
        return {}
    files = record.get("files")
    return {k: v for k, v in files.items() if _valid_entry(v)} if isinstance(files, dict) else {}


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, list) or len(entry) != 5:
        return False
    size, mtime, digest, dims, error = entry
    return (all(isinstance(v, int) and not isinstance(v, bool) for v in (size, mtime)) and isinstance(digest, str)
            and (dims is None or (isinstance(dims, list) and len(dims) == 2 and all(isinstance(d, int) for d in dims)))
            and (error is None or isinstance(error, str)))


def _write_checks_cache(root: Path, checks: list[FileCheck], stamps: dict) -> None:
    from catdog.atomic import atomic_write_text

    files = {str(c.path): [*stamps[c.path], c.digest, list(c.size) if c.size else None, c.error]
             for c in checks if stamps.get(c.path) is not None}
    try:
        target = checks_cache_path(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, json.dumps({"format": CHECKS_CACHE_FORMAT, "root": str(root), "files": files}))
    except OSError:
        pass  # a cache that cannot be written only means the next report reads the photos again


def content_digest(raw: bytes) -> str:
    """The digest that tells duplicate photos apart (same bytes, same digest)."""
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _check_file(check: FileCheck) -> FileCheck:
    try:
        raw = preprocess.read_bytes(check.path)
        if raw:  # empty files are reported as corrupt, not as duplicates of each other
            check.digest = content_digest(raw)
        # A reduced-scale JPEG decode still reads every byte, so truncation shows, at a fraction of the cost.
        preprocess.open_image(raw, draft_size=16)
        check.size = Image.open(io.BytesIO(raw)).size  # the header's size, not the draft's
    except CatdogError as exc:
        check.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - Pillow's header parser raises many types
        check.error = f"not a readable image ({type(exc).__name__}: {exc})"
    return check


def _duplicates(checks: list[FileCheck], root: Path) -> tuple[list[list[str]], list[list[str]]]:
    groups: dict[str, list[FileCheck]] = defaultdict(list)
    for c in checks:
        if c.digest:
            groups[c.digest].append(c)
    dups = [g for g in groups.values() if len(g) > 1]
    leaks = [g for g in dups if len({c.part for c in g}) > 1]
    return ([[_rel(c.path, root) for c in g] for g in dups], [[_rel(c.path, root) for c in g] for g in leaks])


def _size_stats(checks: list[FileCheck]) -> dict[str, float]:
    sizes = [c.size for c in checks if c.size and not c.error]
    if not sizes:
        return {}
    widths, heights = sorted(s[0] for s in sizes), sorted(s[1] for s in sizes)
    common = Counter(sizes).most_common(1)[0]
    return {
        "min_width": widths[0], "max_width": widths[-1], "median_width": widths[len(widths) // 2],
        "min_height": heights[0], "max_height": heights[-1], "median_height": heights[len(heights) // 2],
        "most_common": f"{common[0][0]}x{common[0][1]} ({common[1]} files)",
    }


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def quarantine(report: DatasetReport, dest: str | os.PathLike | None = None) -> list[Path]:
    """Move the report's corrupt files into a quarantine folder (never delete them).

    The default folder sits next to the dataset (`<root>.quarantine/`), outside it, so
    that `discover` and training no longer see the files. The relative path is kept.
    """
    target_root = Path(dest) if dest else report.root.with_name(report.root.name + ".quarantine")
    moved = []
    root = report.root.resolve()
    for rel, _reason in report.corrupt:
        src = report.root / rel
        if not src.exists() or not _is_inside(src.parent.resolve(), root):
            continue  # gone, or reached through a symlink that leads out of the dataset: not ours to move
        target = _reserve(target_root / rel)
        try:
            shutil.move(str(src), str(target))  # replaces only the empty placeholder `_reserve` made
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        moved.append(target)
    return moved


def _reserve(target: Path) -> Path:
    """A new, empty file at `target`, or at `<stem>-2<suffix>`, `-3`… when taken: quarantine never replaces a file.

    Created with O_EXCL, so two quarantines at once cannot pick the same name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, n = target, 1
    while True:
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return candidate
        except FileExistsError:
            n += 1
            candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")


def _is_inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def format_report(report: DatasetReport) -> str:
    """The human-readable report the CLI prints."""
    lines = [f"dataset: {report.root}", f"layout: {report.kind}; classes: {', '.join(report.class_names)}"]
    for part, counts in report.counts.items():
        per = ", ".join(f"{n} {k}" for k, n in counts.items())
        lines.append(f"{part}: {sum(counts.values())} images ({per})")
    lines.append(f"total: {report.total} images")
    s = report.size_stats
    if s:
        lines.append(f"image sizes: width {s['min_width']}-{s['max_width']} (median {s['median_width']}), "
                     f"height {s['min_height']}-{s['max_height']} (median {s['median_height']}); most common {s['most_common']}")
    lines.append(f"duplicates (same content): {len(report.duplicates)} groups"
                 f"; across train and validation (leakage): {len(report.leaks)}")
    for group in report.duplicates[:20]:
        lines.append("  " + " = ".join(_shown(rel) for rel in group))
    lines.append(f"corrupt or unreadable: {len(report.corrupt)}")
    for rel, reason in report.corrupt:
        lines.append(f"  {_shown(rel)}: {_shown(reason)}")
    return "\n".join(lines)


def _shown(text) -> str:
    """A file name on one line: control characters (a newline in a name) are escaped, as repr() would."""
    text = str(text)
    return text if text.isprintable() else repr(text)[1:-1]
