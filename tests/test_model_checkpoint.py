"""Checkpoints (safetensors + JSON), their error handling, configs, and bit-exact resume."""

from __future__ import annotations

import json

import pytest
import torch
from _model_helpers import tiny_config, toy_suite

from lssviewer.errors import FormatError, LssviewerError, ParameterError
from lssviewer.model import api, checkpoint, load_model
from lssviewer.model.train import TrainConfig, _parse_toml_subset, load_config, parse_toml, train


@pytest.fixture(scope="module")
def suite():
    return toy_suite(24, 8, seed=5)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, suite):
    out = tmp_path_factory.mktemp("run")
    train(suite, out, tiny_config(), progress=False)
    return out


def test_round_trip_gives_identical_weights_and_outputs(run_dir, suite):
    meta, weights = checkpoint.load_model_files(run_dir)
    assert meta["n_halos"] == 8 and meta["box_size"] == 100.0 and meta["redshift"] == 0.5
    assert meta["training"]["step"] == 6 and "features" in meta and "prior" in meta
    assert meta["data"]["n_train"] + meta["data"]["n_val"] == 24
    model = load_model(run_dir, device="cpu")
    for k, v in model.vdm.state_dict().items():
        assert torch.equal(v, weights[k])
    # writing what was loaded and loading again gives bitwise the same likelihoods
    copy_dir = run_dir.parent / "copy"
    checkpoint.save_model(copy_dir, model.vdm.state_dict(), meta)
    again = load_model(copy_dir, device="cpu")
    grid = [[0.3, 0.8], [0.2, 0.7]]
    a = [p.log_likelihood for p in model.scan(suite[0], grid, n_noise=4)]
    b = [p.log_likelihood for p in again.scan(suite[0], grid, n_noise=4)]
    assert a == b
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and len(rows) == 4  # header + steps 2, 4, 6
    assert "val_nelbo_per_dim" in rows[0] and rows[-1].split(",")[9] != ""  # validated at the end


