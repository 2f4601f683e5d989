"""Command line: `python -m catdog …` or `catdog …`."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import IO, Sequence

from catdog import config
from catdog.errors import CatdogError
from catdog.hardware import PRECISIONS
from catdog.quiet import quiet_tensorflow


def _add_train_parser(sub) -> None:
    from catdog.training import add_config_arguments

    p = sub.add_parser("train", help="train a model on a dataset folder")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped, failed or killed run from its last checkpoint, with its own settings (--epochs may raise the total)",
    )
    add_config_arguments(p)  # one flag per TrainConfig field
    p.add_argument("--runs-dir", default=None, help=f"parent folder of run folders (default {config.runs_dir()})")
    p.add_argument("--run-id", default=None, help="name of the run folder (default: time and preset)")
    p.add_argument("--no-lock", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--requested-at", type=float, default=None, help=argparse.SUPPRESS)  # set by catdog.jobs.start_resume


def _add_precision(p) -> None:
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="dtype to compute in (auto: float32 on a CPU, float16 on a GPU; env CATDOG_PREDICT_PRECISION)")
    p.add_argument("--backend", default=None, choices=("auto", "onnxruntime", "tensorflow"),  # predict.BACKENDS
                   help="inference runtime (auto: ONNX Runtime when installed and the model has or gets a model.onnx, "
                        "on a CPU in float32; else TensorFlow; env CATDOG_PREDICT_BACKEND)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catdog", description="Train and serve a cats-vs-dogs classifier.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("models", help="list the model presets")
    _add_train_parser(sub)

    p = sub.add_parser("predict", help="classify images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", default=None, help="run folder, run id or .keras file (default: the active or bundled model)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--explain", metavar="OUT_DIR", default=None, help="also write a Grad-CAM overlay <stem>.gradcam.png per good image")
    _add_precision(p)

    p = sub.add_parser("evaluate", help="measure a model on a labelled folder")
    p.add_argument("--model", default=None, help="run folder, run id or .keras file (default: the active or bundled model)")
    p.add_argument("--data", default=None, help="labelled folder (the validation part of a train/test layout)")
    p.add_argument("--not-pets", default=None, metavar="DIR",
                   help="a folder of photos with no cat or dog: report the share flagged 'not a cat or dog'")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--json", action="store_true", help="print only one JSON object (all misclassified files included)")
    _add_precision(p)

    p = sub.add_parser("openset", help="the 'not a cat or dog' check of a model")
    osub = p.add_subparsers(dest="openset_command", required=True, metavar="ACTION")
    p = osub.add_parser("fit", help="(re)fit a model's check from its training photos (written beside model.keras)")
    p.add_argument("model", nargs="?", default=None, help="run folder, run id or .keras file (default: the active or bundled model)")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="training photos to fit on (default: the run's own training folders); repeat for several")
    p.add_argument("--negatives", action="append", default=None, metavar="DIR",
                   help="photos with no cat or dog: reported (the share flagged), never used to set the threshold")
    p.add_argument("--flag-rate", type=float, default=None,
                   help="share of held-out training photos the check may flag (default 0.02; 0.01 for a lite0 model of cats and dogs)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("runs", help="list runs")
    p.add_argument("--runs-dir", default=None)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("stop", help="ask a running training to stop cleanly")
    p.add_argument("run", help="run folder or id")

    p = sub.add_parser("use", help="make a run's model the default for predict, evaluate and the app (once it loads)")
    p.add_argument("run", help="run folder, run id, .keras file, or 'bundled'")

    p = sub.add_parser("export", help="export a model as keras, savedmodel, tflite or onnx (with a .catdog.json sidecar)")
    p.add_argument("run", help="run folder, run id or .keras file")
    p.add_argument("--format", required=True, choices=("keras", "savedmodel", "tflite", "onnx"))
    p.add_argument("--out", default=None, help="target path (default: next to the model); an existing one is refused")
    p.add_argument("--overwrite", action="store_true", help="replace a previous export of the same format at --out (nothing else)")
    p.add_argument("--quantize", default=None, choices=("int8",),
                   help="onnx only, opt-in: static int8 quantisation calibrated on --calibration-data (default out: model_onnx_int8.onnx)")
    p.add_argument("--calibration-data", default=None, metavar="DIR", help="training photos to calibrate the int8 model on")
    p.add_argument("--calibration-images", type=int, default=200, metavar="N", help="photos used for the int8 calibration")
    p.add_argument("--check-data", default=None, metavar="DIR", help="labelled folder: print the accuracy change int8 causes")
    p = sub.add_parser("report", help="write a self-contained HTML report of a run (opens offline)")
    p.add_argument("run", help="run folder or id")
    p.add_argument("--out", default=None, help="the HTML file (default: <run>/report.html); an existing file is refused")
    p.add_argument("--overwrite", action="store_true", help="replace a previous catdog report at --out (nothing else)")
    p.add_argument("--data", default=None, help="labelled folder to evaluate on (default: the run's own validation folder)")
    p.add_argument("--no-eval", action="store_true", help="facts and curves only: no evaluation, no sample predictions")
    p.add_argument("--not-pets", default=None, metavar="DIR",
                   help="a folder of photos with no cat or dog: the report gives the share flagged 'not a cat or dog'")
    _add_data_parsers(sub)
    return parser


def _add_data_parsers(sub) -> None:
    p = sub.add_parser("download", help="download a Kaggle dataset or competition into class folders")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="owner/dataset slug (default salader/dogs-vs-cats)")
    src.add_argument("--competition", default=None, help="competition name, e.g. dogs-vs-cats")
    p.add_argument("slug", nargs="?", default=None, help="owner/dataset slug (same as --dataset)")
    p.add_argument("--dest", default=None, help="target folder (default: CATDOG_HOME/datasets/<name>)")
    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = dsub.add_parser("inspect", help="report classes, split, sizes, duplicates and corrupt files")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quarantine", action="store_true", help="move corrupt files to DIR.quarantine/ (never deletes)")
    p = dsub.add_parser("pair", help="two classes from one folder whose file names start with the class (glass_1.jpg, metal_7.jpg)")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("classes", nargs=2, metavar="CLASS")
    p.add_argument("--train-per-class", type=int, default=40, help="training photos per class; the rest are the test photos")
    p.add_argument("--dest", default=None, help="new folder (default CATDOG_HOME/datasets/A-vs-B)")
    p.add_argument("--seed", type=int, default=0)


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """Run the CLI. Returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    args = build_parser().parse_args(argv)
    quiet_tensorflow()  # no foreign log lines: whichever command imports TensorFlow, it does so quietly
    try:
        return COMMANDS[args.command](args, out)
    except (CatdogError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=err)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return 130


