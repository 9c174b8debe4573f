"""The discrete codec's stages, each run for a few steps on a few images."""
import pytest
import torch

from vqagan_lib.data.easyvqa import load_split
from vqagan_lib.evaluation.audit import answers_from_code, audit_codes
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.codec import CodecConfig, build_model, load_codec
from vqagan_lib.training.batches import DataConfig
from vqagan_lib.training.engine import TrainConfig, train


def fsq_config(tmp_path, name, stage, steps=4, **model):
    return TrainConfig(model=CodecConfig(model="fsq", channels=8, encoder_channels=8, answer_levels=(5, 5), **model),
                       data=DataConfig(limit_images=24, val_images=8), stage=stage, steps=steps, batch_size=8,
                       name=name, out_dir=str(tmp_path / name), log_every=2, eval_every=4, save_every=4, device="cpu")


@pytest.fixture(scope="module")
def answer_stage(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stages")
    return train(fsq_config(tmp, "answers", "answers"), progress=False), tmp


def test_stage_answers_trains_only_the_answer_code_and_fits_the_prior(answer_stage):
    result, _ = answer_stage
    assert {"train/answer_loss", "train/agree_with_critic"} <= set(result.history[-1])
    codec = load_codec(result.checkpoint_path)
    freqs = codec.entropy_model.check_tables()  # fitted on the training codes before saving
    assert freqs.shape == (1, 25) and freqs.sum() == 1 << 16
    torch.manual_seed(0)  # the run's seed: the decoder as it was built, before any step
    fresh = type(codec)(codec.cfg)
    assert all(torch.equal(a, b) for a, b in zip(codec.decoder.state_dict().values(), fresh.decoder.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(codec.answer_encoder.state_dict().values(),
                                                      fresh.answer_encoder.state_dict().values()))


def test_stage_generator_keeps_the_answer_code_and_draws_exemplars(answer_stage, tmp_path):
    stage1, _ = answer_stage
    before = load_codec(stage1.checkpoint_path)
    result = train(fsq_config(tmp_path, "gen", "generator"), progress=False, init_from=stage1.checkpoint_path)
    after = load_codec(result.checkpoint_path)
    for part in ("answer_encoder", "answer_head"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(before, part).state_dict().values(),
                                                      getattr(after, part).state_dict().values()))
    assert not torch.equal(before.decoder.head[0].weight, after.decoder.head[0].weight)
    x = load_split("test", limit_images=6).images.float() / 255
    assert after.decompress(after.compress(x)).shape == x.shape


def test_stage_generator_with_a_geometry_code_and_a_gan(answer_stage, tmp_path):
    stage1, _ = answer_stage
    cfg = fsq_config(tmp_path, "geo", "generator", geometry_levels=(3, 3))
    cfg.gan.weight, cfg.gan.disc_start = 0.5, 1
    cfg.gan.disc.channels, cfg.gan.disc.groups, cfg.gan.disc.feature_layer = (8, 8, 16), 4, 2
    result = train(cfg, progress=False, init_from=stage1.checkpoint_path)
    assert "train/g_adv" in result.history[-1]
    codec = load_codec(result.checkpoint_path)
    assert codec.entropy_model.check_tables().shape == (3, 25) and codec.code_space == 25 * 9


def test_stage_joint_trains_the_code_end_to_end(tmp_path):
    result = train(fsq_config(tmp_path, "joint", "joint"), progress=False)
    assert "train/psnr" in result.history[-1]
    load_codec(result.checkpoint_path).entropy_model.check_tables()


def test_generator_needs_a_start_and_stages_need_the_discrete_codec(tmp_path):
    with pytest.raises(VQAGanError, match="starts from a checkpoint"):
        train(fsq_config(tmp_path, "x", "generator"), progress=False)
    cfg = fsq_config(tmp_path, "y", "answers")
    cfg.model.model = "codec"
    with pytest.raises(VQAGanError, match="add --model.model fsq"):
        train(cfg, progress=False)


def test_audit_and_answers_from_code_run_on_a_trained_code(answer_stage):
    result, _ = answer_stage
    codec = load_codec(result.checkpoint_path)
    train_images = load_split("train", limit_images=40).images
    audit = audit_codes(codec, train_images)
    assert audit is not None and 1 <= audit.codes_used <= 25
    assert audit.codes_as_intended + len(audit.failures) == audit.codes_used
    from vqagan_lib.answerers.critic import load_critic

    accuracy = answers_from_code(codec, load_critic("critic-easyvqa"), load_split("test", limit_images=10))
    assert 0.0 <= accuracy <= 1.0


def test_layered_geometry_point_then_a_joint_fine_tune_of_everything(answer_stage, tmp_path):
    """Stage "generator" with the layered decoder and a geometry code (the ladder's recipe, in miniature;
    the answer code frozen), then the optional stage "joint" from it, where the pixels reach the answer encoder."""
    stage1, _ = answer_stage
    model = dict(geometry_levels=(8, 8, 4), decoder="layered")
    drawn = train(fsq_config(tmp_path, "layout", "generator", **model), progress=False, init_from=stage1.checkpoint_path)
    layout = load_codec(drawn.checkpoint_path)
    assert torch.equal(layout.answer_encoder.head.weight, load_codec(stage1.checkpoint_path).answer_encoder.head.weight)
    cfg = fsq_config(tmp_path, "tuned", "joint", **model)
    cfg.distortion.scales = 3
    tuned = load_codec(train(cfg, progress=False, init_from=drawn.checkpoint_path).checkpoint_path)
    assert not torch.equal(tuned.answer_encoder.head.weight, layout.answer_encoder.head.weight)
    assert tuned.entropy_model.check_tables().shape == (4, 25)  # answer index, then x, y and size digits
    x = load_split("test", limit_images=6).images.float() / 255
    assert tuned.decompress(tuned.compress(x)).shape == x.shape


def test_a_coarser_point_starts_from_a_finer_one_and_keeps_its_sprites(answer_stage, tmp_path):
    """generator.start 'codec': the ladder's 16-bit recipe in miniature. The finer point's first geometry
    digits carry over (same encoder rows, same decoder), the frozen parts stay bit for bit, the rest trains."""
    stage1, _ = answer_stage
    fine = train(fsq_config(tmp_path, "fine", "generator", geometry_levels=(8, 8, 4), decoder="layered"),
                 progress=False, init_from=stage1.checkpoint_path)
    cfg = fsq_config(tmp_path, "coarse", "generator", geometry_levels=(3, 3), decoder="layered")
    cfg.generator.start, cfg.generator.frozen = "codec", ("sprite", "colour")
    source = load_codec(fine.checkpoint_path)
    coarse = load_codec(train(cfg, progress=False, init_from=fine.checkpoint_path).checkpoint_path)
    for part in ("sprite", "colour"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(coarse.decoder, part).state_dict().values(),
                                                     getattr(source.decoder, part).state_dict().values()))
    assert not torch.equal(coarse.geometry_encoder.head.weight, source.geometry_encoder.head.weight[:2])
    assert coarse.entropy_model.check_tables().shape == (3, 25)  # refitted on the coarser code


