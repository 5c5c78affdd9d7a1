"""The store's contracts, each checked against a value written out here (never one the store computed):
the canonical JSON of ``dumps`` and ``content_key`` (a change there silently invalidates every cache on disk),
the cache's file layout, the error messages naming file, line and field, and the JSONL / parquet writers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel

from nextads_lib import media, store


class Thing(BaseModel):
    name: str
    n: int


class Stamped(BaseModel):
    at: dt.datetime


class Many(BaseModel):
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int
    g: int
    h: int
    i: int
    j: int


class Nested(BaseModel):
    items: list[Thing]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------ canonical JSON
def test_dumps_is_sorted_indented_and_keeps_unicode():
    assert store.dumps({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}'
    assert store.dumps({"b": 1, "a": "é"}, indent=None) == '{"a": "é", "b": 1}'


def test_to_jsonable_turns_models_paths_and_numpy_scalars_into_plain_json():
    out = store.to_jsonable({"m": Stamped(at=dt.datetime(2020, 1, 2, 3, 4, 5)), 7: (np.int64(3), np.float32(1.5)),
                             "p": Path("a") / "b", "l": [Thing(name="x", n=1)]})
    assert out == {"m": {"at": "2020-01-02T03:04:05"}, "7": [3, 1.5], "p": "a/b", "l": [{"name": "x", "n": 1}]}
    assert type(out["7"][0]) is int and type(out["7"][1]) is float


def test_content_key_canonical_form_is_pinned(tmp_path):
    """The key is sha256 of the sorted, non-ASCII-escaped JSON list of the parts; files by their bytes, missing
    paths by their name, bytes by their sha256, models in JSON mode. Written out by hand here."""
    assert store.content_key({"b": 1, "a": "é"}, 2) == sha('[{"a": "é", "b": 1}, 2]')
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    abc = hashlib.sha256(b"abc").hexdigest()
    assert store.content_key(f) == sha(f'[{{"file_sha256": "{abc}"}}]')
    missing = tmp_path / "nothing.mp4"
    assert store.content_key(missing) == sha(f'[{{"path": "{missing.as_posix()}"}}]')
    assert store.content_key(b"abc") == sha(f'[{{"bytes_sha256": "{abc}"}}]')
    assert store.content_key(Stamped(at=dt.datetime(2020, 1, 2))) == sha('[{"at": "2020-01-02T00:00:00"}]')
    assert store.content_key({1: "a"}) == sha('[{"1": "a"}]')


def test_content_key_tells_apart_what_it_should():
    assert store.content_key({"a": 1}) != store.content_key({"b": 1})
    assert store.content_key(b"x") != store.content_key(b"y")
    assert store.content_key(Path("/no/such/a")) != store.content_key(Path("/no/such/b"))
    assert store.content_key(Nested(items=[Thing(name="x", n=1)])) != store.content_key(
        Nested(items=[Thing(name="x", n=2)]))


def test_content_key_of_an_unserialisable_object_uses_its_str():
    class Odd:
        def __str__(self) -> str:
            return "odd-1"

    assert store.content_key(Odd()) == sha('["odd-1"]')


def test_file_digest_is_the_sha256_of_the_bytes_and_not_shared_between_files(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"first!")
    b.write_bytes(b"second")  # same size
    st = a.stat()
    os.utime(b, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime too: only the path tells them apart
    assert store.file_digest(a) == hashlib.sha256(b"first!").hexdigest()
    assert store.file_digest(b) == hashlib.sha256(b"second").hexdigest()
    big = tmp_path / "big.bin"
    data = bytes(range(256)) * 9000  # > 2 MiB: read in several chunks
    big.write_bytes(data)
    assert store.file_digest(big) == hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------- reading
def test_read_json_errors_name_the_file_and_the_place(tmp_path):
    p = tmp_path / "gone.json"
    with pytest.raises(store.ArtifactError, match=r"gone\.json: missing \(was the stage that writes it run\?\)"):
        store.read_json(p)
    p.write_text('{"a": 1,\n "b": }', encoding="utf-8")
    with pytest.raises(store.ArtifactError, match=r"gone\.json: not valid JSON at line 2 column 7"):
        store.read_json(p)


def test_read_json_reads_utf8(tmp_path):
    p = tmp_path / "u.json"
    p.write_bytes('{"t": "Café – ☕"}'.encode("utf-8"))
    assert store.read_json(p) == {"t": "Café – ☕"}


def test_read_jsonl_skips_blank_lines_and_names_the_bad_line(tmp_path):
    p = tmp_path / "rows.jsonl"
    p.write_text('{"name": "é", "n": 1}\n\n{"name": "b", "n": 2}\n', encoding="utf-8")
    assert [(t.name, t.n) for t in store.read_jsonl(p, Thing)] == [("é", 1), ("b", 2)]
    p.write_text('{"name": "a", "n": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(store.ArtifactError, match=r"rows\.jsonl line 2: not valid JSON"):
        store.read_jsonl(p, Thing)
    with pytest.raises(store.ArtifactError, match=r"none\.jsonl: missing"):
        store.read_jsonl(tmp_path / "none.jsonl", Thing)


def test_validation_message_lists_fields_joined_and_capped():
    with pytest.raises(store.ArtifactError) as e:
        store.validate(Thing, 5, "item 3")
    assert str(e.value).startswith("item 3: field '<root>': ")
    with pytest.raises(store.ArtifactError) as e:
        store.validate(Thing, {}, "row 1")
    assert str(e.value) == "row 1: field 'name': Field required; field 'n': Field required"
    with pytest.raises(store.ArtifactError) as e:
        store.validate(Nested, {"items": [{"name": "x"}]}, "f")
    assert "field 'items.0.n'" in str(e.value)
    with pytest.raises(store.ArtifactError) as e:
        store.validate(Many, {}, "f")
    assert str(e.value).count("field '") == 8  # the first eight of ten


# ------------------------------------------------------------------------------------------- writing
def test_write_jsonl_one_compact_sorted_line_per_row(tmp_path):
    p = store.write_jsonl(tmp_path / "r.jsonl", [Thing(name="é", n=1), {"b": 2, "a": 1}])
    assert p == tmp_path / "r.jsonl"
    assert p.read_bytes() == '{"n": 1, "name": "é"}\n{"a": 1, "b": 2}\n'.encode("utf-8")


def test_write_text_is_utf8(tmp_path):
    store.write_text(tmp_path / "t.txt", "naïve ☕")
    assert (tmp_path / "t.txt").read_bytes() == "naïve ☕".encode("utf-8")


def test_parquet_keeps_no_index_and_replace_rows_renumbers(tmp_path):
    import pandas as pd  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    p = tmp_path / "t.parquet"
    store.write_parquet(p, pd.DataFrame({"run": ["a", "b"], "v": [1, 2]}, index=[5, 7]))
    assert pq.read_schema(p).names == ["run", "v"]
    table = store.replace_rows(p, pd.DataFrame({"run": ["c"], "v": [3]}, index=[9]), lambda old: old["run"] == "a")
    assert list(table.index) == [0, 1]
    assert list(table["run"]) == ["b", "c"]
    assert pq.read_schema(p).names == ["run", "v"]


# --------------------------------------------------------------------------------------------- cache
def test_cache_layout_and_suffixes(tmp_path):
    c = store.Cache(tmp_path)
    key = "abcdef" + "0" * 58
    assert c.path("ns", key) == tmp_path / "ns" / "ab" / f"{key}.json"
    assert c.path("ns", key, ".mp4") == tmp_path / "ns" / "ab" / f"{key}.mp4"
    c.put_json("ns", key, {"v": 1})
    assert c.has("ns", key) and not c.has("other", key) and not c.has("ns", "ab" + "1" * 62)
    assert not c.has("ns", key, ".mp4")
    assert json.loads((tmp_path / "ns" / "ab" / f"{key}.json").read_text()) == {"v": 1}
    assert c.get_json("ns", key) == {"v": 1}


def test_cache_get_or_create_file_uses_namespace_key_and_suffix(tmp_path):
    c = store.Cache(tmp_path)
    key = "cd" + "2" * 62
    calls = []

    def make(tmp: Path) -> None:
        calls.append(tmp)
        tmp.write_bytes(b"video")

    p = c.get_or_create_file("clips", key, ".mp4", make)
    assert p == tmp_path / "clips" / "cd" / f"{key}.mp4" and p.read_bytes() == b"video"
    assert c.has("clips", key, ".mp4")
    assert c.get_or_create_file("clips", key, ".mp4", make) == p and len(calls) == 1
    # another key, namespace or suffix is another entry
    c.get_or_create_file("clips", "cd" + "3" * 62, ".mp4", make)
    c.get_or_create_file("frames", key, ".mp4", make)
    c.get_or_create_file("clips", key, ".png", make)
    assert len(calls) == 4


def test_load_image_memoises_a_decoded_copy_per_file_version(tmp_path, monkeypatch):
    """Every call returns its own image (a caller may draw on it), decoded once per file version."""
    p = tmp_path / "x.png"
    Image.new("RGB", (20, 10), (1, 2, 3)).save(p)
    opened = []
    real = media.Image.open
    monkeypatch.setattr(media.Image, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    a = media.load_image(p)
    a.paste((255, 255, 255), (0, 0, 20, 10))
    b = media.load_image(p)
    assert b.getpixel((0, 0)) == (1, 2, 3) and b is not a and len(opened) == 1
    assert media.load_image(p, "L").mode == "L" and len(opened) == 2  # another mode is another entry
    Image.new("RGB", (20, 10), (9, 9, 9)).save(p)
    os.utime(p, ns=(5, 5))
    assert media.load_image(p).getpixel((0, 0)) == (9, 9, 9) and len(opened) == 3
    p.unlink()
    with pytest.raises(media.MediaError, match="image not found"):
        media.load_image(p)
    p.write_bytes(b"not an image")
    with pytest.raises(media.MediaError, match="unreadable image"):
        media.load_image(p)
