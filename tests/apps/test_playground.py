"""The playground's callbacks, driven directly: pick, typed questions, fine-tune, the guard, the figure."""
import hashlib

import pytest
import torch

from vqagan_lib.models.codec import Codec, CodecConfig, save_codec
from vqagan_lib.errors import VQAGanError
from vqagan_lib.coding.images import png_bytes
from vqagan_lib.apps.playground import Playground, Point, check_name, default_name, guard_output, ladder_points, nearest_point
from vqagan_lib.apps.playground import answers_table
from vqagan_lib.evaluation.figures import pick_figure, tradeoff_figure
from vqagan_lib.runtime import CHECKPOINT_DIR

SHIPPED_READERS = all((CHECKPOINT_DIR / f"{n}.safetensors").exists() for n in ("critic-easyvqa", "judge-vilt-easyvqa"))


def tiny_codec(path, latent_dim=6, card=None):
    torch.manual_seed(0)
    codec = Codec(CodecConfig(latent_dim=latent_dim, channels=16))
    codec.freeze_tables()
    save_codec(codec.eval(), path, card or {})
    return codec


def readers(folder):
    """The shipped critic and ViLT judge when they exist; otherwise tiny untrained ones of the same kind."""
    from vqagan_lib.answerers.critic import Critic, CriticConfig, load_critic, save_critic
    from vqagan_lib.data.easyvqa import build_vocabulary
    from vqagan_lib.answerers.judge_rules import RuleJudge
    from vqagan_lib.answerers.judge_vilt import JudgeConfig, build_judge, load_judge

    if SHIPPED_READERS:
        return "critic-easyvqa", load_critic("critic-easyvqa"), load_judge("judge-vilt-easyvqa"), RuleJudge()
    vocab = build_vocabulary()
    torch.manual_seed(0)
    save_critic(Critic(CriticConfig(channels=8, dim=16, word_dim=8, hidden=16), vocab), folder / "critic", {"name": "critic"})
    judge = build_judge(JudgeConfig(hidden=16, layers=1, heads=2, patch_size=16), vocab).eval()
    spec = str(folder / "critic.safetensors")
    return spec, load_critic(spec), judge, RuleJudge()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("ladder")
    codec = tiny_codec(folder / "tiny-8", card={"ladder": {"role": "ours", "nominal_bits": 8}})
    tiny_codec(folder / "tiny-32", card={"ladder": {"role": "ours", "nominal_bits": 32},
                                         "metrics": {"benchmark": {"stream_bits": 30.5, "judge_rules": 0.8, "judge_vilt": 0.75}}})
    spec, critic, vilt, rules = readers(folder)
    pg = Playground(points=ladder_points(folder), critic=critic, judges={"judge_vilt": vilt, "judge_rules": rules},
                    eval_images=8, out_root=tmp_path_factory.mktemp("runs") / "playground", train_images=16,
                    batch_size=8, critic_spec=spec, device="cpu")
    return pg, codec


def test_ladder_points_keep_only_our_codecs_by_rate(tmp_path):
    tiny_codec(tmp_path / "b", card={"ladder": {"role": "ours", "nominal_bits": 16}, "metrics": {"benchmark": {"stream_bits": 15.0}}})
    tiny_codec(tmp_path / "a", card={"ladder": {"role": "ours", "target_bits": 8}})  # a card of the continuous ladder
    tiny_codec(tmp_path / "abl", card={"ladder": {"role": "ablation", "nominal_bits": 8}})
    tiny_codec(tmp_path / "plain")
    points = ladder_points(tmp_path)
    assert [p.name for p in points] == ["a", "b"]
    assert points[1].metrics["stream_bits"] == 15.0 and points[1].source == "card"
    assert points[0].source == "none" and points[0].latent_dim == 6
    for f in ("a", "b"):
        (tmp_path / f"{f}.json").unlink()
    assert ladder_points(tmp_path) == []
    assert {p.name for p in ladder_points(tmp_path, fallback=True)} == {"abl", "plain"}


def test_nearest_point_by_rate_and_latent_size():
    pts = [Point("lo", "lo", 16, 8), Point("mid", "mid", 16, 32), Point("other", "o", 8, 30)]
    assert nearest_point(pts, {"rate.target": 20, "model.latent_dim": 16})[0].name == "mid"
    assert nearest_point(pts, {"rate.target": 12, "model.latent_dim": 16})[0].name == "lo"
    assert nearest_point(pts, {"rate.target": 28})[0].name == "other"  # no latent size asked: any
    start, message = nearest_point(pts, {"model.latent_dim": 5})
    assert "latent size 5" in message and "from scratch" in message