@pytest.mark.parametrize("change, message", [
    (dict(frozen=("nothing",)), "generator.frozen"),
    (dict(start="everything"), "generator.start"),
    (dict(start="codec"), "geometry digits"),  # a 2-digit point cannot give 3 digits
])
def test_a_wrong_generator_start_is_one_clear_error(answer_stage, tmp_path, change, message):
    stage1, _ = answer_stage
    small = train(fsq_config(tmp_path, "small", "generator", geometry_levels=(3, 3), decoder="layered"),
                  progress=False, init_from=stage1.checkpoint_path)
    cfg = fsq_config(tmp_path, "wrong", "generator", geometry_levels=(3, 3, 3), decoder="layered")
    for key, value in change.items():
        setattr(cfg.generator, key, value)
    with pytest.raises(VQAGanError, match=message):
        train(cfg, progress=False, init_from=small.checkpoint_path)


def test_a_conv_decoder_cannot_drop_geometry_digits(answer_stage, tmp_path):
    stage1, _ = answer_stage
    conv = train(fsq_config(tmp_path, "conv", "generator", geometry_levels=(3, 3)), progress=False,
                 init_from=stage1.checkpoint_path)
    cfg = fsq_config(tmp_path, "fewer", "generator", geometry_levels=(3,))
    cfg.generator.start = "codec"
    with pytest.raises(VQAGanError, match="only the layered decoder can drop geometry digits"):
        train(cfg, progress=False, init_from=conv.checkpoint_path)
    assert not (tmp_path / "fewer").exists()


