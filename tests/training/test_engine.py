import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from vqagan_lib.checkpoint import load_card
from vqagan_lib.errors import VQAGanError
from vqagan_lib.models.codec import CodecConfig, build_model, load_codec
from vqagan_lib.models.discriminator import Discriminator, DiscriminatorConfig
from vqagan_lib.training.losses import GANConfig
from vqagan_lib.training.engine import (RateConfig, TrainConfig, VQAConfig, discriminator_step, generator_step, jitter, rate_target,
                              resume, train, vqa_loss)
from vqagan_lib.training.batches import Batch, DataConfig, batch_indices

GOLDEN = Path(__file__).parent / "golden" / "train_log.json"


def tiny_config(tmp_path, name="tiny", steps=5, **kw) -> TrainConfig:
    """A few-second run: 8-channel codec, small D switching on at step 2, 16 training images."""
    return TrainConfig(model=CodecConfig(channels=8, latent_dim=8),
                       gan=GANConfig(weight=0.5, disc_start=2, disc=DiscriminatorConfig(channels=(8, 8, 16), groups=4, feature_layer=2)),
                       data=DataConfig(limit_images=16, val_images=8), steps=steps, batch_size=8, seed=3,
                       device="cpu", name=name, out_dir=str(tmp_path / name), log_every=1, eval_every=3, save_every=3, **kw)


