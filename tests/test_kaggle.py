"""Kaggle download against a fake client: layouts, credential sources, failures, retry, no key leaks."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile

import pytest
import requests

from catdog import kaggle
from catdog.cli import main
from tests.fixtures import image_bytes

FAKE_KEY = "f4k3k3y0123456789abcdef0123456789"
JPG = image_bytes(size=(16, 16))


@pytest.fixture(autouse=True)
def _own_home(tmp_path, monkeypatch):
    """Datasets and the active choice go to this test's CATDOG_HOME, not the session's (the Train page tests read it)."""
    monkeypatch.setenv("CATDOG_HOME", str(tmp_path / "home"))


def _salader_zip(path, top=""):
    with zipfile.ZipFile(path, "w") as zf:
        for part in ("train", "test"):
            for cls in ("cats", "dogs"):
                for i in range(2):
                    zf.writestr(f"{top}{part}/{cls}/{cls[:3]}.{i}.jpg", JPG)


def _competition_zip(path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        for i in range(3):
            zf.writestr(f"train/cat.{i}.jpg", JPG)
            zf.writestr(f"train/dog.{i}.jpg", JPG)
    test1 = io.BytesIO()
    with zipfile.ZipFile(test1, "w") as zf:
        zf.writestr("test1/1.jpg", JPG)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train.zip", inner.getvalue())
        zf.writestr("test1.zip", test1.getvalue())
        zf.writestr("sampleSubmission.csv", "id,label\n")


class FakeClient:
    """Has the two methods catdog calls on kaggle's KaggleApi; writes a zip or raises."""

    def __init__(self, make_zip=None, error=None):
        self.make_zip, self.error, self.calls = make_zip, error, []

    def dataset_download_files(self, dataset, path=None, quiet=True, unzip=False, **_):
        return self._download(dataset, path)

    def competition_download_files(self, competition, path=None, quiet=True, **_):
        return self._download(competition, path)

    def _download(self, name, path):
        self.calls.append(name)
        if self.error is not None:
            raise self.error
        self.make_zip(os.path.join(path, name.split("/")[-1] + ".zip"))


def _http_error(status):
    response = requests.Response()
    response.status_code = status
    response.url = f"https://www.kaggle.com/api/v1/x?key={FAKE_KEY}"
    return requests.HTTPError(f"{status} Client Error for url {response.url}", response=response)


@pytest.mark.parametrize("top", ["", "dogs-vs-cats/"])
def test_salader_layout_is_normalised_to_train_and_test_class_folders(tmp_path, top):
    dest = kaggle.download("salader/dogs-vs-cats", dest=tmp_path / "ds", client=FakeClient(lambda p: _salader_zip(p, top)))
    for part in ("train", "test"):
        assert sorted(f.name for f in (dest / part / "cats").iterdir()) == ["cat.0.jpg", "cat.1.jpg"]
        assert len(list((dest / part / "dogs").iterdir())) == 2
    assert kaggle.is_complete(dest)
    assert not (tmp_path / ".ds.download").exists()


def test_competition_flat_layout_becomes_class_folders(tmp_path):
    client = FakeClient(_competition_zip)
    dest = kaggle.download(competition="dogs-vs-cats", dest=tmp_path / "ds", client=client)
    assert client.calls == ["dogs-vs-cats"]
    assert sorted(f.name for f in (dest / "train/cats").iterdir()) == ["cat.0.jpg", "cat.1.jpg", "cat.2.jpg"]
    assert len(list((dest / "train/dogs").iterdir())) == 3
    assert not (dest / "test").exists()


def test_any_slug_with_flat_layout_works_and_default_dest_is_under_catdog_home(tmp_path):
    def flat(path):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("images/cat.1.jpg", JPG)
            zf.writestr("images/dog.1.jpg", JPG)
    dest = kaggle.download("someone/pets", client=FakeClient(flat))
    assert dest == kaggle.default_dest("someone/pets") and dest.name == "pets"
    assert (dest / "train/cats/cat.1.jpg").exists()


def test_unknown_layout_gives_clear_error_and_nothing_complete(tmp_path):
    def other(path):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("readme.txt", "hi")
    with pytest.raises(kaggle.KaggleError, match="layout"):
        kaggle.download("a/b", dest=tmp_path / "ds", client=FakeClient(other))
    assert not kaggle.is_complete(tmp_path / "ds")


def test_second_call_reuses_a_finished_download(tmp_path):
    client = FakeClient(_salader_zip)
    kaggle.download("a/b", dest=tmp_path / "ds", client=client)
    kaggle.download("a/b", dest=tmp_path / "ds", client=client)
    assert client.calls == ["a/b"]


