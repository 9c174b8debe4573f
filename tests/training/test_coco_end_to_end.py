"""The real-photo path end to end: COCO-format data + a local-directory ViLT critic, train, compress, judge."""
import pytest
import torch
from conftest import make_tiny_vilt

from vqagan_lib.coding.bitstream import decode_images, encode_images
from vqagan_lib.models.codec import CodecConfig, load_codec
from vqagan_lib.data.coco import CocoVQADataset
from vqagan_lib.training.losses import GANConfig
from vqagan_lib.training.engine import DataConfig, TrainConfig, VQAConfig, train


@pytest.mark.slow
def test_train_on_coco_with_a_local_vilt_critic_then_compress(coco_fixture, tmp_path):
    torch.set_num_threads(1)
    words = "what color is the cat there a dog bus how many people are it sunny ?".split()
    vilt = make_tiny_vilt(tmp_path / "vilt", ["yes", "no", "black", "red", "2"], words)
    cfg = TrainConfig(
        model=CodecConfig(image_size=32, channels=16, latent_dim=4),
        data=DataConfig(name="coco", coco_root=str(coco_fixture), val_images=2),
        vqa=VQAConfig(weight=1.0, critic=f"vilt:{vilt}"),
        gan=GANConfig(weight=0.5, disc_start=1),
        steps=3, batch_size=2, log_every=1, eval_every=3, save_every=3, name="coco-e2e", out_dir=str(tmp_path / "run"),
    )
    result = train(cfg, progress=False)
    logged = set(result.history[-1])
    assert {"train/vqa", "train/g_adv", "train/rate_bits"} <= logged  # every term ran on COCO batches
    codec = load_codec(result.checkpoint_path)
    assert codec.cfg.image_size == 32
    ds = CocoVQADataset(coco_fixture, image_size=32)
    x = torch.stack([ds[i][0] for i in range(len(ds))])  # (N,3,32,32)
    path = tmp_path / "coco.vqg"
    path.write_bytes(encode_images(codec, x))
    images, _, _ = decode_images(codec, path.read_bytes(), str(path))
    assert images.shape == x.shape
    assert torch.equal(images, codec.decompress(codec.compress(x)))
    assert path.stat().st_size >= 6  # the header at least: the rate is read off the file


@pytest.mark.slow
def test_the_discrete_codec_trains_both_stages_on_coco_with_a_local_vilt_critic(coco_fixture, tmp_path):
    torch.set_num_threads(1)
    words = "what color is the cat there a dog bus how many people are it sunny ?".split()
    vilt = make_tiny_vilt(tmp_path / "vilt", ["yes", "no", "black", "red", "2"], words)
    common = dict(data=DataConfig(name="coco", coco_root=str(coco_fixture), val_images=2),
                  vqa=VQAConfig(critic=f"vilt:{vilt}"), steps=3, batch_size=2, log_every=1, eval_every=3, save_every=3)
    model = CodecConfig(model="fsq", image_size=32, channels=16, encoder_channels=8, answer_levels=(5, 3))
    answers = train(TrainConfig(model=model, stage="answers", name="coco-answers", out_dir=str(tmp_path / "a"), **common),
                    progress=False)
    assert "train/agree_with_critic" in answers.history[-1]  # ViLT has no answer head to share: a student reads the code
    generator = train(TrainConfig(model=model, stage="generator", name="coco-gen", out_dir=str(tmp_path / "g"), **common),
                      progress=False, init_from=answers.checkpoint_path)
    codec = load_codec(generator.checkpoint_path)
    ds = CocoVQADataset(coco_fixture, image_size=32)
    x = torch.stack([ds[i][0] for i in range(len(ds))])  # (N,3,32,32)
    images, _, _ = decode_images(codec, encode_images(codec, x))
    assert images.shape == x.shape and torch.equal(images, codec.decompress(codec.compress(x)))
