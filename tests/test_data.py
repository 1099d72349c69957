"""llmscratch.data: every way a corpus gets in (cache, mirror, download) and every way it can be bad.

No network: downloads go to ``file://`` URLs in ``tmp_path``, which urllib opens like any other.
"""

import hashlib
import os
from pathlib import Path

import pytest

from llmscratch import data
from llmscratch.data import DATASETS, DataError, Dataset, fetch, load_text, train_val_test_split

CONTENT = b"emma\nolivia\nava\n"


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """A small registered corpus whose canonical copy is a local file."""
    origin = tmp_path / "origin" / "tiny.txt"
    origin.parent.mkdir()
    origin.write_bytes(CONTENT)
    ds = Dataset("tiny", "tiny.txt", origin.as_uri(), hashlib.sha256(CONTENT).hexdigest(), len(CONTENT))
    monkeypatch.setitem(DATASETS, "tiny", ds)
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    return ds


def test_download_verifies_and_caches(tmp_path, corpus):
    cache = tmp_path / "cache"
    path = fetch("tiny", cache=cache)
    assert path == cache / "tiny.txt" and path.read_bytes() == CONTENT
    assert load_text("tiny", cache=cache) == CONTENT.decode()
    assert not list(cache.glob(".*.part"))  # no temporary file left behind


def test_cache_is_used_before_anything_else(tmp_path, corpus):
    cache = tmp_path / "cache"
    fetch("tiny", cache=cache)
    Path(corpus.url.removeprefix("file://")).unlink()  # the origin is gone; the cache must serve
    assert load_text("tiny", cache=cache) == CONTENT.decode()


def test_corrupt_cache_is_an_error_naming_the_file(tmp_path, corpus):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "tiny.txt").write_bytes(CONTENT.replace(b"emma", b"EMMA"))
    with pytest.raises(DataError, match=r"tiny\.txt.*different.*Delete it"):
        load_text("tiny", cache=cache)


def test_truncated_cache_says_truncated(tmp_path, corpus):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "tiny.txt").write_bytes(CONTENT[:5])
    with pytest.raises(DataError, match="truncated"):
        load_text("tiny", cache=cache)


def test_mirror_is_copied_into_the_cache(tmp_path, corpus, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.txt").write_bytes(CONTENT)
    Path(corpus.url.removeprefix("file://")).unlink()  # prove it did not download
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    cache = tmp_path / "cache"
    assert load_text("tiny", cache=cache) == CONTENT.decode()
    assert (cache / "tiny.txt").read_bytes() == CONTENT


def test_corrupt_mirror_is_an_error_and_is_not_cached(tmp_path, corpus):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "tiny.txt").write_bytes(CONTENT[:-3])
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"mirror.*tiny\.txt.*truncated|tiny\.txt is truncated.*mirror"):
        fetch("tiny", cache=cache, mirror=mirror)
    assert not (cache / "tiny.txt").exists()


def test_missing_mirror_directory_is_an_error(tmp_path, corpus):
    with pytest.raises(DataError, match="not a directory"):
        fetch("tiny", cache=tmp_path / "cache", mirror=tmp_path / "nowhere")


def test_mirror_without_the_file_falls_back_to_download(tmp_path, corpus):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    assert fetch("tiny", cache=tmp_path / "cache", mirror=mirror).read_bytes() == CONTENT


def test_bad_download_is_never_kept(tmp_path, corpus):
    Path(corpus.url.removeprefix("file://")).write_bytes(b"<html>rate limited</html>")
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="download"):
        fetch("tiny", cache=cache)
    assert not (cache / "tiny.txt").exists()
    assert not list(cache.glob(".*"))


def test_failed_download_explains_the_mirror_variable(tmp_path, corpus):
    Path(corpus.url.removeprefix("file://")).unlink()
    with pytest.raises(DataError, match=data.MIRROR_ENV):
        fetch("tiny", cache=tmp_path / "cache")


def test_unknown_corpus():
    with pytest.raises(DataError, match="unknown corpus 'shakespeare'.*tinyshakespeare"):
        fetch("shakespeare")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path))
    assert data.cache_dir() == tmp_path
    monkeypatch.delenv(data.CACHE_ENV)
    repo = Path(data.__file__).resolve().parents[2]
    assert data.cache_dir() == repo / "data"  # the tests run from a checkout


def test_registry_matches_the_shared_mirror():
    """The checksums in the code are those of the published corpora (when the mirror is here)."""
    sums = Path(__file__).resolve().parents[2] / "shared" / "data" / "SHA256SUMS"
    if not sums.exists():
        pytest.skip("no ../shared/data on this machine")
    published = dict(line.split()[::-1] for line in sums.read_text().splitlines() if line.strip())
    for ds in DATASETS.values():
        assert published[ds.filename] == ds.sha256


def test_split_is_a_seeded_partition():
    items = list(range(1000))
    train, val, test = train_val_test_split(items, seed=7)
    assert (len(train), len(val), len(test)) == (800, 100, 100)
    assert sorted(train + val + test) == items
    assert train_val_test_split(items, seed=7) == (train, val, test)
    assert train_val_test_split(items, seed=8)[0] != train


@pytest.mark.parametrize("fractions", [(0.8, 0.1), (0.5, 0.5, 0.5), (1.2, -0.1, -0.1)])
def test_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        train_val_test_split(list(range(10)), fractions)


def test_real_corpora_load_when_available():
    """The two course corpora, through whatever path this machine has (make data fetched them)."""
    if not (os.environ.get(data.MIRROR_ENV) or (data.cache_dir() / "names.txt").exists()):
        pytest.skip("corpora neither cached nor mirrored here")
    names = load_text("names").split()
    assert len(names) > 32_000 and names[0] == "emma"
    assert len(load_text("tinyshakespeare")) == 1_115_394