def state_of(module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_step_updates_only_its_own_network(tmp_path):
    cfg = tiny_config(tmp_path)
    torch.manual_seed(0)
    model, disc = build_model(cfg.model), Discriminator(cfg.gan.disc)
    opt_g, opt_d = torch.optim.Adam(model.parameters()), torch.optim.Adam(disc.parameters())
    batch = Batch(torch.rand(4, 3, 64, 64), None, None)
    model0, disc0 = state_of(model), state_of(disc)
    x_hat, logs = generator_step(model, disc, [], batch, cfg, opt_g, gan_on=True)
    assert same(disc0, state_of(disc)) and not same(model0, state_of(model))
    assert all(p.grad is None for p in disc.parameters())  # D was frozen: no gradient even accumulated
    assert {"train/g_adv", "train/feature", "train/adaptive_weight", "train/rate_bits"} <= set(logs)
    model1 = state_of(model)
    d_logs = discriminator_step(disc, batch.images, x_hat, opt_d)
    assert same(model1, state_of(model)) and not same(disc0, state_of(disc))
    assert all(not v.requires_grad for v in d_logs.values())


def test_the_vqa_term_is_the_mean_over_its_critics(tmp_path):
    class Critic(torch.nn.Module):  # frozen stand-in whose loss scales with `gain`
        def __init__(self, gain):
            super().__init__()
            self.gain = gain

        def forward(self, images, questions):
            return self.gain * torch.stack([images.mean((1, 2, 3)), -images.mean((1, 2, 3))], 1)

    cfg = tiny_config(tmp_path)
    cfg.vqa.weight, cfg.vqa.shift, cfg.vqa.noise = 1.0, 0.0, 0.0
    batch = Batch(torch.rand(4, 3, 64, 64), torch.ones(4, 3, dtype=torch.long), torch.tensor([0, 1, 0, 1]))
    losses = {}
    for critics in ([Critic(1.0)], [Critic(1.0), Critic(5.0)]):
        torch.manual_seed(0)
        model = build_model(cfg.model)
        _, logs = generator_step(model, None, critics, batch, cfg, torch.optim.SGD(model.parameters(), lr=0.0), gan_on=False)
        losses[len(critics)] = logs
    one, two = losses[1], losses[2]
    assert float(two["train/vqa"]) == pytest.approx(float(one["train/vqa"]))  # the main critic's own term
    mean = (float(one["train/vqa"]) + float(two["train/vqa_extra"])) / 2
    assert float(two["train/loss"]) - float(one["train/loss"]) == pytest.approx(mean - float(one["train/vqa"]), rel=1e-4)


def test_extra_critics_join_the_vqa_term(tmp_path):
    """vqa.extra_critics: every critic scores the reconstruction; the term is their mean."""
    cfg = tiny_config(tmp_path, "two-critics", steps=2)
    cfg.vqa.weight, cfg.vqa.extra_critics = 1.0, ("critic-easyvqa",)
    result = train(cfg, progress=False)
    assert {"train/vqa", "train/vqa_extra"} <= set(result.history[-1])


def test_an_extra_critic_of_another_vocabulary_is_one_clear_error(tmp_path, monkeypatch):
    from vqagan_lib.training import engine

    real = engine.load_critic

    def other_vocabulary(name, vocab=None):  # "other": the shipped critic with its answers in another order
        critic = real("critic-easyvqa" if name == "other" else name, vocab=vocab)
        if name == "other":
            critic.vocab = dataclasses.replace(critic.vocab, answers=list(reversed(critic.vocab.answers)))
        return critic

    monkeypatch.setattr(engine, "load_critic", other_vocabulary)
    cfg = tiny_config(tmp_path, "other", steps=1)
    cfg.vqa.weight, cfg.vqa.extra_critics = 1.0, ("other",)
    with pytest.raises(VQAGanError, match="vqa.extra_critics: other has another vocabulary"):
        train(cfg, progress=False)
    assert not (tmp_path / "other").exists()


def test_batches_are_a_function_of_seed_and_step_and_shard_exactly():
    a = batch_indices(10, 8, step=3, seed=1)
    assert torch.equal(a, batch_indices(10, 8, step=3, seed=1))
    halves = torch.cat([batch_indices(10, 8, step=3, seed=1, rank=r, world=2) for r in range(2)])
    assert torch.equal(a, halves)  # two ranks together read exactly the single-process batch
    epoch = torch.cat([batch_indices(12, 4, step=s, seed=0) for s in range(3)])
    assert sorted(epoch.tolist()) == list(range(12))  # an epoch visits every example once


def test_vqa_term_modes_reach_the_reconstruction():
    class Critic(torch.nn.Module):  # frozen linear stand-in: logits from mean colour and question length
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 5).requires_grad_(False)

        def forward(self, images, questions):
            return self.lin(torch.cat([images.mean((2, 3)), (questions > 0).float().sum(1, keepdim=True)], 1))

    critic, x = Critic(), torch.rand(3, 3, 8, 8)
    batch = Batch(x, torch.tensor([[1, 2, 0], [3, 0, 0], [1, 1, 1]]), torch.tensor([0, 4, 2]))
    x_hat = x.clone().requires_grad_(True)
    loss, logs = vqa_loss(critic, x, x_hat, batch, VQAConfig(mode="true-answers", shift=0, noise=0))
    loss.backward()
    assert x_hat.grad.abs().sum() > 0 and set(logs) == {"train/vqa", "train/vqa_acc"}
    agree, _ = vqa_loss(critic, x, x.clone(), batch, VQAConfig(mode="agree-with-original", shift=0, noise=0))
    entropy = -(critic(x, batch.questions).softmax(-1) * critic(x, batch.questions).log_softmax(-1)).sum(-1).mean()
    assert agree.item() == pytest.approx(entropy.item(), rel=1e-5)  # x_hat == x: the KL part is zero


def test_rate_target_anneals_linearly_then_holds():
    cfg = RateConfig(weight=1.0, target=8.0, target_start=64.0, anneal_steps=100)
    assert [rate_target(cfg, s) for s in (0, 50, 100, 500)] == [64.0, 36.0, 8.0, 8.0]
    assert rate_target(RateConfig(target=8.0), 0) == 8.0


