"""Product library: the shipped 18 products, validation of bad specs, library.json, deterministic art."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from nextads_lib import config, product_art, products, store
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import ProductLibrary
from nextads_lib.topics import TOPIC_IDS

SHIPPED = config.DEFAULT_PRODUCTS_DIR


@pytest.fixture(scope="module")
def shipped() -> ProductLibrary:
    return products.load_library(SHIPPED)


@pytest.fixture()
def lib_copy(tmp_path) -> Path:
    """A copy of three shipped products to break."""
    dst = tmp_path / "lib"
    for pid in ("brisa-soda", "keenline-razor", "vantrel-phone"):
        shutil.copytree(SHIPPED / pid, dst / pid)
    return dst


def _edit(spec: Path, **changes) -> None:
    data = yaml.safe_load(spec.read_text())
    data.update(changes)
    spec.write_text(yaml.safe_dump(data, sort_keys=False))


def _only_skip(lib: ProductLibrary) -> dict[str, str]:
    assert len(lib.skipped) == 1, lib.skipped
    return lib.skipped[0]


# ------------------------------------------------------------------------------------- shipped library
def test_shipped_library_has_18_valid_products(shipped):
    assert shipped.skipped == []
    assert len(shipped.products) == 18
    assert len({p.id for p in shipped.products}) == 18
    assert {p.category for p in shipped.products} == {"electronics", "retail", "service"}
    for p in shipped.products:
        assert len(p.selling_points) >= 3 and len(p.images) >= 2
        assert "price" in p.facts, p.id
        assert p.forbidden_claims, p.id
        assert len(p.palette) >= 3, p.id


def test_shipped_assets_open_and_carry_licences(shipped):
    for p in shipped.products:
        files = [products.logo_path(p), *products.product_image_paths(p)]
        assert len(set(files)) == len(files), p.id
        for asset, f in zip([p.logo, *p.images], files):
            assert f.is_file() and f.is_relative_to(SHIPPED / p.id)
            with Image.open(f) as im:
                im.load()
                assert im.size == (product_art.SIZE, product_art.SIZE)
            assert asset.license.license == "made-here"
            assert "nextads_lib.product_art" in asset.license.source
            assert asset.caption


def test_topics_cover_the_taxonomy_and_razor_is_narrow(shipped):
    cover = products.topic_coverage(shipped)
    assert set(cover) == set(TOPIC_IDS)
    assert all(cover[t] for t in TOPIC_IDS), [t for t in TOPIC_IDS if not cover[t]]
    assert shipped.get("keenline-razor").topics == ["skincare"]


def test_shipped_media_stays_small():
    total = sum(f.stat().st_size for f in SHIPPED.rglob("*.png"))
    assert total < 10e6


# ------------------------------------------------------------------------------------------ bad inputs
def test_missing_image_is_skipped_with_product_field_and_file(lib_copy):
    (lib_copy / "brisa-soda" / "feature.png").unlink()
    lib = products.load_library(lib_copy)
    rec = _only_skip(lib)
    assert rec["product"] == "brisa-soda"
    assert rec["field"] == "images[1].path"
    assert rec["file"].endswith("brisa-soda/feature.png")
    assert "not found" in rec["error"] and "brisa-soda" in rec["error"]
    assert sorted(p.id for p in lib.products) == ["keenline-razor", "vantrel-phone"]


def test_corrupt_image_is_skipped(lib_copy):
    (lib_copy / "keenline-razor" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    rec = _only_skip(products.load_library(lib_copy))
    assert (rec["product"], rec["field"]) == ("keenline-razor", "logo.path")
    assert rec["file"].endswith("keenline-razor/logo.png") and "unreadable image" in rec["error"]


def test_too_few_selling_points_is_skipped(lib_copy):
    spec = lib_copy / "vantrel-phone" / "product.yaml"
    _edit(spec, selling_points=["one", "two"])
    rec = _only_skip(products.load_library(lib_copy))
    assert (rec["product"], rec["field"]) == ("vantrel-phone", "selling_points")
    assert rec["file"].endswith("vantrel-phone/product.yaml") and "at least 3" in rec["error"]


def test_duplicate_id_skips_the_later_folder(lib_copy):
    shutil.copytree(lib_copy / "brisa-soda", lib_copy / "zz-brisa-copy")
    lib = products.load_library(lib_copy)
    rec = _only_skip(lib)
    assert (rec["product"], rec["field"]) == ("brisa-soda", "id")
    assert rec["file"].endswith("zz-brisa-copy/product.yaml")
    assert "duplicate" in rec["error"] and "brisa-soda/product.yaml" in rec["error"]
    assert [p.id for p in lib.products].count("brisa-soda") == 1
    # the kept product's assets are the first folder's
    assert "zz-brisa-copy" not in products.logo_path(lib.get("brisa-soda")).as_posix()


def test_malformed_yaml_is_skipped_with_line(lib_copy):
    spec = lib_copy / "brisa-soda" / "product.yaml"
    spec.write_text(spec.read_text() + "\nselling_points: [unclosed, list\n")
    rec = _only_skip(products.load_library(lib_copy))
    assert (rec["product"], rec["field"]) == ("brisa-soda", "<yaml>")
    assert rec["file"].endswith("brisa-soda/product.yaml") and "line" in rec["error"]


@pytest.mark.parametrize("changes, field", [
    ({"topics": ["knitting"]}, "topics"),
    ({"palette": ["#12345"]}, "palette[0]"),
    ({"category": "toys"}, "category"),
    ({"images": "ONE_IMAGE"}, "images"),
    ({"images": "NO_LICENCE"}, "images[1].license"),
])
def test_other_bad_fields_are_named(lib_copy, changes, field):
    spec = lib_copy / "keenline-razor" / "product.yaml"
    images = yaml.safe_load(spec.read_text())["images"]
    if changes.get("images") == "ONE_IMAGE":
        changes = {"images": images[:1]}
    elif changes.get("images") == "NO_LICENCE":
        del images[1]["license"]
        changes = {"images": images}
    _edit(spec, **changes)
    rec = _only_skip(products.load_library(lib_copy))
    assert (rec["product"], rec["field"]) == ("keenline-razor", field), rec


def test_friendly_spec_coercions(lib_copy):
    """Numbers in facts become text and an asset's kind may be left out."""
    spec = lib_copy / "brisa-soda" / "product.yaml"
    data = yaml.safe_load(spec.read_text())
    data["facts"]["calories"] = 69
    del data["logo"]["kind"]
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    lib = products.load_library(lib_copy)
    assert lib.skipped == []
    p = lib.get("brisa-soda")
    assert p.facts["calories"] == "69" and p.logo.kind == "logo"


