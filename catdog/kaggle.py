"""Kaggle download with the real `kaggle` package, and where its credentials come from.

The client is injected (`client=`) so tests run against a fake; by default the real
`kaggle.api.KaggleApi` is imported lazily, with its output captured, because importing
`kaggle` authenticates at once and prints help or exits when there are no credentials.
The key is never printed, logged or put in an error message.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import IO, Any, Mapping

from catdog import config
from catdog.archive import ArchiveError, extract_zip
from catdog.atomic import atomic_write_json
from catdog.errors import CatdogError

DEFAULT_DATASET = "salader/dogs-vs-cats"
COMPLETE_MARKER = ".catdog-complete"
TOKEN_URL = "https://www.kaggle.com/settings/api"
_FLAT = re.compile(r"^(cat|dog)\.\d+\.(jpe?g|png)$", re.IGNORECASE)


class KaggleError(CatdogError):
    """A Kaggle download failed; the message says what to do."""


class KaggleCredentialsError(KaggleError):
    """No Kaggle credentials were found."""


class KaggleAuthError(KaggleError):
    """Kaggle rejected the credentials (HTTP 401)."""


class KaggleForbiddenError(KaggleError):
    """HTTP 403: competition rules not accepted, or a private dataset."""


class KaggleNotFoundError(KaggleError):
    """HTTP 404: no such dataset or competition."""


class KaggleNetworkError(KaggleError):
    """Kaggle could not be reached."""


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder `kaggle` reads kaggle.json from (KAGGLE_CONFIG_DIR, ~/.kaggle, or ~/.config/kaggle)."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"]).expanduser()
    legacy = Path(env.get("HOME") or Path.home()).expanduser() / ".kaggle"
    if legacy.exists():
        return legacy
    xdg = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()).expanduser() / ".config")
    return Path(xdg) / "kaggle"


def credential_source(env: Mapping[str, str] | None = None) -> str | None:
    """Describe where credentials would come from (never the key itself), or None."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN environment variable"
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME and KAGGLE_KEY environment variables"
    folder = config_dir(env)
    if (folder / "access_token").is_file():
        return str(folder / "access_token")
    if (folder / "kaggle.json").is_file():
        return str(folder / "kaggle.json")
    return None


def save_kaggle_json(content: bytes, folder: str | os.PathLike | None = None) -> Path:
    """Store an uploaded kaggle.json with mode 600 and return its path.

    Raises:
        KaggleCredentialsError: the content is not a kaggle.json ({"username": ..., "key": ...}).
    """
    try:
        values = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, dict) or not values.get("username") or not values.get("key"):
        raise KaggleCredentialsError(
            f"that file is not a kaggle.json with a username and a key; download a new one from {TOKEN_URL}"
        )
    folder = Path(folder) if folder else config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "kaggle.json"
    atomic_write_json(path, {"username": str(values["username"]), "key": str(values["key"])}, mode=0o600)
    return path


def _no_credentials() -> KaggleCredentialsError:
    return KaggleCredentialsError(
        "no Kaggle credentials found; create an API token at "
        f"{TOKEN_URL} and either upload kaggle.json on the Data page, save it as "
        f"{config_dir() / 'kaggle.json'} (chmod 600), or set KAGGLE_API_TOKEN "
        "(or KAGGLE_USERNAME and KAGGLE_KEY)"
    )


