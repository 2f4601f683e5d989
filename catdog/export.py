"""Export a trained model: Keras file, TensorFlow SavedModel, TFLite or ONNX.

Every export gets a `<name>.catdog.json` sidecar with the class names,
threshold, image size and input format, so a serving stack needs nothing else.
The exported model takes uint8-valued RGB (fed as float32 for SavedModel, TFLite
and ONNX) of shape (n, size, size, 3) and returns P(class 1) of shape (n, 1), with the
model's temperature calibration applied inside the graph (the `.keras` copy is the raw
network: its sidecar gives the temperature to apply).

Export never deletes or overwrites what it did not write: an existing target is
refused, and `overwrite=True` replaces only a previous export of the same
format (recognised by its sidecar), and of it only the files its sidecar lists,
unchanged. The new export is written beside the target and renamed into place,
so a failed export leaves the old one intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from catdog.atomic import TEMP_PREFIX
from catdog.errors import CatdogError, write_error

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
_SUFFIX = {"keras": ".keras", "savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}
# What `model.export(format="tf_saved_model")` writes; a folder holding anything else is not ours to remove.
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb"}


def sidecar_path(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".catdog.json")


def export_model(model: str | os.PathLike | None, fmt: str, out: str | os.PathLike | None = None, overwrite: bool = False) -> Path:
    """Export a run's model (a run folder, id, .keras file or None for the default).

    Args:
        model: what `catdog.predict.resolve_model` accepts.
        fmt: one of `FORMATS`.
        out: the target path (default: next to the model, named by format).
        overwrite: replace a previous export of the same format at `out`
            (anything else at `out` is still refused).

    Returns:
        The exported file or folder; its sidecar is `sidecar_path(out)`.

    Raises:
        CatdogError: unknown format, unreadable model, a target that is not a
            previous export of this format, or a converter that is missing or failed.
    """
    from catdog.predict import Predictor, resolve_model

    if fmt not in FORMATS:
        raise CatdogError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    model_file, _ = resolve_model(model)
    out = Path(os.path.abspath(Path(out).expanduser())) if out else model_file.with_name(f"model_{fmt}{_SUFFIX[fmt]}")
    replace = check_target(out, fmt, overwrite)
    predictor = Predictor.load(model_file, precision="float32", backend="tensorflow")  # portable: every runtime has float32
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.export-") as tmp:
            new = Path(tmp) / "export"
            _write_export(fmt, model_file, predictor, new)
            written = _file_hashes(new)
            _put_in_place(new, out, fmt, replace)
        _write_sidecar(out, fmt, predictor, model_file, written)
    except OSError as exc:
        clear = write_error(exc, out, "then export again")
        if clear is None:
            raise
        raise clear from exc
    return out


def _write_export(fmt: str, model_file: Path, predictor, new: Path) -> None:
    check = getattr(predictor, "openset", None)  # the model's "not a cat or dog" check, if it has one
    if fmt == "keras":
        shutil.copyfile(model_file, new)
    elif fmt == "savedmodel":
        _saved_model(predictor.model, predictor.image_size, new, predictor.temperature, check)
    elif fmt == "tflite":
        _tflite(predictor.model, predictor.image_size, new, predictor.temperature, check)
    else:
        _onnx(predictor.model, predictor.image_size, new, predictor.temperature, check)


def _file_hashes(path: Path) -> dict[str, str]:
    """sha256 of every file an export wrote, by path relative to it ("." for a one-file export)."""
    from catdog.onnx_runtime import file_sha256

    if path.is_file():
        return {".": file_sha256(path)}
    return {p.relative_to(path).as_posix(): file_sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}


def _put_in_place(new: Path, out: Path, fmt: str, replace: bool) -> None:
    """Rename the new export to `out`, replacing only what the previous export wrote.

    The previous export is checked again here, not only before the (long)
    export: a file saved into it, or over it, meanwhile is not export's to remove.
    """
    if not replace:
        if out.is_dir() and not out.is_symlink():
            out.rmdir()  # an empty folder (check_target saw it empty); one no longer empty is refused by rmdir
        os.replace(new, out)
        return
    listed = _recorded_files(_read_sidecar(sidecar_path(out)), out)
    if fmt != "savedmodel":
        if isinstance(listed, dict) and _file_hashes(out) != listed:
            raise CatdogError(f"{str(out)!r} changed while the export ran: it is no longer the export its sidecar "
                              "describes, and export never replaces what it did not write; nothing was replaced")
        os.replace(new, out)
        return
    # Move the old folder aside in one rename, then check it: nothing can be added to it by its name any more.
    old = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{out.name}-previous-", dir=out.parent))
    os.replace(out, old)
    foreign = _not_written_by_export(old, listed)
    if foreign:
        os.replace(old, out)
        raise CatdogError(f"{str(out)!r} is no longer the export its sidecar describes ({', '.join(foreign[:5])}: added, "
                          "changed or missing since); export never removes what it did not write: nothing was replaced; "
                          "move them away, or choose another --out")
    os.replace(new, out)
    _remove_export(old, listed)


def _not_written_by_export(folder: Path, listed) -> list[str]:
    """Files in a previous SavedModel export that its sidecar does not list, changed since, or that it lists and are gone."""
    if not isinstance(listed, dict):  # a sidecar from before the list: SavedModel's own entries only
        return sorted(p.name for p in folder.iterdir() if p.name not in _SAVED_MODEL_ENTRIES or p.is_symlink())
    found = _file_hashes(folder)
    odd = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_symlink() or not (p.is_file() or p.is_dir())]
    missing = {rel for rel in listed if rel not in found}  # listed but not there as a file: not the export it describes
    return sorted({rel for rel, digest in found.items() if listed.get(rel) != digest} | set(odd) | missing)


def _remove_export(folder: Path, listed) -> None:
    """Delete a replaced export: the files its sidecar lists, then the folders left empty (never anything else)."""
    if not isinstance(listed, dict):
        shutil.rmtree(folder)  # checked: SavedModel's own entries only
        return
    for rel in listed:
        (folder / rel).unlink(missing_ok=True)
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        _rmdir_if_empty(sub)
    if not _rmdir_if_empty(folder):
        folder.rename(_free_name(folder.parent / f"{folder.name.removeprefix(TEMP_PREFIX)}.kept"))


def _rmdir_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
        return True
    except OSError:
        return False


def _free_name(path: Path) -> Path:
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


def check_target(out: Path, fmt: str, overwrite: bool = False) -> bool:
    """Refuse a target that export would damage; True when a previous export is to be replaced.

    Args:
        out: the export's path.
        fmt: the export's format.
        overwrite: whether a previous export of the same format may be replaced.

    Raises:
        CatdogError: `out` (or its sidecar) holds something that export did not write.
    """
    sidecar = sidecar_path(out)
    previous = _read_sidecar(sidecar)
    if sidecar.exists() and previous is None:
        raise CatdogError(f"{str(sidecar)!r} exists and is not a catdog export sidecar; choose another --out")
    if not out.exists() and not out.is_symlink():
        return False
    if out.is_dir() and not out.is_symlink() and not any(out.iterdir()) and fmt == "savedmodel":
        return False  # an empty folder: nothing to lose
    ours = previous is not None and previous.get("format") == fmt and _looks_like_export(out, fmt)
    if not ours:
        raise CatdogError(
            f"{str(out)!r} already exists and is not a previous {fmt} export; export never replaces what it did "
            "not write: choose another --out, or move it away"
        )
    if not overwrite:
        raise CatdogError(f"{str(out)!r} holds a previous {fmt} export; pass --overwrite to replace it, or choose another --out")
    _recorded_files(previous, out)
    return True


def _recorded_files(info: dict | None, out: Path) -> dict[str, str] | None:
    """The sidecar's list of the files export wrote, checked: None for a sidecar from before the list.

    Raises:
        CatdogError: the list names a path outside the export (absolute, or through ".."),
            or is not a mapping of relative paths to sha256 digests: such a sidecar was not
            written by export, and nothing it names is export's to remove.
    """
    if info is None or "files" not in info:
        return None
    listed = info["files"]
    if not isinstance(listed, dict) or not listed:
        raise CatdogError(f"{str(sidecar_path(out))!r} does not list the files export wrote; export never removes what it "
                          "did not write: nothing was replaced; move the export away, or choose another --out")
    one_file = info.get("format") != "savedmodel"
    for rel, digest in listed.items():
        if not _inside_export(rel) or (rel == ".") != one_file or not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            raise CatdogError(f"{str(sidecar_path(out))!r} names {rel!r}, which is not a file export wrote inside "
                              f"{str(out)!r}; export never removes what it did not write: nothing was replaced; "
                              "move the export away, or choose another --out")
    return listed


def _inside_export(rel: object) -> bool:
    """Whether a sidecar's path names a file inside the export: "." or a plain relative POSIX path without "..", "." or "\\"."""
    if not isinstance(rel, str) or rel == ".":
        return rel == "."
    parts = rel.split("/")
    return (not rel.startswith("/") and "\\" not in rel and "\0" not in rel
            and all(part not in ("", ".", "..") for part in parts))


