"""``lodetools deblur``: outputs of the input's size and name, resumable, bad inputs."""

import numpy as np
import pytest
import torch

from lodetools.cli import main as cli_main
from lodetools.io.images import read_image, write_image
from lodetools.train.inference import pad_to_multiple, predict_image, tile_spans
from lodetools.train.checkpoint import model_record, save_checkpoint
from lodetools.train.registry import build_model

from tests.support.train_data import make_dataset

torch.set_num_threads(1)


def _cli(*args):
    with pytest.raises(SystemExit) as exc:
        cli_main(["deblur", *map(str, args)])
    return exc.value.code


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(path, model_record("lbag", {"base": 4, "num_res": 1}, build_model("lbag", {"base": 4, "num_res": 1})))
    return path


def test_tiles_cover_and_padding():
    assert tile_spans(100, 40, 8) == [(0, 39), (31, 70), (61, 100)]    # 3 tiles of 39, not of 40
    assert tile_spans(30, 40, 8) == [(0, 30)]
    assert tile_spans(1280, 512, 32, 16) == [(0, 448), (416, 864), (832, 1280)]  # on the 16-px grid
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7)
    p = pad_to_multiple(x, 4)
    assert p.shape == (1, 2, 8, 8) and torch.equal(p[..., :5, :7], x)
    assert torch.equal(p[..., 5, :7], x[..., 3, :])                       # reflection


def test_deblur_files_keep_size_and_name(ckpt, tmp_path, capsys):
    inp = tmp_path / "in"
    rng = np.random.default_rng(0)
    write_image(inp / "b.png", rng.random((61, 83, 3), dtype=np.float32))
    write_image(inp / "a.jpg", rng.random((40, 50, 3), dtype=np.float32))
    out = tmp_path / "out"
    assert _cli("--checkpoint", ckpt, "--input", inp, "--out", out, "--tile", 32, "--overlap", 8, "-q") == 0
    assert read_image(out / "b.png").shape == (61, 83, 3)
    assert read_image(out / "a.png").shape == (40, 50, 3)
    # the CLI writes what the library computes (8-bit rounding of the tiled prediction)
    model = build_model("lbag", {"base": 4, "num_res": 1})
    model.load_state_dict(torch.load(ckpt, weights_only=True)["model"])
    from lodetools.train.spec_lbag import lbag_predict
    ref = predict_image(model.eval(), read_image(inp / "b.png"), predict=lbag_predict, multiple=4,
                        tile=32, overlap=8)
    assert np.abs(read_image(out / "b.png") - ref).max() <= 0.5 / 255 + 1e-6
    # a rerun skips existing outputs; a single file works too
    capsys.readouterr()
    assert _cli("--checkpoint", ckpt, "--input", inp, "--out", out, "-q") == 0
    assert "deblurred 0 image(s), skipped 2" in capsys.readouterr().err
    assert _cli("-c", ckpt, "-i", inp / "b.png", "-o", tmp_path / "one", "--tile", 0, "-q") == 0
    assert read_image(tmp_path / "one" / "b.png").shape == (61, 83, 3)
    # --png-compression reaches the writes: level 0 stores (every row's filter byte and pixels), same pixels;
    # a smooth image, so that the default encoding compresses it
    yy, xx = np.mgrid[0:48, 0:64] / 64.0
    write_image(tmp_path / "smooth" / "s.png", np.stack([yy, xx, (yy + xx) / 2], -1).astype(np.float32))
    for level in ("fast", 0):
        assert _cli("-c", ckpt, "-i", tmp_path / "smooth", "-o", tmp_path / f"s-{level}", "--tile", 0, "-q",
                    "--png-compression", level) == 0
    stored, fast = tmp_path / "s-0" / "s.png", tmp_path / "s-fast" / "s.png"
    assert np.array_equal(read_image(stored), read_image(fast))
    assert stored.stat().st_size >= 48 * (64 * 3 + 1) > fast.stat().st_size


def test_deblur_dataset_split_writes_item_keys(ckpt, tmp_path):
    root = make_dataset(tmp_path / "d", n=2, splits=("test",))
    assert _cli("-c", ckpt, "-i", root, "-o", tmp_path / "p", "--split", "test", "-q") == 0
    outs = sorted(p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*.png"))
    assert outs == ["test/scene0/0000.png", "test/scene1/0001.png"]


def test_deblur_bad_inputs(ckpt, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _cli("-c", ckpt, "-i", tmp_path / "empty", "-o", tmp_path / "o") == 2
    assert "no images" in capsys.readouterr().err
    assert _cli("-c", tmp_path / "nope.pt", "-i", tmp_path / "empty", "-o", tmp_path / "o") == 2
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    write_image(tmp_path / "im" / "x.png", np.zeros((8, 8, 3), np.float32))
    assert _cli("-c", bad, "-i", tmp_path / "im", "-o", tmp_path / "o") == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert _cli("-c", ckpt, "-i", tmp_path / "im", "-o", tmp_path / "o", "--tile", 32, "--overlap", 32) == 2
    (tmp_path / "im" / "y.png").write_bytes(b"not an image")
    assert _cli("-c", ckpt, "-i", tmp_path / "im", "-o", tmp_path / "o2") == 2