def _copy_run(src, dst):
    dst.mkdir()
    for name in (checkpoint.MODEL_JSON, checkpoint.MODEL_WEIGHTS):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_corrupt_and_incompatible_checkpoints_raise_one_line_errors(run_dir, tmp_path):
    bad = _copy_run(run_dir, tmp_path / "corrupt")
    data = bytearray((bad / checkpoint.MODEL_WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / checkpoint.MODEL_WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(FormatError, match="checksum") as exc:
        load_model(bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)

    trunc = _copy_run(run_dir, tmp_path / "truncated")
    meta = json.loads((trunc / checkpoint.MODEL_JSON).read_text())
    meta.pop("weights_sha256")
    (trunc / checkpoint.MODEL_JSON).write_text(json.dumps(meta))
    (trunc / checkpoint.MODEL_WEIGHTS).write_bytes((trunc / checkpoint.MODEL_WEIGHTS).read_bytes()[:100])
    with pytest.raises(FormatError, match="safetensors"):
        load_model(trunc)

    newer = _copy_run(run_dir, tmp_path / "newer")
    meta = json.loads((newer / checkpoint.MODEL_JSON).read_text())
    meta["format_version"] = 99
    (newer / checkpoint.MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(FormatError, match="format_version 99"):
        load_model(newer)

    other = _copy_run(run_dir, tmp_path / "other-arch")
    meta = json.loads((other / checkpoint.MODEL_JSON).read_text())
    meta["architecture"]["network"]["d_model"] = 32
    (other / checkpoint.MODEL_JSON).write_text(json.dumps(meta))
    with pytest.raises(FormatError, match="does not match its architecture"):
        load_model(other)

    with pytest.raises(FormatError, match="not an lssviewer model"):
        load_model(tmp_path)
    with pytest.raises(FormatError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_missing_default_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(api, "DEFAULT_MODEL_DIRS", (tmp_path / "a", tmp_path / "b"))
    with pytest.raises(LssviewerError, match="no trained default model.*lssviewer train"):
        load_model(None)


def test_resume_is_bit_exact(tmp_path, suite):
    cfg = tiny_config(steps=8, ckpt_every=3)
    full = train(suite, tmp_path / "full", cfg, progress=False)
    part = train(suite, tmp_path / "part", cfg, progress=False, stop_after=5)  # checkpoint at 3, stop at 5
    assert part.step == 5 and part.stopped_early
    with pytest.raises(LssviewerError, match="--resume"):
        train(suite, tmp_path / "part", cfg, progress=False)
    rest = train(suite, tmp_path / "part", None, resume=True, progress=False)
    assert rest.step == full.step == 8
    _, a = checkpoint.load_train_state(tmp_path / "full")
    _, b = checkpoint.load_train_state(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:  # raw weights, EMA weights, AdamW moments, generator state
        assert torch.equal(a[k], b[k]), k
    steps = [int(r.split(",")[0]) for r in (tmp_path / "part" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps))  # rows logged after the checkpoint were replaced, not duplicated
    # out/best holds the EMA weights of the lowest validation loss (val at steps 3, 6, 8), the same after a resume
    import csv

    rows = [r for r in csv.DictReader(open(tmp_path / "full" / "metrics.csv")) if r["val_nelbo_per_dim"]]
    best_row = min(rows, key=lambda r: float(r["val_nelbo_per_dim"]))
    for run in ("full", "part"):
        meta, weights = checkpoint.load_model_files(tmp_path / run / "best")
        assert meta["training"]["best"]["step"] == int(best_row["step"])
        assert meta["training"]["best"]["val_nelbo_per_dim"] == pytest.approx(float(best_row["val_nelbo_per_dim"]))
        load_model(tmp_path / run / "best")
    _, wa = checkpoint.load_model_files(tmp_path / "full" / "best")
    _, wb = checkpoint.load_model_files(tmp_path / "part" / "best")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_refuses_other_data_or_config(tmp_path, suite):
    cfg = tiny_config(steps=4)
    train(suite, tmp_path / "r", cfg, progress=False, stop_after=2)
    with pytest.raises(LssviewerError, match="data differ"):
        train(suite[:-1], tmp_path / "r", None, resume=True, progress=False)
    with pytest.raises(ParameterError, match="lr"):
        train(suite, tmp_path / "r", cfg.replace(lr=0.1), resume=True, progress=False)


def test_config_files_toml_json_and_subset_parser(tmp_path):
    text = """# training config
steps = 1_000
batch_size = 16
schedule = "linear"
augment_shifts = false
lr = 2e-4

[network]
d_model = 64
n_layers = 2

[prior]
omega_m = [0.15, 0.45]
sigma_8 = [0.65, 0.95]
"""
    assert parse_toml(text) == _parse_toml_subset(text)  # the 3.10 fallback reads our subset identically
    (tmp_path / "c.toml").write_text(text)
    cfg = load_config(tmp_path / "c.toml")
    assert cfg.steps == 1000 and cfg.network.d_model == 64 and cfg.schedule == "linear"
    assert cfg.augment_shifts is False and cfg.prior.omega_m == (0.15, 0.45)
    (tmp_path / "c.json").write_text(json.dumps(cfg.to_dict()))
    assert load_config(tmp_path / "c.json") == cfg
    (tmp_path / "bad.toml").write_text("stepz = 3\n")
    with pytest.raises(ParameterError, match="stepz") as exc:
        load_config(tmp_path / "bad.toml")
    assert "bad.toml" in str(exc.value)
    with pytest.raises(ParameterError, match="schedule"):
        TrainConfig(schedule="cosine")


def test_training_data_checks(tmp_path, suite):
    from lssviewer.cosmology import PriorBox

    mixed = suite[:3] + toy_suite(2, 9, seed=1)
    with pytest.raises(LssviewerError, match="n_halos"):
        train(mixed, tmp_path / "m", tiny_config(), progress=False)
    narrow = tiny_config(prior=PriorBox(omega_m=(0.25, 0.35), sigma_8=(0.6, 1.0)))
    with pytest.raises(ParameterError, match="outside the prior box"):
        train(suite, tmp_path / "n", narrow, progress=False)
    assert train(mixed, tmp_path / "cut", tiny_config(n_halos=8, steps=2), progress=False).step == 2


def test_shipped_default_training_config_is_valid():
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "resources" / "models" / "default.toml")
    assert cfg.network.d_model == 128 and cfg.prior.omega_m == (0.1, 0.5) and cfg.sample_steps >= 1


def test_warm_start_begins_at_the_source_model_and_refuses_other_architectures(tmp_path, suite, run_dir):
    """--init-from: a run with a new zero-initialised part (relative_phases) starts from exactly the source model's
    function (same ELBOs before any step), trains, and keeps the source's feature standardisation; an adapter
    (train_new_only) moves only the new part, also when the source already has another one (mesh_gravity added
    to a model with relative phases: its rel_out stays frozen); a source of another width is refused in one
    line naming it."""
    from lssviewer.model.data import suite_from_catalogs
    from lssviewer.model.network import NetworkConfig
    from lssviewer.model.train import _load_warm_start, _new_parts, _warm_start_files, build_model

    base = tiny_config()
    cfg = base.replace(init_from=str(run_dir), steps=3,
                       network=NetworkConfig(**dict(base.network.to_dict(), relative_phases=2)))
    transform, weights = _warm_start_files(cfg, suite_from_catalogs(suite))
    vdm = build_model(cfg)
    _load_warm_start(vdm, weights, cfg.init_from, _new_parts(cfg))
    source = load_model(run_dir, device="cpu")
    warm_meta, _ = checkpoint.load_model_files(run_dir)
    warm_meta = dict(warm_meta, architecture=dict(warm_meta["architecture"], network=cfg.network.to_dict()))
    warm = api.DiffusionModel(vdm, warm_meta, device="cpu")
    grid = [[0.3, 0.8], [0.2, 0.7]]
    a = [p.log_likelihood for p in source.scan(suite[0], grid, n_noise=4)]
    b = [p.log_likelihood for p in warm.scan(suite[0], grid, n_noise=4)]
    assert a == pytest.approx(b, abs=1e-4)
    assert transform.to_dict() == source.transform.to_dict()
    res = train(suite, tmp_path / "warm", cfg, progress=False)
    meta, w = checkpoint.load_model_files(tmp_path / "warm")
    assert res.step == 3 and meta["training"]["config"]["init_from"] == str(run_dir)
    assert meta["features"] == warm_meta["features"]
    assert any(float(v.abs().max()) > 0 for k, v in w.items() if ".rel_out." in k)  # the new part learned
    # adapter fine-tune: only the new part moves, every weight of the source stays as it was
    train(suite, tmp_path / "adapter", cfg.replace(train_new_only=True), progress=False)
    _, src = checkpoint.load_model_files(run_dir)
    _, ad = checkpoint.load_model_files(tmp_path / "adapter")
    assert all(torch.equal(ad[k], v) for k, v in src.items())
    assert any(float(v.abs().max()) > 0 for k, v in ad.items() if ".rel_out." in k)
    # an adapter on the adapter: relative phases are in the source now, so only mesh gravity is new and trains
    nested = cfg.replace(init_from=str(tmp_path / "adapter"), train_new_only=True,
                         network=NetworkConfig(**dict(cfg.network.to_dict(), mesh_gravity=8)))
    train(suite, tmp_path / "nested", nested, progress=False)
    _, nest = checkpoint.load_model_files(tmp_path / "nested")
    assert all(torch.equal(nest[k], v) for k, v in ad.items())  # rel_out of the source included
    assert any(float(v.abs().max()) > 0 for k, v in nest.items() if ".mesh_out.out." in k)
    with pytest.raises(ParameterError, match="switches on no new part"):
        train(suite, tmp_path / "nothing", cfg.replace(init_from=str(tmp_path / "adapter"), train_new_only=True),
              progress=False)
    with pytest.raises(ParameterError, match="train_new_only needs init_from"):
        tiny_config(train_new_only=True)
    # a torus network from a source that reads raw positions: the source's weights less those input columns
    torus = base.replace(init_from=str(run_dir), steps=3, network=NetworkConfig(**dict(base.network.to_dict(),
                                                                                        torus=1)))
    _, src_weights = _warm_start_files(torus, suite_from_catalogs(suite))
    vdm_t = build_model(torus)
    _load_warm_start(vdm_t, src_weights, torus.init_from, _new_parts(torus))
    assert torch.equal(vdm_t.network.embed.weight, src_weights["network.embed.weight"][:, 3:])
    assert vdm_t.torus and train(suite, tmp_path / "torus", torus, progress=False).step == 3
    wide = cfg.replace(network=NetworkConfig(**dict(cfg.network.to_dict(), d_model=32)))
    with pytest.raises(ParameterError, match="d_model") as err:
        train(suite, tmp_path / "bad", wide, progress=False)
    assert "\n" not in str(err.value) and str(run_dir) in str(err.value)
    with pytest.raises(ParameterError, match="feature scales"):  # the source was standardised without them
        train(suite, tmp_path / "bad2", cfg.replace(feature_velocity_scale=0.5), progress=False)


def test_warm_start_on_a_grown_suite_keeps_the_sources_held_out_boxes(tmp_path, suite, run_dir):
    """A warm start on the suite plus new boxes: the source's validation boxes stay validation boxes and its
    training boxes stay training boxes (a plain re-split of the grown suite would mix them, so boxes the source's
    calibration scores as held out would be trained on); only the new boxes are split anew. A resumed run keeps
    the split it began with, whatever has since become of the source directory."""
    import shutil

    from lssviewer.model.data import split_indices, warm_start_split

    source = tmp_path / "source"
    shutil.copytree(run_dir, source)
    src_meta, _ = checkpoint.load_model_files(source)
    src_val = set(src_meta["data"]["val_indices"])
    assert src_meta["data"]["n_catalogs"] == len(suite) == 24 and len(src_val) == 2
    grown = list(suite) + toy_suite(16, 8, seed=11)
    cfg = tiny_config(init_from=str(source), steps=4)
    train(grown, tmp_path / "warm", cfg, progress=False, stop_after=2)
    val = set(checkpoint.load_model_files(tmp_path / "warm")[0]["data"]["val_indices"])
    assert val & set(range(24)) == src_val  # no source training box is held out, every held-out box still is
    assert val - src_val == {24 + int(i) for i in split_indices(16, 0.1, 0)[1]}  # 10 % of the 16 new boxes
    # the source's model.json changes (e.g. the run's result shipped into it): the resumed run keeps its split
    meta = json.loads((source / "model.json").read_text())
    meta["data"]["val_indices"] = [0, 1]
    (source / "model.json").write_text(json.dumps(meta))
    assert train(grown, tmp_path / "warm", cfg, progress=False, resume=True).step == 4
    assert set(checkpoint.load_model_files(tmp_path / "warm")[0]["data"]["val_indices"]) == val
    # the same suite: the source's split exactly (what a plain split gives when the source used the same seed)
    same_train, same_val = warm_start_split(24, 0.1, 0, 24, sorted(src_val))
    assert set(same_val) == src_val == set(split_indices(24, 0.1, 0)[1])
    assert set(same_train) | set(same_val) == set(range(24))
    # a smaller suite keeps the source's held-out boxes that it still has
    assert set(warm_start_split(10, 0.1, 0, 24, [3, 17])[1]) == {3}
    # a suite that does not begin with the source's boxes (its checksum differs) is split anew, with a note
    other = toy_suite(40, 8, seed=12)
    train(other, tmp_path / "other", cfg, progress=False, stop_after=1)
    assert checkpoint.load_model_files(tmp_path / "other")[0]["data"]["val_indices"] == \
        [int(i) for i in split_indices(40, 0.1, 0)[1]]
    # a train state written before the split was stored (older code split warm starts plainly) resumes with
    # the plain split it began with, not the warm start's
    state = json.loads((tmp_path / "warm" / "train_state.json").read_text())
    del state["val_indices"]
    (tmp_path / "warm" / "train_state.json").write_text(json.dumps(state))
    assert train(grown, tmp_path / "warm", cfg.replace(steps=5), progress=False, resume=True).step == 5
    assert checkpoint.load_model_files(tmp_path / "warm")[0]["data"]["val_indices"] == \
        [int(i) for i in split_indices(40, 0.1, 0)[1]]