def _check_kaggle_json(path: Path) -> None:
    """Refuse a kaggle.json that is there but unusable, saying so (not "no credentials")."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KaggleCredentialsError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except ValueError:
        raise KaggleCredentialsError(f"{str(path)!r} is not valid JSON; download a new token from {TOKEN_URL}") from None
    if not isinstance(values, dict) or not values.get("username") or not values.get("key"):
        raise KaggleCredentialsError(f"{str(path)!r} has no username and key; download a new token from {TOKEN_URL}")


def credential_warnings(env: Mapping[str, str] | None = None) -> list[str]:
    """Problems with credentials that still work, e.g. a kaggle.json other users can read."""
    source = credential_source(env)
    if not source or not source.endswith("kaggle.json"):
        return []
    try:
        mode = Path(source).stat().st_mode & 0o777
    except OSError:
        return []
    if mode & 0o077:
        return [f"{source} can be read by other users (mode {mode:o}); protect your key with `chmod 600 {source}`"]
    return []


def real_client() -> Any:
    """An authenticated `kaggle` API client; imported here, never at module import.

    Raises:
        KaggleCredentialsError: no credentials (kaggle would print help and exit).
    """
    source = credential_source()
    if source is None:
        raise _no_credentials()
    if source.endswith("kaggle.json"):
        _check_kaggle_json(Path(source))
    sink = io.StringIO()  # kaggle prints auth help on import; keep it (and anything secret) off our output
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except SystemExit:
        raise _no_credentials() from None
    except Exception as exc:  # noqa: BLE001 - kaggle raises many types while reading config
        raise KaggleCredentialsError(f"could not read the Kaggle credentials ({type(exc).__name__}); "
                                     f"download a new token from {TOKEN_URL}") from None
    return api


def default_dest(name: str) -> Path:
    """CATDOG_HOME/datasets/<the slug's last part>."""
    return config.datasets_dir() / name.rstrip("/").split("/")[-1]


def is_complete(dest: str | os.PathLike) -> bool:
    """True when `dest` holds a finished download (the marker is written last)."""
    return (Path(dest) / COMPLETE_MARKER).is_file()


def download(
    dataset: str | None = None, competition: str | None = None, dest: str | os.PathLike | None = None,
    client: Any = None, log: IO[str] | None = None,
) -> Path:
    """Download a Kaggle dataset or competition into DEST/train/{cats,dogs} (+ DEST/test/...).

    Args:
        dataset: owner/dataset slug (default salader/dogs-vs-cats).
        competition: a competition name instead (e.g. dogs-vs-cats).
        dest: target folder (default CATDOG_HOME/datasets/<name>).
        client: an object with kaggle's `dataset_download_files` / `competition_download_files`
            (default: the real, authenticated client).
        log: where progress lines go.

    Raises:
        KaggleError: a subclass per failure, each saying what to do.
    """
    name = competition or dataset or DEFAULT_DATASET
    if not competition and "/" not in name:
        raise KaggleNotFoundError(f"dataset {name!r} is not an owner/dataset slug; for a competition use --competition {name}")
    dest = Path(dest) if dest else default_dest(name)
    if is_complete(dest):
        _say(log, f"{dest} is already downloaded")
        return dest
    if dest.exists() and any(dest.iterdir()):
        raise KaggleError(f"{str(dest)!r} exists but is not a finished download; remove it or choose another --dest")
    work = dest.parent / f".{dest.name}.download"  # kept between tries, so a finished zip is not fetched again
    work.mkdir(parents=True, exist_ok=True)
    if not list(work.glob("*.zip")):
        try:
            client = client or real_client()
            for warning in credential_warnings():
                _say(log, f"warning: {warning}")
            _say(log, f"downloading {'competition ' if competition else ''}{name} ...")
            _fetch(client, name, bool(competition), work)
        except BaseException:
            if not list(work.glob("*.zip")):  # nothing fetched to resume from: leave no trace
                shutil.rmtree(work, ignore_errors=True)
            raise
    _assemble(work, dest, log)
    shutil.rmtree(work, ignore_errors=True)
    return dest


def _fetch(client: Any, name: str, is_competition: bool, work: Path) -> None:
    partial = work / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        if is_competition:
            client.competition_download_files(name, path=str(partial), quiet=True)
        else:
            client.dataset_download_files(name, path=str(partial), quiet=True, unzip=False)
    except SystemExit:
        raise _no_credentials() from None
    except Exception as exc:  # noqa: BLE001 - requests/urllib3/kaggle errors are translated below
        raise _translate(exc, name, is_competition) from None
    zips = list(partial.glob("*.zip"))
    if not zips:
        raise KaggleError(f"Kaggle sent no zip file for {name!r}; try again")
    for z in zips:  # only a whole file leaves the partial folder
        os.replace(z, work / z.name)
    shutil.rmtree(partial, ignore_errors=True)