def test_folder_without_spec_is_recorded_and_missing_library_raises(lib_copy, tmp_path):
    (lib_copy / "stray").mkdir()
    rec = _only_skip(products.load_library(lib_copy))
    assert (rec["product"], rec["field"]) == ("stray", "<spec>")
    with pytest.raises(products.ProductLibraryError, match="not found"):
        products.load_library(tmp_path / "nope")


def test_build_refuses_an_all_bad_library_and_keeps_old_json(lib_copy, tmp_path):
    paths = StudyPaths.from_data_dir(tmp_path / "data")
    products.build_library(lib_copy, paths)
    before = paths.library_json.read_bytes()
    for d in lib_copy.iterdir():
        (d / "logo.png").unlink()
    with pytest.raises(products.ProductLibraryError, match="no valid product"):
        products.build_library(lib_copy, paths)
    assert paths.library_json.read_bytes() == before


# ------------------------------------------------------------------------------------------ library.json
def test_library_json_round_trips(tmp_path, shipped):
    paths = StudyPaths.from_data_dir(tmp_path / "data")
    built = products.build_library(SHIPPED, paths)
    assert paths.library_json.is_file()
    back = products.read_library(paths)
    assert back == built
    assert back.products_dir == config.display_path(SHIPPED)
    p = back.get("tunecove-music")
    assert [f.name for f in products.product_image_paths(p)] == ["hero.png", "feature.png"]
    assert products.logo_path(p) == SHIPPED / "tunecove-music" / "logo.png"
    # paths inside the project are stored project-relative, so the JSON has no machine-specific prefix
    assert not Path(p.logo.path).is_absolute()
    assert str(config.project_root()) not in paths.library_json.read_text()
    # a damaged library.json is an error naming the file and field
    raw = store.read_json(paths.library_json)
    raw["products"][0]["selling_points"] = []
    store.write_json(paths.library_json, raw)
    with pytest.raises(store.ArtifactError, match=r"library\.json.*selling_points"):
        products.read_library(paths)


