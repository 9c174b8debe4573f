import pytest
import torch

from vqagan_lib.answerers.critic import Critic, CriticConfig, freeze, load_critic, save_critic, train_critic
from vqagan_lib.answerers.relation_critic import PROTOTYPES
from vqagan_lib.data.easyvqa import build_vocabulary, load_split
from vqagan_lib.errors import VQAGanError
from vqagan_lib.answerers.vqa_eval import evaluate


@pytest.fixture(scope="module")
def vocab():
    return build_vocabulary()


def tiny(vocab):
    torch.manual_seed(0)
    return Critic(CriticConfig(channels=4, dim=8, word_dim=8, hidden=8), vocab)


def questions(vocab, n):
    texts = ["what color is the shape?", "is there not a red circle?", "what shape is present?"]
    return torch.stack([vocab.encode(texts[i % 3]) for i in range(n)])  # (n,L)


def test_forward_shape(vocab):
    logits = tiny(vocab)(torch.rand(3, 3, 64, 64), questions(vocab, 3))
    assert logits.shape == (3, len(vocab.answers)) == (3, 13)


def test_frozen_means_frozen_but_pixels_get_gradients(vocab):
    model = freeze(tiny(vocab))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(4, 3, 64, 64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(model(x, questions(vocab, 4)), torch.tensor([5, 0, 2, 1]))
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not model.training  # BatchNorm uses its running statistics, dropout is off
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # not even BatchNorm statistics moved


def test_save_load_round_trip(vocab, tmp_path):
    model = freeze(tiny(vocab))
    save_critic(model, tmp_path / "c", {"name": "c"})
    loaded = load_critic(str(tmp_path / "c"))
    x, q = torch.rand(2, 3, 64, 64), questions(vocab, 2)
    assert torch.allclose(model(x, q), loaded(x, q))
    assert loaded.vocab.words == vocab.words and not any(p.requires_grad for p in loaded.parameters())


def test_wrong_kind_is_refused(tmp_path):
    from vqagan_lib.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "j", {"w": torch.zeros(1)}, {"name": "j", "kind": "codec"})
    with pytest.raises(VQAGanError, match="expected a 'critic'"):
        load_critic(str(tmp_path / "j"))


def test_train_a_few_steps():
    cfg = CriticConfig(channels=4, dim=8, word_dim=8, hidden=8, limit_images=16, images_per_batch=8, max_steps=3)
    model, metrics = train_critic(cfg, log=None)
    assert metrics["steps"] == 3 and not model.training


def test_shipped_critic_accuracy_on_test_slice():
    critic = load_critic("critic-easyvqa")
    split = load_split("test", limit_images=100)
    result = evaluate(split.images, split, {"critic": critic})
    assert result["critic"] >= 0.98
    assert critic.card["metrics"]["test_accuracy"] >= 0.99


def test_relation_critic_trains_a_few_steps_on_scenes_and_passes_gradients_to_pixels():
    from vqagan_lib.data.registry import DataChoice

    cfg = CriticConfig(data=DataChoice("sort-of-clevr"), head="relation", dim=8, word_dim=8,
                       hidden=8, limit_images=8, images_per_batch=4, questions_per_image=5, max_steps=3,
                       warmup_group="non-relational", warmup_steps=2)
    model, metrics = train_critic(cfg, log=None)
    assert metrics["steps"] == 3 and len(model.vocab.answers) == 12
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    ids = torch.stack([model.vocab.encode("what is the shape of the object closest to the red object?")] * 2)
    assert model.image(x).shape == (2, PROTOTYPES, 8 + 2)  # an object per colour prototype: its features, its centroid
    model(x, ids).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_the_relation_head_finds_a_named_colour_at_its_centroid():
    """The find step: seeded from the scenes' pixels, a prototype sits on each colour, and a name that picks
    one prototype puts the attention on that object, its centroid where the generator drew it."""
    from vqagan_lib.answerers.relation_critic import ObjectEncoder
    from vqagan_lib.data import sort_of_clevr

    scenes = sort_of_clevr.generate_scenes(64, seed=3)
    images = sort_of_clevr.render(scenes)  # (64,3,64,64) uint8
    encoder = ObjectEncoder(8).eval()
    encoder.seed_prototypes(images)
    red = torch.tensor(sort_of_clevr.PALETTE["red"]) / 127.5 - 1
    k = int(((encoder.prototypes - red) ** 2).sum(1).argmin())
    assert ((encoder.prototypes[k] - red).abs() < 0.02).all()  # k-means found the red of the palette
    with torch.no_grad():
        centroid = encoder(images.float() / 255)[:, k, 8:]  # (B,2) in [-1, 1]
    expected = scenes[:, sort_of_clevr.COLORS.index("red"), 1:].float() / 63 * 2 - 1  # the red object's centre
    assert (centroid - expected).abs().max() < 0.5 / 63  # within half a pixel