# Parameter counts at each preset's default size, so `catdog models` never starts TensorFlow
# (tests/test_cli.py checks them against `count_params`).
PRESET_PARAMS = {"seed": 14_848_193, "compact": 887_081, "lite0": 4_696_305}


def cmd_models(args, out) -> int:
    from catdog.models import PRESETS

    print(f"{'preset':<14}{'parameters':>14}{'input':>10}  description", file=out)
    for name, spec in PRESETS.items():
        params = PRESET_PARAMS.get(name)
        if params is None:  # a preset added without a recorded count: build it once
            from catdog.models import count_params

            params = count_params(name)
        print(f"{name:<14}{params:>14,}{spec.image_size:>6}x{spec.image_size:<3}  {spec.description}", file=out)
    _print_bundled(out)
    return 0


def _print_bundled(out) -> None:
    from catdog.catalog import bundled_entry

    entry = bundled_entry()
    if entry is not None:
        acc = f", accuracy {entry.accuracy:.1%} on {entry.accuracy_on}" if entry.accuracy is not None else ""
        print(f"\nbundled model: {entry.preset or '?'} at {entry.image_size or '?'}px{acc}\n  {entry.path}", file=out)


def cmd_train(args, out) -> int:
    from catdog.distribute import check_environment
    from catdog.training import config_from_args, resume, train

    check_environment()  # a bad TF_CONFIG or CATDOG_CLUSTER_TIMEOUT is refused before a run folder exists
    session = {"stream": out, "lock": not args.no_lock, "verbose": 0}  # catdog logs one line per epoch: no Keras bar
    if args.resume:
        run = resume(args.resume, epochs=args.epochs, requested_at=args.requested_at, **session)
    elif not args.data:
        raise ValueError("--data is required (the dataset folder), unless you --resume a run")
    else:
        cfg = config_from_args(args)  # unset flags stay None: `train` resolves them as TrainConfig(...) does
        run = train(cfg, runs_dir=args.runs_dir, run_id=args.run_id, **session)
    result = _result_line(run)
    if result:
        print(result, file=out)
    print(run.path, file=out)  # last, for scripts
    return 0


