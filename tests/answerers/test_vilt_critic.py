import pytest
import torch
from conftest import make_tiny_vilt

from vqagan_lib.answerers.critic import load_critic
from vqagan_lib.data.easyvqa import build_vocabulary
from vqagan_lib.errors import VQAGanError
from vqagan_lib.answerers.vilt_critic import MISSING_LOGIT, MODEL_ID, ViltCritic

LABELS = ["yes", "no", "red", "circle", "blue", "2"]  # a few VQA answers; "2" is not an easy-VQA answer


@pytest.fixture(scope="module")
def vilt_dir(tmp_path_factory):
    """A tiny ViLT saved exactly like the public checkpoint: model + processor (tokenizer, image processor)."""
    words = ["what", "color", "is", "the", "shape", "?", "there", "a", "red", "circle", "not"]
    return make_tiny_vilt(tmp_path_factory.mktemp("vilt"), LABELS, words)


@pytest.fixture(scope="module")
def vocab():
    return build_vocabulary()


def test_loads_and_maps_answers(vilt_dir, vocab):
    critic = ViltCritic.from_pretrained(vilt_dir, vocab)
    assert critic.coverage == pytest.approx(5 / 13)
    assert "teal" in critic.missing and "red" not in critic.missing
    assert critic.image_size == 32
    q = torch.stack([vocab.encode("what color is the shape?"), vocab.encode("is there not a red circle?")])
    logits = critic(torch.rand(2, 3, 64, 64), q)
    assert logits.shape == (2, 13)
    assert (logits[:, vocab.answer_index("teal")] == MISSING_LOGIT).all()
    raw = critic.model(pixel_values=critic.pixels(torch.rand(2, 3, 64, 64)), **critic.tokens(q)).logits
    assert raw.shape == (2, len(LABELS))


def test_tokens_come_from_the_vilt_tokenizer(vilt_dir, vocab):
    critic = ViltCritic.from_pretrained(vilt_dir, vocab)
    ids = critic.tokens(vocab.encode("what color is the shape?")[None])["input_ids"][0].tolist()
    assert ids[:8] == [2, 5, 6, 7, 8, 9, 10, 3]  # [CLS] what color is the shape ? [SEP]


def test_pixels_normalised_as_configured(vilt_dir, vocab):
    critic = ViltCritic.from_pretrained(vilt_dir, vocab)
    grey = critic.pixels(torch.full((1, 3, 64, 64), 0.5))
    assert grey.shape == (1, 3, 32, 32)
    assert grey[0, :, 0, 0].tolist() == pytest.approx([0.0, 0.1 / 0.3, 0.2 / 0.4])


def test_load_critic_vilt_spec_is_frozen_and_differentiable(vilt_dir, vocab):
    critic = load_critic(f"vilt:{vilt_dir}")
    assert not critic.training and not any(p.requires_grad for p in critic.parameters())
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    q = torch.stack([vocab.encode("is there a red shape?")] * 2)
    critic(x, q)[:, vocab.answer_index("yes")].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_missing_directory_says_what_to_download(tmp_path, vocab):
    with pytest.raises(VQAGanError, match=MODEL_ID):
        ViltCritic.from_pretrained(tmp_path / "nowhere", vocab)


def test_incomplete_directory_names_missing_files(tmp_path, vilt_dir, vocab):
    (tmp_path / "config.json").write_text((vilt_dir / "config.json").read_text())
    with pytest.raises(VQAGanError, match="model.safetensors"):
        ViltCritic.from_pretrained(tmp_path, vocab)
