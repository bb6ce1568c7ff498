"""The SQLite response cache: round trips, vectors, sharing, concurrency, broken files."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading

import numpy as np

from synaray.lm.cache import ResponseCache, cache_key, default_cache_dir, resolve_cache


def test_round_trip(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    key = cache_key({"model": "m", "messages": []})
    assert cache.get(key) is None
    cache.set(key, {"text": "héllo", "json": {"a": [1, 2]}})
    assert cache.get(key) == {"text": "héllo", "json": {"a": [1, 2]}}
    assert len(cache) == 1
    cache.clear()
    assert cache.get(key) is None


def test_key_is_canonical():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_uses_wal_journal(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.set("k", {})
    assert cache._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_vectors_round_trip_exactly(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    vectors = {f"k{i}": np.random.default_rng(i).normal(size=5) for i in range(3)}
    cache.set_vectors(vectors)
    found = cache.get_vectors(["k0", "k2", "missing"])
    assert set(found) == {"k0", "k2"}
    np.testing.assert_array_equal(found["k2"], vectors["k2"])


async def test_async_access(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    await asyncio.gather(*(cache.aset(f"k{i}", {"i": i}) for i in range(20)))
    values = await asyncio.gather(*(cache.aget(f"k{i}") for i in range(20)))
    assert [v["i"] for v in values] == list(range(20))


def test_threads_write_concurrently(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    def work(t: int) -> None:
        for i in range(50):
            cache.set(f"{t}-{i}", {"t": t, "i": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) == 200


def _write_many(path: str, worker: int) -> None:
    cache = ResponseCache(path)
    for i in range(100):
        cache.set(f"{worker}-{i}", {"worker": worker, "i": i})
        cache.get(f"{worker}-{i // 2}")


def test_processes_write_concurrently(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_write_many, args=(path, w)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
    assert [p.exitcode for p in workers] == [0, 0, 0]
    cache = ResponseCache(path)
    assert len(cache) == 300
    assert cache.get("2-99") == {"worker": 2, "i": 99}


def test_unusable_file_behaves_as_an_empty_cache(tmp_path, caplog):
    (tmp_path / "dir.sqlite").mkdir()  # a directory where the file should be
    cache = ResponseCache(tmp_path / "dir.sqlite")
    cache.set("k", {"v": 1})
    assert cache.get("k") is None
    assert cache.get_vectors(["k"]) == {}
    assert "unusable" in caplog.text


def test_resolve_cache(tmp_path):
    assert resolve_cache(False) is None and resolve_cache(None) is None
    default = resolve_cache(True)
    assert default.path == default_cache_dir() / "lm_cache.sqlite"
    assert str(default_cache_dir()) == os.environ["SYNARAY_CACHE_DIR"]
    path = str(tmp_path / "x.sqlite")
    assert resolve_cache(path) is resolve_cache(path)


def test_pickles_as_its_path(tmp_path):
    import pickle

    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.set("k", {"v": 1})
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.get("k") == {"v": 1}