def test_pick_test_image_goes_through_real_bytes(setup):
    pg, codec = setup
    result = pg.pick(3, point=pg.points[0])
    x = pg.test.images[3].float() / 255.0
    assert result.original.shape == result.reconstruction.shape == (3, 64, 64)
    assert torch.equal(result.original, x)
    with torch.no_grad():
        assert torch.allclose(result.reconstruction, codec(x[None]).x_hat[0], atol=1e-6)  # decoded from the bytes
    assert result.file_bits > result.payload_bits >= 0 and result.file_bits % 8 == 0
    assert 0 < result.file_bits - result.payload_bits <= 8 * 6  # the container: a few bytes (coding/bitstream.py)
    questions = [q for q, r in zip(pg.test.questions, pg.test.question_image.tolist()) if r == 3]
    assert result.question == questions[0] and result.true_answer is not None
    assert set(result.answers) == set(result.answers_original) == {"critic", "judge_vilt", "judge_rules"}
    for answer in list(result.answers.values()) + list(result.answers_original.values()):
        assert answer.answer in pg.vocab.answers
    assert 0 < result.answers["critic"].confidence <= 1 and 0 < result.answers["judge_vilt"].confidence <= 1
    assert result.answers["judge_rules"].confidence is None and result.answers_original["judge_rules"].reading
    assert result.message == ""
    table = answers_table(result)
    assert result.question in table and f"{result.answers['critic'].confidence:.0%}" in table
    fig = pick_figure(result)
    assert len(fig.axes) == 2 and f"{result.file_bits} bits" in fig.axes[1].get_title()


def test_pick_uploaded_bytes_with_typed_question(setup):
    pg, _ = setup
    upload = png_bytes(pg.test.images[5].float() / 255.0)
    result = pg.pick(upload, "what shape is present?", point="tiny-32")
    assert result.true_answer is None and result.point == "tiny-32"
    assert result.original.shape == (3, 64, 64) and result.answers["critic"].answer in pg.vocab.answers
    with pytest.raises(VQAGanError, match="type one"):
        pg.pick(upload, "")
    with pytest.raises(VQAGanError, match="out of range"):
        pg.pick(len(pg.test.images))


def test_typed_question_with_unknown_words_gives_a_message(setup):
    pg, _ = setup
    result = pg.pick(0, "what hue is the blob?")
    assert result.answers == {} and result.file_bits > 0
    assert result.message.startswith("unknown words: blob, hue.")
    assert "triangle" in result.message  # the words it does know
    assert answers_table(result) == result.message


def shipped_digest() -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(CHECKPOINT_DIR.glob("*")) if p.is_file()}