def _result_line(run) -> str | None:
    """'Validation accuracy: 83.3% before training → 91.7% after, on 60 validation photos' when the run
    recorded `before`, else the saved model's 'Validation accuracy: 91.7%'; None without a saved model."""
    from catdog.compare import before_after_text

    text = before_after_text(run)
    if text is None:
        accuracy = run.model_val_accuracy()
        text = None if accuracy is None else f"{accuracy:.1%}"
    return None if text is None else f"Validation accuracy: {text}"


def cmd_predict(args, out) -> int:
    from catdog.predict import Predictor

    predictor = Predictor.load(args.model, precision=args.precision, backend=args.backend)
    if not args.json:  # --json stays one object per line
        print(_model_line(predictor, asked=args.model), file=out)
    failed, stems = 0, set()
    for source, result in zip(args.images, predictor.predict(args.images)):
        failed += not result.ok
        if args.explain and result.ok:
            from catdog.gradcam import save_explanation

            save_explanation(predictor, source, args.explain, _unique_stem(source, stems))
        if args.json:
            print(json.dumps({**result.as_dict(), **({"backend": predictor.backend} if result.ok else {})}), file=out)
        elif result.ok:
            print(_prediction_line(result), file=out)
        else:
            print(f"{result.file}\terror: {result.error}", file=out)
    return 1 if failed else 0


def _model_line(predictor, asked: str | None) -> str:
    """'Model: bundled lite0 (active; --model picks another) · ONNX Runtime': which model answers, on what, and
    whether it has a "not a cat or dog" check (without one it never says so)."""
    runtime = "ONNX Runtime" if predictor.backend == "onnxruntime" else "TensorFlow"
    active = "" if asked is not None else " (active; --model picks another)"
    check = "" if getattr(predictor, "openset", None) is not None else " · no 'not a cat or dog' check (catdog openset fit adds one)"
    return f"Model: {_model_name(Path(predictor.source))}{active} · {runtime}{check}"


def _model_name(model_file: Path) -> str:
    """'bundled lite0', 'run ID' (a run in the runs folder), or the model file's path."""
    from catdog.model_files import bundled_model_dir, read_settings

    bundled = bundled_model_dir()
    if bundled is not None and model_file == (bundled / config.MODEL_FILENAME).resolve():
        try:
            preset = read_settings(model_file).get("model")
        except (CatdogError, OSError):
            preset = None
        return f"bundled {preset}" if preset else "bundled model"
    if model_file.name == config.MODEL_FILENAME and model_file.parent.parent == config.runs_dir().resolve():
        return f"run {model_file.parent.name}"
    return str(model_file)


def _prediction_line(result) -> str:
    """FILE, answer, then the confidence or, for 'not sure' and 'not a cat or dog', the best guess with its own
    percentage ('if it were a pet: cat, 90.4%'), then P: tab-separated."""
    from catdog.verdicts import best_guess, percent, probability, verdict

    guess = best_guess(result)
    shown = f"({guess})" if guess else percent(result.confidence)
    return f"{result.file}\t{verdict(result)}\t{shown}\t(p_dog{probability(result.p_dog, 4, space=False)})"


