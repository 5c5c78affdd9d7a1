"""Loaders on the real release formats: the embedded sample (counts, ordering, host last, both MicroLens pairs
files and csv headers, titles split on the first comma, NaN handling, missing notes recorded) and bad input
(truncated / corrupt parquet, malformed rows, missing columns, missing media)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nextads_lib import sample
from nextads_lib.datasets import (DatasetError, LoadReport, find_microlens_files, iter_microlens_users,
                                  iter_qilin_users, missing_media, read_microlens_titles)

from test_sample import N_USERS, SEED, microlens, qilin  # noqa: F401  (the session's shared small sample)

PRE = sample.MICROLENS_PREFIX


def copy_tables(src: Path, dst: Path) -> Path:
    """The parquet configs of a Qilin dir, without the images."""
    for cfg in ("notes", "recommendation_train", "recommendation_test", "user_feat"):
        shutil.copytree(src / cfg, dst / cfg)
    return dst


# ================================================================================================ Qilin
def test_qilin_users_follow_the_plan(qilin):
    paths, d = qilin
    world = sample._World("qilin", SEED, N_USERS)
    report = LoadReport()
    users = list(iter_qilin_users(d, report=report))
    assert [u.user_id for u in users] == [str(p.user_id) for p in world.users]
    for u, plan in zip(users, world.users):
        assert u.dataset == "qilin"
        # clicked notes in time order (timestamp, then position), the duplicate click kept once
        assert [it.item_id for it in u.items] == [str(x.item_id) for x in plan.items]
        ts = [it.timestamp for it in u.items]
        assert ts == sorted(ts)
        assert len({it.item_id for it in u.items}) == len(u.items)
        assert all(it.video_path is None for it in u.items)
    defects = sample.sample_info("qilin", paths)["info"]["defects"]
    miss = defects["missing_note"]
    assert {"user": miss["user"], "item": miss["note"], "reason": "clicked note is missing from the notes table"} \
        in report.skipped
    by_id = {it.item_id: it for u in users for it in u.items}
    assert by_id[defects["empty_image_path_note"]].image_paths == []
    assert by_id[defects["null_title_note"]].title == "" and by_id[defects["null_title_note"]].text
    first = next(it for u in users for it in u.items if it.image_paths)
    assert Path(first.image_paths[0]).is_file() and "/images/note_images/" in first.image_paths[0]
    assert first.title and first.text


def test_qilin_missing_image_is_kept_and_reported(qilin):
    paths, d = qilin
    users = list(iter_qilin_users(d))
    rows = missing_media(users)
    assert rows and all(r["field"] == "image_paths" and r["reason"] == "file not found" for r in rows)
    missing = sample.sample_info("qilin", paths)["info"]["defects"]["missing_image"]
    assert {r["path"] for r in rows} == {(d / "images" / missing).as_posix()}


def test_qilin_image_dir_and_user_filter(qilin, tmp_path):
    _, d = qilin
    users = list(iter_qilin_users(d, image_dir=tmp_path / "imgs", user_ids=["1001", 1003]))
    assert [u.user_id for u in users] == ["1001", "1003"]
    paths = [p for u in users for it in u.items for p in it.image_paths]
    assert paths and all(p.startswith((tmp_path / "imgs").as_posix()) for p in paths)
    assert len(missing_media(users)) >= len({p for p in paths}) - 1  # nothing there yet: all reported


def _write_rec(path: Path, rows: list[dict]) -> None:
    det = pa.struct([(k, pa.float64()) for k in ("note_idx", "position", "click", "like", "comment", "collect",
                                                 "share", "request_timestamp", "page_time")])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "request_idx": pa.array(range(len(rows)), pa.int64()),
        "session_idx": pa.array([0] * len(rows), pa.int64()),
        "user_idx": pa.array([r["user"] for r in rows], pa.float64()),
        "recent_clicked_note_idxs": pa.array([[] for _ in rows], pa.list_(pa.int64())),
        "rec_result_details_with_idx": pa.array([r["details"] for r in rows], pa.list_(det)),
    }), path)


def _d(note, pos, click, ts):
    return {"note_idx": note, "position": pos, "click": click, "like": None, "comment": 0.0, "collect": 0.0,
            "share": 0.0, "request_timestamp": ts, "page_time": float("nan")}


def test_qilin_handmade_release_nan_and_ordering(tmp_path):
    """Floats, NaN, nulls, unsorted details, a user split across shards and configs."""
    d = tmp_path / "q"
    _write_rec(d / "recommendation_train" / "train-00000-of-00002.parquet", [
        {"user": 5.0, "details": [_d(12.0, 3.0, 1.0, 2000.0), _d(11.0, 1.0, 1.0, 2000.0), _d(99.0, 0.0, 0.0, 2000.0)]},
        {"user": None, "details": [_d(11.0, 0.0, 1.0, 1.0)]},
        {"user": 7.0, "details": None},
    ])
    _write_rec(d / "recommendation_train" / "train-00001-of-00002.parquet", [
        {"user": 5.0, "details": [_d(13.0, 0.0, 1.0, 1000.0), _d(None, 1.0, 1.0, 1000.0), None]},
    ])
    _write_rec(d / "recommendation_test" / "train-00000-of-00001.parquet", [
        {"user": 5.0, "details": [_d(11.0, 0.0, 1.0, 3000.0), _d(14.0, 1.0, 1.0, float("nan"))]},
    ])
    (d / "notes").mkdir()
    pq.write_table(pa.table({
        "note_idx": pa.array([11, 12, 13, 14], pa.int64()),
        "note_title": pa.array(["a", None, "c", "d"]),
        "note_content": pa.array(["ta", "tb", None, "td"]),
        "note_type": pa.array([1.0, 2.0, float("nan"), 1.0]),
        "image_path": pa.array([["x/11_0.jpg"], [], None, ["x/14_0.jpg", "x/14_1.jpg"]], pa.list_(pa.string())),
        "taxonomy1_id": pa.array([float("nan")] * 4),
    }), d / "notes" / "train-00000-of-00001.parquet")
    report = LoadReport()
    users = list(iter_qilin_users(d, report=report))
    assert [u.user_id for u in users] == ["5"]
    items = users[0].items
    # 13 @1000, then 11 (pos 1) and 12 (pos 3) @2000; 11 again @3000 dropped; 14 with NaN time last
    assert [it.item_id for it in items] == ["13", "11", "12", "14"]
    assert [it.title for it in items] == ["c", "a", "", "d"] and items[0].text == ""
    assert items[2].image_paths == [] and items[0].image_paths == []
    assert items[3].image_paths == [(d / "images/x/14_0.jpg").as_posix(), (d / "images/x/14_1.jpg").as_posix()]
    assert items[3].timestamp is None and items[0].timestamp == 1000.0
    reasons = " | ".join(r["reason"] for r in report.skipped)
    assert "user_idx is null" in reasons and "null note_idx" in reasons


def test_truncated_parquet_names_the_file(qilin, tmp_path):
    _, d = qilin
    q = copy_tables(d, tmp_path / "q")
    shard = sorted((q / "notes").glob("*.parquet"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError) as e:
        list(iter_qilin_users(q))
    assert shard.name in str(e.value) and e.value.file == str(shard)
    rec = sorted((q / "recommendation_train").glob("*.parquet"))[1]
    rec.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DatasetError, match=rec.name):
        list(iter_qilin_users(q))


def test_corrupt_data_page_names_file_and_rows(qilin, tmp_path):
    _, d = qilin
    q = copy_tables(d, tmp_path / "q")
    shard = sorted((q / "notes").glob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 4: len(data) // 4 + 200] = bytes(200)  # zeros inside a column chunk, footer intact
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError) as e:
        list(iter_qilin_users(q))
    assert e.value.file == str(shard) and "cannot read rows from" in str(e.value)
    shutil.rmtree(q / "notes")
    with pytest.raises(DatasetError, match="no notes shards"):
        list(iter_qilin_users(q))


def test_missing_column_and_bad_type_name_the_column(tmp_path):
    d = tmp_path / "q"
    (d / "recommendation_train").mkdir(parents=True)
    pq.write_table(pa.table({"user_idx": [1]}), d / "recommendation_train" / "train-00000-of-00001.parquet")
    (d / "notes").mkdir()
    pq.write_table(pa.table({"note_idx": [1]}), d / "notes" / "train-00000-of-00001.parquet")
    with pytest.raises(DatasetError) as e:
        list(iter_qilin_users(d))
    assert e.value.column == "rec_result_details_with_idx" and "train-00000-of-00001.parquet" in str(e.value)
    bad = pa.struct([("note_idx", pa.string()), ("position", pa.float64()), ("click", pa.float64()),
                     ("request_timestamp", pa.float64())])
    pq.write_table(pa.table({"user_idx": [1], "rec_result_details_with_idx": pa.array(
        [[{"note_idx": "abc", "position": 0.0, "click": 1.0, "request_timestamp": 1.0}]], pa.list_(bad))}),
        d / "recommendation_train" / "train-00000-of-00001.parquet")
    with pytest.raises(DatasetError) as e:
        list(iter_qilin_users(d))
    assert e.value.column == "rec_result_details_with_idx.note_idx"
    with pytest.raises(DatasetError, match="no recommendation shards"):
        list(iter_qilin_users(tmp_path / "q" / "notes"))


# ============================================================================================ MicroLens
def test_microlens_tsv_and_csv_agree_with_the_plan(microlens):
    _, d = microlens
    world = sample._World("microlens", SEED, N_USERS)
    tsv = list(iter_microlens_users(d, pairs="tsv"))
    csv_ = list(iter_microlens_users(d, pairs="csv"))
    assert find_microlens_files(d).pairs_format == "tsv"  # the tsv when both are present
    assert [u.user_id for u in tsv] == [u.user_id for u in csv_] == [str(p.user_id) for p in world.users]
    for a, b, plan in zip(tsv, csv_, world.users):
        ids = [str(x.item_id) for x in plan.items]
        assert [it.item_id for it in a.items] == [it.item_id for it in b.items] == ids
        assert a.items[-1].item_id == ids[-1]  # the host video is the last item
        assert [it.title for it in a.items] == [it.title for it in b.items]
        ts = [it.timestamp for it in b.items]
        assert ts == sorted(ts) and all(it.timestamp is None for it in a.items)
        it = a.items[-1]
        assert it.video_path.endswith(f"{PRE}_videos/{it.item_id}.mp4") and Path(it.video_path).is_file()
        assert it.image_paths == [(d / f"{PRE}_covers" / f"{it.item_id}.jpg").as_posix()]


def test_microlens_titles_split_on_first_comma(microlens, tmp_path):
    _, d = microlens
    titles = read_microlens_titles(d / f"{PRE}_title_en.csv")
    with_comma = [t for t in titles.values() if "," in t]
    assert with_comma and "" in titles.values()
    users = list(iter_microlens_users(d))
    got = {it.item_id: it.title for u in users for it in u.items}
    assert all(got[i] == titles[i] for i in got)
    f = tmp_path / "t.csv"
    f.write_text('1,Top 5 picks, ranked, honestly\n2,\n3,"A ""quoted"" title, yes"\n')
    assert read_microlens_titles(f) == {"1": "Top 5 picks, ranked, honestly", "2": "", "3": 'A "quoted" title, yes'}


def _mini_microlens(root: Path, prefix: str = "MicroLens-1M") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{prefix}_title_en.csv").write_text("1,one\n2,two, with comma\n3,\n")
    (root / f"{prefix}_covers").mkdir()
    (root / f"{prefix}_videos").mkdir()
    for i in ("1", "2"):
        (root / f"{prefix}_covers" / f"{i}.jpg").write_bytes(b"jpg")
    (root / f"{prefix}_videos" / "1.mp4").write_bytes(b"mp4")
    (root / f"{prefix}_videos" / "2.mp4").write_bytes(b"")
    return root


def test_microlens_csv_headers_any_prefix_and_unsorted_rows(tmp_path):
    for header in ("user,item,timestamp", "userID,videoID,timestamp"):
        d = _mini_microlens(tmp_path / header.replace(",", "_"))
        (d / "MicroLens-1M_pairs.csv").write_text(f"{header}\n9,3,300\n8,1,50\n9,1,100\n9,2,200\n8,2,10\n")
        users = list(iter_microlens_users(d))
        assert [u.user_id for u in users] == ["8", "9"]
        assert [it.item_id for it in users[1].items] == ["1", "2", "3"]
        assert [it.item_id for it in users[0].items] == ["2", "1"]
        assert users[1].items[1].title == "two, with comma" and users[1].items[2].title == ""
        assert users[1].items[0].timestamp == 100.0


def test_microlens_missing_cover_and_video_are_reported(tmp_path):
    d = _mini_microlens(tmp_path / "m")
    (d / "MicroLens-1M_pairs.tsv").write_text("8\t1 2\n9\t2 3 1\n")
    report = LoadReport()
    users = list(iter_microlens_users(d, report=report))
    rows = missing_media(users)
    got = {(r["user"], r["item"], r["field"], r["reason"]) for r in rows}
    assert got == {("8", "2", "video_path", "file is empty"), ("9", "2", "video_path", "file is empty"),
                   ("9", "3", "image_paths", "file not found"), ("9", "3", "video_path", "file not found")}


@pytest.mark.parametrize("content,row,column", [
    ("8\t1 2\n9\t2 x3 1\n", 2, "items"),
    ("8\t1 2\n9 2 3\n", 2, "items"),
    ("8\t1 2\nu9\t2 3\n", 2, "user_id"),
])
def test_malformed_tsv_row_names_row_and_column(tmp_path, content, row, column):
    d = _mini_microlens(tmp_path / "m")
    (d / "MicroLens-1M_pairs.tsv").write_text(content)
    with pytest.raises(DatasetError) as e:
        list(iter_microlens_users(d))
    assert (e.value.row, e.value.column) == (row, column)
    assert "MicroLens-1M_pairs.tsv" in str(e.value) and f"row {row}" in str(e.value) and column in str(e.value)


@pytest.mark.parametrize("content,row,column", [
    ("userID,videoID,timestamp\n8,1,5\n8,abc,6\n", 3, "videoID"),
    ("user,item,timestamp\n8,1,5\n8,2,soon\n", 3, "timestamp"),
    ("user,video,when\n8,1,5\n", 1, "item"),
])
def test_malformed_csv_row_names_row_and_column(tmp_path, content, row, column):
    d = _mini_microlens(tmp_path / "m")
    (d / "MicroLens-1M_pairs.csv").write_text(content)
    with pytest.raises(DatasetError) as e:
        list(iter_microlens_users(d))
    assert (e.value.row, e.value.column) == (row, column)


def test_microlens_directory_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        list(iter_microlens_users(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no MicroLens pairs file"):
        list(iter_microlens_users(tmp_path / "empty"))
    d = _mini_microlens(tmp_path / "bad_title")
    (d / "MicroLens-1M_pairs.tsv").write_text("8\t1\n")
    (d / "MicroLens-1M_title_en.csv").write_text("1,ok\nx7,bad id\n")
    with pytest.raises(DatasetError) as e:
        list(iter_microlens_users(d))
    assert (e.value.row, e.value.column) == (2, "id")