def test_finetune_returns_a_judged_point_and_leaves_shipped_files_alone(setup):
    pg, _ = setup
    before, start_bytes = shipped_digest(), open(pg.points[0].path, "rb").read()
    point = pg.finetune({"vqa.weight": 1.0, "rate.weight": 1.0, "rate.target": 10, "gan.weight": 0.1,
                         "model.latent_dim": 6}, steps=2, progress=False)
    assert point.source == "slice" and "started from tiny-8" in point.message
    assert point.metrics["stream_bits"] > 0 and point.metrics["file_bits"] >= point.metrics["stream_bits"]
    for name in ("critic", "judge_vilt", "judge_rules"):
        assert 0 <= point.metrics[name] <= 1
    assert pg.out_root.resolve() in guard_output(point.path).parents
    assert shipped_digest() == before and open(pg.points[0].path, "rb").read() == start_bytes
    fresh = pg.finetune({"vqa.weight": 0.0, "model.latent_dim": 4}, steps=1, progress=False)
    assert "no shipped codec has latent size 4" in fresh.message and fresh.latent_dim == 4

    fig = tradeoff_figure(pg.points, point)
    stars = [line for line in fig.axes[0].lines if line.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_xdata()[0] == pytest.approx(point.metrics["stream_bits"])
    assert stars[0].get_ydata()[0] == pytest.approx(100 * point.metrics["judge_rules"])
    ladder = [line for line in fig.axes[0].lines if line.get_label() == "shipped ladder, rule judge"]
    assert list(ladder[0].get_xdata()) == [30.5]  # only the point whose card has benchmark numbers


def test_guard_refuses_output_inside_checkpoint_dir(setup, monkeypatch):
    pg, _ = setup
    with pytest.raises(VQAGanError, match="runs/playground"):
        guard_output(CHECKPOINT_DIR / "runs" / ".." / "x")
    monkeypatch.setattr(pg, "out_root", CHECKPOINT_DIR / "playground")
    with pytest.raises(VQAGanError, match="inside"):
        pg.finetune({"vqa.weight": 0.0, "model.latent_dim": 6}, steps=1, progress=False)
    assert not (CHECKPOINT_DIR / "playground").exists()
    with pytest.raises(VQAGanError, match="steps"):
        pg.finetune({}, steps=10_000, progress=False)


def test_finetune_changes_are_the_command_lines_overrides(setup):
    pg, _ = setup
    start = pg.points[0]
    cfg = pg.finetune_config({"vqa.weight": 2.5, "rate.target": 8, "optim.betas": (0.5, 0.9)}, 7, "a-run", start)
    assert cfg.vqa.weight == 2.5 and cfg.rate.target == 8.0 and cfg.optim.betas == (0.5, 0.9)
    assert cfg.stage == "joint" and cfg.gan.disc_start == 0 and cfg.rate.target_start is None  # the defaults
    # the playground's bounds win over any change: steps, where it writes, the critic it judges with
    cfg = pg.finetune_config({"steps": 10_000, "out_dir": "/tmp/elsewhere", "name": "x"}, 7, "a-run", start)
    assert cfg.steps == 7 and cfg.name == "a-run" and cfg.out_dir == str((pg.out_root / "a-run").resolve())
    with pytest.raises(VQAGanError, match="unknown config field"):
        pg.finetune_config({"vqa.wieght": 1.0}, 7, "a-run", start)
    assert check_name(default_name({"vqa.weight": 2.5, "rate.target": 8, "optim.betas": (0.5, 0.9)})) == \
        "ft-vqa_weight2.5-rate_target8-optim_betas"


@pytest.mark.parametrize("name", ["../../../x", "../x", "a/b", "/tmp/x", ".hidden", "..", "", "a b", "x" * 65, "a\\b"])
def test_run_names_are_one_plain_file_name(setup, name):
    pg, _ = setup
    with pytest.raises(VQAGanError, match="runs/playground"):
        pg.finetune({"vqa.weight": 0.0}, steps=1, progress=False, name=name)


def test_run_names_that_are_plain_tokens_pass():
    for name in ("widget-1", "nb07-finetune", "ft_v1.5", "A9"):
        assert check_name(name) == name


def test_widgets_start_on_the_first_question_and_offer_the_shipped_rates_exactly(setup):
    from vqagan_lib.apps.widgets import STATIC_TEXT, PlaygroundUI
    from vqagan_lib.config import apply_overrides, as_flags
    from vqagan_lib.training.engine import TrainConfig

    pg, _ = setup
    ui = PlaygroundUI(pg, image=3, steps=1)
    questions = pg.image(3)[1]
    assert ui.question.options == tuple(questions) and ui.question.value == questions[0]  # not blank
    ui.image.value = 5
    assert ui.question.value == pg.image(5)[1][0]
    rates = ui.knobs["rate.target"]
    assert [v for _, v in rates.options] == [p.nominal_bits for p in pg.points] == [8, 32]
    rates.value = 8
    assert ui.changes()["rate.target"] == 8  # no log-slider snapping
    cfg = apply_overrides(TrainConfig(), as_flags(ui.changes()))  # every knob is a field the command line takes
    assert cfg.rate.target == 8 and cfg.vqa.weight == ui.knobs["vqa.weight"].value
    bundle = ui._repr_mimebundle_()
    assert bundle["text/plain"] == STATIC_TEXT and "application/vnd.jupyter.widget-view+json" in bundle


def test_widgets_fine_tune_button_adds_a_rate_point(setup):
    from vqagan_lib.apps.widgets import PlaygroundUI

    pg, _ = setup
    ui = PlaygroundUI(pg, image=0, steps=1)
    ui.knobs["model.latent_dim"].value = 6
    ui.on_finetune()
    assert ui.rate.value == "widget-1" and ui.new.name == "widget-1" and not ui.button.disabled
    assert pg.out_root.resolve() in guard_output(ui.points["widget-1"].path).parents


def test_a_discrete_codec_is_a_ladder_point_and_picks_through_real_bytes(setup, tmp_path):
    from vqagan_lib.models.codec import build_model

    pg, _ = setup
    torch.manual_seed(0)
    codec = build_model(CodecConfig(model="fsq", answer_levels=(4, 3), encoder_channels=8, channels=16,
                                    answer_head_dim=16)).eval()
    x = pg.slice.images.float() / 255.0
    with torch.no_grad():
        codec.entropy_model.fit(codec.symbols_of(codec.code(x)))  # the prior stage "answers" would fit
    save_codec(codec, tmp_path / "fsq-4bit", {"ladder": {"role": "ours", "nominal_bits": 3.6}})
    points = ladder_points(tmp_path)
    assert [(p.name, p.nominal_bits) for p in points] == [("fsq-4bit", 3.6)]
    result = pg.pick(2, point=points[0])
    assert result.reconstruction.shape == (3, 64, 64) and result.file_bits > result.payload_bits
    assert pg.evaluate_point(points[0]).metrics["stream_bits"] > 0