def _read_sidecar(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and info.get("format") in FORMATS and "class_names" in info else None


def _looks_like_export(out: Path, fmt: str) -> bool:
    if out.is_symlink():
        return False
    if fmt == "savedmodel":
        return out.is_dir() and (out / "saved_model.pb").is_file() and {p.name for p in out.iterdir()} <= _SAVED_MODEL_ENTRIES
    return out.is_file()


def _write_sidecar(out: Path, fmt: str, predictor, model_file: Path, files: dict[str, str]) -> None:
    info = {
        "format": fmt,
        "files": files,  # what this export wrote, with sha256: `--overwrite` removes exactly these
        "source": str(model_file),
        "class_names": predictor.class_names,
        "threshold": predictor.threshold,
        "image_size": predictor.image_size,
        "input": {
            "shape": [None, predictor.image_size, predictor.image_size, 3],
            "values": "RGB 0..255 (uint8 values, float32 dtype outside keras)",
            "resize": "bilinear, squash to square",
        },
        "output": "P(class_names[1]) per image, shape (n, 1); label = class_names[1] if >= threshold",
        "calibration": {
            "temperature": predictor.temperature,
            "uncertain_below": predictor.uncertain_below,
            "applied": "by you: p = sigmoid(logit(p) / temperature)" if fmt == "keras" else "inside the exported graph",
        },
        "openset": _openset_record(fmt, predictor, model_file),
    }
    from catdog.runs import atomic_write_json

    atomic_write_json(sidecar_path(out), info)


def _openset_record(fmt: str, predictor, model_file: Path) -> dict | None:
    """The sidecar's "not a cat or dog" entry: the threshold, and where the score comes from (None: no check)."""
    if getattr(predictor, "openset", None) is None:
        return None
    from catdog.openset import path_for

    applied = (
        f"by you: catdog.openset.OpenSet.load({str(path_for(model_file))!r}) scores the features of its layers"
        if fmt == "keras"
        else "inside the exported graph: the second output, not_pet_score, shape (n,)"
    )
    return {**predictor.openset.summary(), "rule": "not a cat or dog when not_pet_score > threshold", "applied": applied}


def _inference_fn(model, temperature: float = 1.0, check=None, ordered: bool = False):
    """`model(image, training=False)` in float32 with the temperature applied; with an open-set check, also its score.

    Returns a function giving P(class 1) of shape (n, 1), or with a check the dict
    {"p_dog": (n, 1), "not_pet_score": (n,)} (the score computed as `catdog.openset.scores_tf`);
    `ordered` gives the pair as a tuple instead, P(class 1) first (ONNX keeps that order, so
    output 0 stays P(class 1) as in an export without a check).
    """
    import tensorflow as tf

    from catdog.openset import inference_fn

    outputs = inference_fn(model, check)

    def infer(image):
        p, score = outputs(image)
        p = tf.reshape(p, (-1, 1))
        if temperature != 1.0:
            p = tf.clip_by_value(p, 1e-7, 1.0 - 1e-7)
            p = tf.sigmoid((tf.math.log(p) - tf.math.log(1.0 - p)) / temperature)  # no Log1p: ONNX has none
        if check is None:
            return p
        if ordered:
            return tf.identity(p, name="p_dog"), tf.identity(score, name="not_pet_score")
        return {"p_dog": p, "not_pet_score": score}

    return infer


def _saved_model(model, image_size: int, out: Path, temperature: float = 1.0, check=None) -> None:
    """A SavedModel whose `serve` endpoint is the calibrated `model(image, training=False)`.

    Keras' `model.export` traces the model's own call, which for presets with
    augmentation layers keeps their random ops; the explicit inference
    endpoint leaves them out, as the ONNX and TFLite exports do.
    """
    import keras
    import tensorflow as tf

    spec = tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="image")
    try:
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", _inference_fn(model, temperature, check), input_signature=[spec])
        archive.write_out(str(out), verbose=False)
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types here
        if write_error(exc) is not None:
            raise  # a full disk: export_model words it, naming the target
        raise CatdogError(f"SavedModel export failed: {exc}") from exc


def _tflite(model, image_size: int, out: Path, temperature: float = 1.0, check=None) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "saved"
        _saved_model(model, image_size, saved, temperature, check)  # the inference endpoint only: no random ops for TFLite to lack
        try:
            data = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=["serve"]).convert()
        except Exception as exc:  # noqa: BLE001
            raise CatdogError(f"TFLite conversion failed: {exc}") from exc
    out.write_bytes(data)


def _onnx(model, image_size: int, out: Path, temperature: float = 1.0, check=None) -> None:
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as exc:
        raise CatdogError(f"ONNX export needs tf2onnx: `pip install tf2onnx onnxruntime` ({exc})") from exc
    spec = (tf.TensorSpec((None, image_size, image_size, 3), tf.float32, name="image"),)

    serve = tf.function(_inference_fn(model, temperature, check, ordered=True), input_signature=spec)

    try:
        tf2onnx.convert.from_function(serve, input_signature=spec, opset=17, output_path=str(out))
    except Exception as exc:  # noqa: BLE001 - the converter raises many types
        if write_error(exc) is not None:
            raise
        raise CatdogError(f"ONNX conversion failed: {exc}") from exc