def test_interrupted_download_leaves_nothing_complete_and_retry_works(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        kaggle.download("a/b", dest=tmp_path / "ds", client=FakeClient(error=KeyboardInterrupt()))
    assert not (tmp_path / "ds").exists()
    dest = kaggle.download("a/b", dest=tmp_path / "ds", client=FakeClient(_salader_zip))
    assert kaggle.is_complete(dest)


def test_corrupt_zip_is_discarded_so_a_retry_fetches_again(tmp_path):
    bad = FakeClient(lambda p: open(p, "wb").write(b"PK\x03\x04 truncated"))
    with pytest.raises(kaggle.ArchiveError):
        kaggle.download("a/b", dest=tmp_path / "ds", client=bad)
    assert not (tmp_path / "ds").exists()
    good = FakeClient(_salader_zip)
    kaggle.download("a/b", dest=tmp_path / "ds", client=good)
    assert good.calls == ["a/b"]


@pytest.mark.parametrize("error, cls, hint", [
    (_http_error(401), kaggle.KaggleAuthError, "new API token"),
    (_http_error(404), kaggle.KaggleNotFoundError, "not found"),
    (requests.ConnectionError("Max retries exceeded"), kaggle.KaggleNetworkError, "internet connection"),
    (requests.Timeout("read timed out"), kaggle.KaggleNetworkError, "cannot reach Kaggle"),
    (SystemExit(1), kaggle.KaggleCredentialsError, "no Kaggle credentials"),
])
def test_each_failure_has_its_own_message(tmp_path, error, cls, hint):
    with pytest.raises(cls, match=hint) as info:
        kaggle.download("a/b", dest=tmp_path / "ds", client=FakeClient(error=error))
    assert FAKE_KEY not in str(info.value)


def test_competition_403_says_accept_the_rules(tmp_path):
    with pytest.raises(kaggle.KaggleForbiddenError, match="accept the competition rules.*dogs-vs-cats/rules"):
        kaggle.download(competition="dogs-vs-cats", dest=tmp_path / "ds", client=FakeClient(error=_http_error(403)))


def _clean_env(tmp_path, **extra):
    env = {"HOME": str(tmp_path / "home")}
    env.update(extra)
    return env


def test_credential_sources_are_each_recognised(tmp_path):
    assert kaggle.credential_source(_clean_env(tmp_path)) is None
    assert "KAGGLE_API_TOKEN" in kaggle.credential_source(_clean_env(tmp_path, KAGGLE_API_TOKEN="t"))
    assert "KAGGLE_KEY" in kaggle.credential_source(_clean_env(tmp_path, KAGGLE_USERNAME="u", KAGGLE_KEY=FAKE_KEY))
    assert kaggle.credential_source(_clean_env(tmp_path, KAGGLE_USERNAME="u")) is None
    legacy = tmp_path / "home/.kaggle"
    legacy.mkdir(parents=True)
    (legacy / "kaggle.json").write_text("{}")
    assert kaggle.credential_source(_clean_env(tmp_path)) == str(legacy / "kaggle.json")
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "kaggle.json").write_text("{}")
    assert kaggle.credential_source(_clean_env(tmp_path, KAGGLE_CONFIG_DIR=str(cfg))) == str(cfg / "kaggle.json")


def test_saved_kaggle_json_has_mode_600_and_bad_json_is_refused(tmp_path):
    path = kaggle.save_kaggle_json(json.dumps({"username": "u", "key": FAKE_KEY}).encode(), tmp_path / "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["key"] == FAKE_KEY
    with pytest.raises(kaggle.KaggleCredentialsError, match="not a kaggle.json") as info:
        kaggle.save_kaggle_json(b'{"username": "u"}', tmp_path / "k")
    assert FAKE_KEY not in str(info.value)


def test_real_client_without_credentials_is_a_clear_error(tmp_path, monkeypatch):
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "empty"))
    with pytest.raises(kaggle.KaggleCredentialsError, match="no Kaggle credentials"):
        kaggle.real_client()


def test_cli_download_never_prints_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", FAKE_KEY)
    monkeypatch.setattr(kaggle, "real_client", lambda: FakeClient(error=_http_error(401)))
    out, err = io.StringIO(), io.StringIO()
    assert main(["download", "--dataset", "a/b", "--dest", str(tmp_path / "ds")], out=out, err=err) == 2
    assert "error: Kaggle rejected the credentials (401)" in err.getvalue()
    captured = capsys.readouterr()
    everything = out.getvalue() + err.getvalue() + captured.out + captured.err
    everything += "".join(p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())
    assert FAKE_KEY not in everything


def test_cli_download_competition_into_dest(tmp_path, monkeypatch):
    monkeypatch.setattr(kaggle, "real_client", lambda: FakeClient(_competition_zip))
    out = io.StringIO()
    assert main(["download", "--competition", "dogs-vs-cats", "--dest", str(tmp_path / "ds")], out=out) == 0
    assert f"dataset ready: {tmp_path / 'ds'}" in out.getvalue()