def test_questions_per_image_draws_a_subset():
    from vqagan_lib.answerers.critic import ask

    g = torch.Generator().manual_seed(0)
    assert ask([4, 5, 6], None, g) == [4, 5, 6] and ask([4, 5, 6], 9, g) == [4, 5, 6]
    drawn = ask(list(range(36)), 8, g)
    assert len(drawn) == len(set(drawn)) == 8 and set(drawn) <= set(range(36))


def test_unknown_head_is_refused(vocab):
    with pytest.raises(VQAGanError, match="unknown 'mlp'"):
        Critic(CriticConfig(head="mlp"), vocab)


def test_warmup_asks_only_its_group_and_an_unknown_group_is_one_clear_error():
    from vqagan_lib.answerers.critic import warmup_questions
    from vqagan_lib.data.registry import get_dataset
    from vqagan_lib.data.split import encode_questions

    data = get_dataset("sort-of-clevr")
    split = data.load_split("val", limit_images=3)
    by_image = encode_questions(split, data.build_vocabulary())[2]
    warm = warmup_questions(split, by_image, data, "non-relational")
    assert [len(qs) for qs in warm] == [18, 18, 18]  # 6 colours x 3 non-relational templates
    assert {split.types[j] for qs in warm for j in qs} == {"shape", "horizontal", "vertical"}
    assert warmup_questions(split, by_image, data, None) == by_image
    with pytest.raises(VQAGanError, match="not a question group of sort-of-clevr"):
        warmup_questions(split, by_image, data, "yes/no")


def test_the_warm_up_is_a_learning_rate_cycle_of_its_own():
    from vqagan_lib.answerers.critic import lr_cycle, one_cycle

    cfg = CriticConfig(lr=1e-2, epochs=1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr)
    total, sched = one_cycle(opt, cfg, n_images=100, batch=1, warmup_steps=40)  # 100 steps, the first 40 warm-up
    rates = []
    for step in range(1, total + 1):
        opt.step()
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
        if step == 40:
            sched = lr_cycle(opt, cfg, total - step)
    assert total == 100 and max(rates[:39]) == pytest.approx(cfg.lr, rel=0.05)
    assert rates[38] < cfg.lr / 100  # annealed by the warm-up's end
    assert max(rates[40:]) == pytest.approx(cfg.lr, rel=0.05) and rates[-1] < cfg.lr / 100  # a second cycle


def test_edge_jitter_recolours_only_edge_pixels_and_keeps_the_palette():
    from vqagan_lib.answerers.critic import jitter_edges
    from vqagan_lib.data import sort_of_clevr

    x = sort_of_clevr.load_split("test", limit_images=16).images.float() / 255  # (16,3,64,64), white background
    y = jitter_edges(x, 0.5, torch.Generator().manual_seed(0))
    on = (x < 0.99).any(dim=1)  # (B,H,W): object pixels
    changed = (y != x).any(dim=1)
    assert changed.sum() > 16 * 6  # several pixels an object at this rate
    near = torch.nn.functional.max_pool2d((~on).float()[:, None], 3, stride=1, padding=1)[:, 0].bool()  # background within one pixel
    near_object = torch.nn.functional.max_pool2d(on.float()[:, None], 3, stride=1, padding=1)[:, 0].bool()
    assert not (changed & on & ~near).any() and not (changed & ~on & ~near_object).any()  # edges only
    removed = changed & on
    assert bool((y.permute(0, 2, 3, 1)[removed] == 1.0).all())  # an object's pixel becomes background
    palette = torch.unique(x.permute(0, 2, 3, 1).reshape(-1, 3), dim=0)
    assert len(torch.unique(torch.cat([palette, y.permute(0, 2, 3, 1).reshape(-1, 3)]), dim=0)) == len(palette)  # no new colour
    assert torch.equal(jitter_edges(x, 0.0, torch.Generator().manual_seed(0)), x)