@pytest.mark.parametrize("scales", [0, 8])
def test_distortion_scales_outside_the_image_is_one_clear_error(tmp_path, scales):
    cfg = fsq_config(tmp_path, "s", "joint")
    cfg.distortion.scales = scales  # 64 pixels halve 6 times: at most 7 scales
    with pytest.raises(VQAGanError, match="distortion.scales"):
        train(cfg, progress=False)
    assert not (tmp_path / "s").exists()  # refused before anything is written


def test_merge_tables_gives_one_symbol_per_answer_and_the_rarest_join_their_nearest_answer():
    from vqagan_lib.training.stages import merge_tables

    cells = torch.tensor([0] * 5 + [1] * 3 + [3] * 4 + [4])  # cells 0 and 1 carry one answer; 2 and 5 unused
    answers = torch.tensor([[0, 0]] * 8 + [[1, 1]] * 4 + [[1, 2]])  # (shape, colour) as the critic answers them
    symbol_of_cell, cell_of_symbol, usage = merge_tables(cells, answers, torch.arange(6.0)[:, None], symbols=2)
    assert symbol_of_cell.tolist() == [0, 0, 0, 1, 1, 1]  # (1, 2) has no symbol left: it joins (1, 1), one answer shared
    assert cell_of_symbol.tolist() == [0, 3]  # each symbol is drawn as its most used cell
    assert usage == {"answer_cells_used": 4, "answer_labels": 3, "answer_labels_kept": 2}


def test_a_merged_answer_code_sends_fewer_symbols_and_draws_each_as_one_cell(answer_stage, tmp_path):
    """The ladder's 5-bit recipe in miniature: a finished point, its cells merged, nothing trained."""
    stage1, _ = answer_stage
    drawn = train(fsq_config(tmp_path, "drawn", "generator", decoder="layered"), progress=False,
                  init_from=stage1.checkpoint_path)
    cfg = fsq_config(tmp_path, "merged", "generator", steps=0, decoder="layered", answer_symbols=3)
    cfg.generator.start = "codec"
    source = load_codec(drawn.checkpoint_path)
    merged = load_codec(train(cfg, progress=False, init_from=drawn.checkpoint_path).checkpoint_path)
    assert merged.code_space == 3 and merged.entropy_model.check_tables().shape == (1, 3)
    x = load_split("test", limit_images=12).images.float() / 255
    symbols = merged.compress(x)
    cells = source.answer_fsq.to_index(source.answer_code(x))
    assert torch.equal(symbols[:, 0], merged.symbol_of_cell[cells])
    drawn_cells = source.answer_fsq.from_index(merged.cell_of_symbol[symbols[:, 0]])
    assert torch.allclose(merged.decompress(symbols), source.decoder(drawn_cells), atol=1e-6)
    assert merged.fingerprint() != source.fingerprint()
    assert merged.card["code"]["answer_labels_kept"] <= 3

    from safetensors.torch import load_file, save_file  # a merge table edited to point past the alphabet
    import shutil
    bad = tmp_path / "bad.safetensors"
    tensors = load_file(str(tmp_path / "merged" / "codec.safetensors"))
    tensors["symbol_of_cell"][0] = 7
    save_file(tensors, str(bad))
    shutil.copy(tmp_path / "merged" / "codec.json", tmp_path / "bad.json")
    with pytest.raises(VQAGanError, match="symbol_of_cell table must hold integers in 0 to 2"):
        load_codec(bad)