def _unique_stem(source: str, used: set[str]) -> str:
    """The file's stem, with -2, -3... when two inputs (a/cat.jpg, b/cat.png) share one."""
    base = os.path.splitext(os.path.basename(source))[0] or "image"
    stem, n = base, 1
    while stem in used:
        n += 1
        stem = f"{base}-{n}"
    used.add(stem)
    return stem


def cmd_evaluate(args, out) -> int:
    from catdog.evaluate import check_threshold, evaluate, evaluate_not_pets
    from catdog.predict import Predictor

    if not args.data and not args.not_pets:
        raise CatdogError("give --data (a labelled folder of cats and dogs), --not-pets (a folder of other photos), or both")
    check_threshold(args.threshold)  # before the model loads
    predictor = Predictor.load(args.model, precision=args.precision, backend=args.backend)
    not_pets = evaluate_not_pets(predictor, args.not_pets) if args.not_pets else None
    if not args.data:
        return _print_not_pets(not_pets, predictor, args.json, out)
    report = evaluate(predictor, args.data, threshold=args.threshold)
    summary = {**report.summary(), "backend": predictor.backend, **({"not_pets": not_pets} if not_pets else {})}
    if report.model:  # lets catdog.catalog tell an evaluation.json from an older model's
        from catdog.hashing import cached_file_sha256

        summary["model_sha256"] = cached_file_sha256(report.model)
    if args.json:  # machine-readable: exactly one JSON document on stdout
        print(json.dumps(_finite(summary), allow_nan=False), file=out)
        return 0
    names = report.class_names
    (tn, fp), (fn, tp) = report.confusion
    print(f"model: {report.model} (on {predictor.backend})", file=out)
    print(f"data: {report.data}\nimages: {report.n} (skipped {len(report.skipped)})", file=out)
    print(
        f"accuracy {report.accuracy:.4f}  precision {report.precision:.4f}  recall {report.recall:.4f}  "
        f"f1 {report.f1:.4f}  log loss {report.log_loss:.4f}",
        file=out,
    )
    cal = summary["calibration"]
    if cal["ece"] is not None:
        print(
            f"calibration (temperature {cal['temperature']:.3f}): ECE {cal['ece']:.4f} (uncalibrated {cal['ece_uncalibrated']:.4f}), "
            f"log loss {report.log_loss:.4f} (uncalibrated {cal['log_loss_uncalibrated']:.4f})",
            file=out,
        )
    print(f"confusion (rows true, columns predicted: {names[0]}, {names[1]}):", file=out)
    print(f"  {names[0]:>6}: {tn:6d} {fp:6d}\n  {names[1]:>6}: {fn:6d} {tp:6d}", file=out)
    wrong = summary["misclassified"]
    print(
        f"misclassified: {len(wrong)}"
        + (f" (the {_SHOW_WRONG} most confident shown; --json lists all)" if len(wrong) > _SHOW_WRONG else ""),
        file=out,
    )
    for row in wrong[:_SHOW_WRONG]:
        print(f"  {row['file']}\ttrue {row['true']}\tpredicted {row['predicted']}\tp_dog={row['p_dog']:.4f}", file=out)
    for f, e in report.skipped:
        print(f"  skipped {f}: {e}", file=out)
    wrongly = summary["not_pet_wrongly_flagged"]
    if wrongly is not None:
        print(f"not a cat or dog: {wrongly['flagged']:,} of these {wrongly['n']:,} pet photos wrongly flagged "
              f"({wrongly['share']:.1%})", file=out)
    else:
        print("not a cat or dog: this model has no open-set check (fit one with `catdog openset fit`)", file=out)
    if not_pets:
        _print_not_pets(not_pets, predictor, False, out)
    return 0