def test_critic_jitter_moves_pixels_but_keeps_gradients():
    torch.manual_seed(0)
    x = torch.zeros(4, 3, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0
    x.requires_grad_(True)
    moved = jitter(x, shift=3.0, noise=0.0)
    assert moved.shape == x.shape and not torch.allclose(moved, x)
    assert moved.sum(dim=(1, 2, 3)).detach() == pytest.approx(x.sum(dim=(1, 2, 3)).detach(), rel=0.05)  # shifted, not lost
    moved.sum().backward()
    assert x.grad.abs().sum() > 0
    assert torch.equal(jitter(x, 0.0, 0.0), x)


def test_seeded_run_matches_golden_log(tmp_path):
    torch.set_num_threads(1)
    result = train(tiny_config(tmp_path), progress=False)
    rows = [{k: v for k, v in row.items()} for row in result.history]
    if os.environ.get("VQAGAN_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(rows, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert [sorted(r) for r in rows] == [sorted(r) for r in golden]  # GAN columns appear at disc_start, val/ at evals
    for row, want in zip(rows, golden):
        assert row == pytest.approx(want, rel=1e-4, abs=1e-5), f"step {row['step']}"
    # The run folder: CSV + TensorBoard logs, resumable state, and the final codec with its card.
    run = Path(result.run_dir)
    assert (run / "log.csv").read_text().count("\n") == len(rows) + 1 and any((run / "tb").iterdir())
    card = load_card(result.checkpoint_path)
    assert card["kind"] == "codec" and card["seed"] == 3 and card["train_config"]["gan"]["weight"] == 0.5
    assert card["metrics"]["val/rate_bits"] > 0
    codec = load_codec(result.checkpoint_path)  # tables frozen, loads in eval mode
    assert codec.compress(torch.rand(2, 3, 64, 64)).shape == (2, 8)


def test_resume_continues_to_the_same_numbers(tmp_path):
    from vqagan_lib.apps.cli import main

    torch.set_num_threads(1)
    whole = train(tiny_config(tmp_path, "whole", steps=6), progress=False)
    part = tiny_config(tmp_path, "part", steps=6)
    args = ["train", "--no-progress", "--config", str(tmp_path / "cfg.json"), "--steps", "3"]
    (tmp_path / "cfg.json").write_text(json.dumps(__import__("dataclasses").asdict(part)))
    assert main(args) == 0  # the CLI: a JSON config plus a dotted override
    assert load_card(tmp_path / "part" / "state.safetensors")["step"] == 3
    resumed = resume(tmp_path / "part", progress=False, overrides=["--steps", "6"])
    assert [r["step"] for r in resumed.history] == list(range(1, 7))
    for a, b in zip(whole.history, resumed.history):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7), f"step {a['step']}"
    assert same(state_of(whole.model), state_of(resumed.model))
    assert same(state_of(whole.disc), state_of(resumed.disc))


def test_cli_refuses_bad_input(tmp_path, capsys):
    from vqagan_lib.apps.cli import main

    assert main(["train", "--gan.wieght", "1"]) == 2
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    (tmp_path / "bad.json").write_text("{nope")
    assert main(["train", "--config", str(tmp_path / "bad.json")]) == 2
    assert "bad.json: not valid JSON" in capsys.readouterr().err


def test_cli_train_starts_from_a_checkpoint(tmp_path):
    """--init: a 0-step generator stage from a shipped point saves that point's code with its prior refitted."""
    from vqagan_lib.apps.cli import main
    from vqagan_lib.models.codec import load_codec

    args = ["train", "--no-progress", "--init", "answers-5bit", "--stage", "generator", "--model.model", "fsq",
            "--model.answer_levels", "[6, 5]", "--steps", "0", "--data.limit_images", "40", "--data.val_images", "8",
            "--device", "cpu", "--out_dir", str(tmp_path / "from-init")]
    assert main(args) == 0
    made, source = load_codec(tmp_path / "from-init" / "codec.safetensors"), load_codec("answers-5bit")
    assert torch.equal(made.answer_encoder.head.weight, source.answer_encoder.head.weight)
    assert main(["train", "--resume", str(tmp_path / "from-init"), "--init", "answers-5bit"]) == 2  # one start only


def test_cli_train_from_a_checkpoint_of_another_shape_is_one_line(tmp_path, capsys):
    from vqagan_lib.apps.cli import main

    args = ["train", "--no-progress", "--init", "answers-5bit", "--stage", "joint", "--model.model", "fsq",
            "--model.answer_levels", "[8, 6, 5]", "--steps", "1", "--device", "cpu", "--out_dir", str(tmp_path / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "answers-5bit: its weights do not fit this run's model config" in err
    assert not (tmp_path / "x").exists()


def test_the_same_engine_trains_the_vae(tmp_path):
    cfg = tiny_config(tmp_path, "vae", steps=2)
    cfg = __import__("dataclasses").replace(cfg, model=CodecConfig(model="vae", channels=8, latent_dim=8))
    result = train(cfg, progress=False)
    assert load_card(result.checkpoint_path)["kind"] == "vae"
    assert result.logs["train/rate_bits"] > 0 and "val/psnr" in result.logs  # KL in bits is the VAE's rate