def test_a_merged_answer_code_is_made_from_a_finished_point_and_keeps_its_tables_when_trained(answer_stage, tmp_path):
    stage1, _ = answer_stage
    cfg = fsq_config(tmp_path, "merged", "generator", steps=0, decoder="layered", answer_symbols=3)
    with pytest.raises(VQAGanError, match="model.answer_symbols"):  # generator.start 'answer_code': no drawn cells yet
        train(cfg, progress=False, init_from=stage1.checkpoint_path)
    with pytest.raises(VQAGanError, match="starts from a finished point"):
        train(fsq_config(tmp_path, "merged", "joint", answer_symbols=3), progress=False)
    assert not (tmp_path / "merged").exists()
    with pytest.raises(VQAGanError, match="model.answer_symbols: 26 is outside 0 to 25"):
        build_model(CodecConfig(model="fsq", answer_levels=(5, 5), answer_symbols=26))
    drawn = train(fsq_config(tmp_path, "drawn", "generator", decoder="layered"), progress=False,
                  init_from=stage1.checkpoint_path)
    cfg.generator.start = "codec"
    merged = train(cfg, progress=False, init_from=drawn.checkpoint_path)
    tuned_cfg = fsq_config(tmp_path, "tuned", "generator", steps=2, decoder="layered", answer_symbols=3)
    tuned_cfg.generator.start = "codec"
    tuned = load_codec(train(tuned_cfg, progress=False, init_from=merged.checkpoint_path).checkpoint_path)
    before = load_codec(merged.checkpoint_path)
    assert torch.equal(tuned.symbol_of_cell, before.symbol_of_cell) and torch.equal(tuned.cell_of_symbol, before.cell_of_symbol)
    assert not torch.equal(tuned.decoder.sprite[0].weight, before.decoder.sprite[0].weight)
    joint_cfg = fsq_config(tmp_path, "joint", "joint", steps=2, decoder="layered", answer_symbols=3)
    joint = load_codec(train(joint_cfg, progress=False, init_from=merged.checkpoint_path).checkpoint_path)
    assert torch.equal(joint.cell_of_symbol, before.cell_of_symbol)  # end to end, the tables stay as loaded


def test_balanced_batches_draw_every_code_equally_often_and_resume_exactly():
    from vqagan_lib.training.stages import code_balanced_rows

    rows = {0: torch.arange(100), 7: torch.tensor([100])}  # a common code and one with a single question row
    batch = code_balanced_rows(rows, 400, seed=0, step=3)
    assert 0.4 < (batch == 100).float().mean() < 0.6
    assert torch.equal(batch, code_balanced_rows(rows, 400, seed=0, step=3))
    assert not torch.equal(batch, code_balanced_rows(rows, 400, seed=0, step=4))
    halves = [code_balanced_rows(rows, 400, seed=0, step=3, rank=r, world=2) for r in (0, 1)]
    assert torch.equal(torch.cat(halves), batch)


def test_a_geometry_point_with_balanced_batches(answer_stage, tmp_path):
    stage1, _ = answer_stage
    cfg = fsq_config(tmp_path, "balanced", "generator", geometry_levels=(3, 3), decoder="layered")
    cfg.generator.balance = True
    result = train(cfg, progress=False, init_from=stage1.checkpoint_path)
    assert load_codec(result.checkpoint_path).entropy_model.check_tables().shape == (3, 25)


def test_the_engine_trains_a_codec_on_scenes_with_the_vqa_term_of_a_scene_critic(tmp_path):
    """--data.name sort-of-clevr reaches the engine through the registry: its batches, its vocabulary and a
    critic of its own; a critic of another dataset is one clear line."""
    from vqagan_lib.answerers.critic import CriticConfig, save_critic, train_critic
    from vqagan_lib.config import apply_overrides
    from vqagan_lib.data.registry import DataChoice

    critic, _ = train_critic(CriticConfig(data=DataChoice("sort-of-clevr"), head="relation",
                                          dim=8, word_dim=8, hidden=8, limit_images=8, max_steps=2), log=None)
    save_critic(critic, tmp_path / "scene-critic", {"name": "scene-critic"})
    cfg = apply_overrides(fsq_config(tmp_path, "scenes", "joint", geometry_levels=(5, 5, 5)),
                          ["--data.name", "sort-of-clevr", "--vqa.weight", "1", "--vqa.critic", str(tmp_path / "scene-critic")])
    result = train(cfg, progress=False)
    assert "train/vqa" in result.history[-1]
    assert load_codec(result.checkpoint_path).card["train_config"]["data"]["name"] == "sort-of-clevr"
    with pytest.raises(VQAGanError, match="the critic cannot answer"):
        train(apply_overrides(cfg, ["--vqa.critic", "critic-easyvqa", "--name", "wrong"]), progress=False)