def _print_not_pets(result: dict, predictor, as_json: bool, out) -> int:
    if as_json:
        print(json.dumps({"not_pets": result, "model": predictor.source, "backend": predictor.backend}), file=out)
        return 0
    print(f"not-pets: {result['data']}: {result['flagged']:,} of {result['n']:,} photos flagged 'not a cat or dog' "
          f"({result['share']:.1%}; model {predictor.source}, on {predictor.backend})", file=out)
    missed, unsure = result["missed"], result.get("not_sure", [])
    print(f"  answered {' or '.join(predictor.class_names)}: {len(missed):,} · answered not sure: {len(unsure):,}", file=out)
    for row in missed[:_SHOW_WRONG]:
        print(f"  missed {row['file']}\tanswered {row['label']}\tscore {row['score']:.2f}", file=out)
    for row in unsure[:_SHOW_WRONG]:
        print(f"  not sure {row['file']}\tbest guess {row['label']}\tscore {row['score']:.2f}", file=out)
    return 0


def cmd_openset(args, out) -> int:
    from catdog.openset import fit_for_model

    log = lambda m: print(m, file=sys.stderr if args.json else out, flush=True)  # noqa: E731
    check, path = fit_for_model(args.model, args.data, args.negatives, args.flag_rate, log=log)
    if (path.parent / "model.onnx").exists() and path.name == "openset.npz":  # its graph computes the score: rewrite it now
        from catdog.onnx_runtime import write_onnx

        write_onnx(path.parent, logger=log)
    if args.json:
        print(json.dumps({"openset": str(path), **check.summary()}), file=out)
    return 0


_SHOW_WRONG = 20