def _translate(exc: BaseException, name: str, is_competition: bool) -> KaggleError:
    status = getattr(getattr(exc, "response", None), "status_code", None) or getattr(exc, "status", None)
    what = f"competition {name!r}" if is_competition else f"dataset {name!r}"
    if status == 401:
        return KaggleAuthError(f"Kaggle rejected the credentials (401); create a new API token at {TOKEN_URL} and replace the old one")
    if status == 403:
        if is_competition:
            return KaggleForbiddenError(
                f"Kaggle refused {what} (403): accept the competition rules at "
                f"https://www.kaggle.com/competitions/{name}/rules with the same account, then retry")
        return KaggleForbiddenError(f"Kaggle refused {what} (403); it may be private; check you can open it on kaggle.com")
    if status == 404:
        return KaggleNotFoundError(f"{what} was not found on Kaggle (404); check the spelling (owner/dataset for datasets)")
    if _is_network(exc):
        return KaggleNetworkError(f"cannot reach Kaggle ({type(exc).__name__}); check the internet connection or proxy, then retry")
    return KaggleError(f"download of {what} failed ({type(exc).__name__}, HTTP {status or 'n/a'}); retry, it resumes")


def _is_network(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "TimeoutError",
                         "NewConnectionError", "MaxRetryError", "ProtocolError", "socket.gaierror", "gaierror"})


def _assemble(work: Path, dest: Path, log: IO[str] | None) -> None:
    raw = work / "extracted"
    shutil.rmtree(raw, ignore_errors=True)
    shutil.rmtree(work / "staging", ignore_errors=True)
    try:
        for z in sorted(work.glob("*.zip")):
            _say(log, f"extracting {z.name} ...")
            _extract_nested(z, raw / z.stem)
    except ArchiveError:
        for z in work.glob("*.zip"):  # a broken download must be fetched again
            z.unlink()
        raise
    staging = work / "staging"
    _normalise(raw, staging)
    (staging / COMPLETE_MARKER).write_text(json.dumps({"source": sorted(z.name for z in work.glob("*.zip"))}))
    if dest.exists():
        dest.rmdir()  # empty (checked in download)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    _say(log, f"ready: {dest}")


def _extract_nested(zip_path: Path, target: Path) -> None:
    """Extract a zip, then the zips inside it (the competition ships train.zip in a zip)."""
    extract_zip(zip_path, target)
    for inner in sorted(target.rglob("*.zip")):
        extract_zip(inner, inner.with_suffix(""))
        inner.unlink()


def _normalise(raw: Path, staging: Path) -> None:
    """Move the images into staging/train/{cats,dogs} and staging/test/{cats,dogs}."""
    for part, aliases in (("train", ("train", "training_set", "training")), ("test", ("test", "test_set", "validation"))):
        found = _find_split_dir(raw, aliases)
        if found is not None:
            for cls in ("cats", "dogs"):
                src = next(d for d in found.iterdir() if d.is_dir() and d.name.lower() in (cls, cls[:-1]))
                (staging / part).mkdir(parents=True, exist_ok=True)
                os.replace(src, staging / part / cls)
    if (staging / "train").is_dir():
        return
    flat = [p for p in raw.rglob("*") if p.is_file() and _FLAT.match(p.name)]
    if not flat:
        raise KaggleError("the download has neither train/cats + train/dogs folders nor cat.N.jpg files; "
                          "catdog cannot use this dataset's layout")
    for p in flat:
        target = staging / "train" / ("cats" if p.name.lower().startswith("cat") else "dogs") / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(p, target)


def _find_split_dir(raw: Path, aliases: tuple[str, ...]) -> Path | None:
    for d in sorted(raw.rglob("*"), key=lambda p: len(p.parts)):
        if d.is_dir() and d.name.lower() in aliases:
            kids = {k.name.lower() for k in d.iterdir() if k.is_dir()}
            if kids & {"cats", "cat"} and kids & {"dogs", "dog"}:
                return d
    return None


def _say(log: IO[str] | None, line: str) -> None:
    if log is not None:
        print(line, file=log)