def test_summary_table_and_grid(shipped):
    df = products.summary_table(shipped)
    assert list(df["id"]) == sorted(p.id for p in shipped.products)
    assert (df["images"] >= 2).all()
    fig = products.show_grid(shipped)
    assert len([ax for ax in fig.axes if ax.images]) == 18


# ------------------------------------------------------------------------------------------ product_art
def test_product_art_is_deterministic_and_matches_committed_files(tmp_path):
    pid = "brisa-soda"
    work = tmp_path / pid
    shutil.copytree(SHIPPED / pid, work)
    for f in ("logo.png", "hero.png", "feature.png"):
        (work / f).unlink()
    first = {f.name: f.read_bytes() for f in product_art.redraw_product(work)}
    second = {f.name: f.read_bytes() for f in product_art.redraw_product(work)}
    assert first == second
    assert set(first) == {"logo.png", "hero.png", "feature.png"}
    # the committed art is what the module draws today (compared by pixels: PNG bytes may differ between
    # zlib builds, pixels only if the drawing changed; rerun `python -m nextads_lib.product_art` then)
    for name in first:
        drawn = np.asarray(Image.open(work / name).convert("RGB"), dtype=np.int16)
        committed = np.asarray(Image.open(SHIPPED / pid / name).convert("RGB"), dtype=np.int16)
        assert drawn.shape == committed.shape
        assert np.abs(drawn - committed).mean() < 0.5, name


def test_product_art_draws_distinct_brand_colours():
    spec_a = product_art.Spec.from_mapping(yaml.safe_load((SHIPPED / "brisa-soda" / "product.yaml").read_text()))
    spec_b = product_art.Spec.from_mapping(yaml.safe_load((SHIPPED / "veloce-shoes" / "product.yaml").read_text()))
    a, b = product_art.draw_logo(spec_a), product_art.draw_logo(spec_b)
    assert a.size == b.size == (product_art.SIZE, product_art.SIZE)
    # the primary brand colour dominates each logo's mark
    mark = (206, 156, 306, 256)
    pa = a.crop(mark).resize((1, 1)).getpixel((0, 0))
    pb = b.crop(mark).resize((1, 1)).getpixel((0, 0))
    assert sum(abs(x - y) for x, y in zip(pa, pb)) > 100


def test_product_art_falls_back_by_subcategory():
    spec = product_art.Spec(id="acme-kettle", name="Acme Kettle", brand="Acme", subcategory="electric kettle",
                            palette=["#1F3B4D", "#E07A5F", "#F4F1DE"], facts={"price": "$69"})
    assert product_art.silhouettes_for(spec) == ("box", "box")
    spec2 = product_art.Spec(id="x", name="X", brand="X", subcategory="trail running shoes", palette=[], facts={})
    assert product_art.silhouettes_for(spec2) == ("shoe", "shoe")
    img = product_art.draw_feature(spec)
    assert img.size == (product_art.SIZE, product_art.SIZE)