def _finite(value):
    """`value` with NaN and infinities as None, so the JSON printed is standard (no bare NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def cmd_runs(args, out) -> int:
    from catdog.model_files import default_model, model_file
    from catdog.runs import list_runs, number

    default = default_model()
    active = model_file(default) if default is not None else None
    rows = []
    for run in list_runs(args.runs_dir):
        summary = run.summary()
        n_val = number(summary["config"].get("n_validation"))
        rows.append(
            {
                "id": summary["id"],
                "preset": summary["preset"],
                "state": summary["state"],
                "epochs": summary["epochs_done"],
                "val_accuracy": summary["val_accuracy"],  # the saved model's
                "n_validation": int(n_val) if n_val else None,
                "best_val_accuracy": summary["best_val_accuracy"],
                "active": active is not None and run.model_path.resolve() == active,
                "path": summary["path"],
            }
        )
    for row in rows:
        if args.json:
            print(json.dumps(row), file=out)
        else:
            mark = "*" if row["active"] else " "
            acc = val_accuracy_words(row["val_accuracy"], row["n_validation"])
            print(f"{mark} {row['id']:<40}{row['preset'] or '-':<14}{row['state']:<10}{row['epochs']:>4} epochs  {acc}", file=out)
    if not args.json:
        if not rows:
            print("no runs yet; start one with `catdog train --data DIR`", file=out)
        elif any(row["active"] for row in rows):
            print("* the active model: predict, evaluate and the app use it (`catdog use RUN` picks another)", file=out)
        elif active is not None:
            print(f"predict, evaluate and the app use {_model_name(active)} (`catdog use RUN` picks one of these)", file=out)
        print(f"runs folder: {Path(args.runs_dir).resolve() if args.runs_dir else config.runs_dir()} "
              f"(CATDOG_HOME {config.home()})", file=out)
    return 0


def val_accuracy_words(value: float | None, n: int | None) -> str:
    """'validation: 97.0% of 168 photos right' (or '100% of 16 photos'): the share with the count it is of,
    so a perfect score on a handful of photos does not read as a perfect model."""
    if value is None:
        return "validation: -"
    share = "100%" if value >= 1.0 else f"{min(value, 0.999):.1%}"
    return f"validation: {share} of {n:,} photos right" if n else f"validation: {share} right"


def cmd_report(args, out) -> int:
    from catdog.report import write_report
    from catdog.runs import open_run

    run = open_run(args.run)
    target = write_report(run, args.out or run.path / "report.html", data=args.data, evaluate_model=not args.no_eval,
                          log=lambda line: print(line, file=sys.stderr), overwrite=args.overwrite, not_pets=args.not_pets)
    print(target, file=out)
    return 0


# What `catdog stop` says of a run that has nothing left to stop.
_ENDED = {"finished": "has already finished", "stopped": "was already stopped", "failed": "has already ended (failed)"}


def cmd_stop(args, out) -> int:
    from catdog.runs import open_run, read_lock

    run = open_run(args.run)
    state = run.status().get("state")
    holder = read_lock(run.path.parent) or {}
    held = holder.get("run")
    resuming = bool(held) and Path(str(held)).resolve() == run.path  # a resume starting: its status is still the last attempt's
    if state in _ENDED and not resuming:
        print(f"run {run.id} {_ENDED[state]}; nothing to stop", file=out)  # and no STOP file, which a resume would have to clear
        return 0
    run.request_stop()
    print(f"stop requested for {run.path}", file=out)
    return 0


def cmd_use(args, out) -> int:
    from catdog.errors import RunError
    from catdog.predict import Predictor, resolve_model, set_active_model

    model_file, _ = resolve_model(args.run)
    try:  # a model that does not load would break every later `catdog predict`: it is never made active
        Predictor.load(model_file, precision="float32", backend="tensorflow")
    except RunError as exc:
        raise RunError(f"{exc}; the active model is unchanged") from exc
    set_active_model(model_file)
    print(f"active model: {model_file}", file=out)
    return 0


def cmd_export(args, out) -> int:
    from catdog.export import export_model, sidecar_path

    if args.quantize:
        return _export_quantized(args, out)
    path = export_model(args.run, args.format, args.out, overwrite=args.overwrite)
    print(f"{path}\n{sidecar_path(path)}", file=out)
    return 0


def _export_quantized(args, out) -> int:
    from catdog.export import sidecar_path
    from catdog.quantize import export_int8

    if args.format != "onnx":
        raise ValueError(f"--quantize {args.quantize} needs --format onnx, got --format {args.format!r}")
    if not args.calibration_data:
        raise ValueError("--quantize int8 needs --calibration-data DIR (training photos, not the validation ones)")
    path, report = export_int8(args.run, args.out, args.calibration_data, args.check_data, args.calibration_images)
    print(f"{path}\n{sidecar_path(path)}", file=out)
    if report is not None:
        print(
            f"int8 check on {report.n} photos: accuracy {report.accuracy_float32:.4f} (float32) -> {report.accuracy_int8:.4f} (int8), "
            f"change {report.change_points:+.2f} points; {report.flipped} labels flipped; largest P change {report.max_abs_diff:.4f}",
            file=out,
        )
    return 0


def cmd_download(args, out) -> int:
    from catdog.kaggle import download

    path = download(dataset=args.dataset or args.slug, competition=args.competition, dest=args.dest, log=out)
    print(f"dataset ready: {path}", file=out)
    return 0


def cmd_data(args, out) -> int:
    from catdog.inspect import format_report, inspect_dataset, quarantine

    if args.data_command == "pair":
        from catdog.sources import pair_by_name

        path = pair_by_name(args.dir, tuple(args.classes), args.train_per_class, args.dest, args.seed)
        print(f"dataset ready: {path} (train/ and test/, {args.train_per_class} training photos per class; "
              "the Train page suggests it)", file=out)
        return 0

    report = inspect_dataset(args.dir)
    moved = quarantine(report) if args.quarantine else []
    if args.json:
        print(json.dumps({**report.to_dict(), "quarantined": [str(p) for p in moved]}), file=out)
    else:
        print(format_report(report), file=out)
        if args.quarantine:
            print(f"quarantined {len(moved)} files", file=out)
    return 0


COMMANDS = {
    "data": cmd_data,
    "download": cmd_download,
    "export": cmd_export,
    "models": cmd_models,
    "train": cmd_train,
    "predict": cmd_predict,
    "evaluate": cmd_evaluate,
    "openset": cmd_openset,
    "report": cmd_report,
    "runs": cmd_runs,
    "stop": cmd_stop,
    "use": cmd_use,
}


def main_entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
