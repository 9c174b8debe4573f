"""measure_codec: real bytes in, decoded images and judged accuracy out, for either kind of codec."""
import pytest
import torch

from vqagan_lib.answerers.judge_rules import RuleJudge
from vqagan_lib.answerers.vqa_eval import evaluate
from vqagan_lib.coding.bitstream import encode_images
from vqagan_lib.coding.images import to_pixels
from vqagan_lib.data.easyvqa import load_split
from vqagan_lib.data.pixels import as_float
from vqagan_lib.evaluation.measure import judge, measure_codec
from vqagan_lib.evaluation.metrics import psnr
from vqagan_lib.models.codec import Codec, CodecConfig, build_model


def continuous_codec():
    torch.manual_seed(0)
    codec = Codec(CodecConfig(latent_dim=6, channels=16)).eval()
    codec.freeze_tables()
    return codec


def discrete_codec(x):
    torch.manual_seed(0)
    codec = build_model(CodecConfig(model="fsq", answer_levels=(4, 3), encoder_channels=8, channels=16,
                                    answer_head_dim=16)).eval()
    with torch.no_grad():
        codec.entropy_model.fit(codec.symbols_of(codec.code(x)))  # the prior stage "answers" would fit
    codec.freeze_tables()
    return codec


@pytest.fixture(scope="module")
def split():
    torch.set_num_threads(1)
    return load_split("test", limit_images=8)


@pytest.mark.parametrize("kind", ["codec", "fsq"])
def test_measure_reads_rates_from_the_bytes_and_judges_the_decoded_images(split, kind, tmp_path):
    x = as_float(split.images)
    codec = continuous_codec() if kind == "codec" else discrete_codec(x)
    answerers = {"judge_rules": RuleJudge()}
    m = measure_codec(codec, split.images, split, answerers, scratch=tmp_path)
    assert m.images.shape == x.shape and m.images.device.type == "cpu"
    with torch.no_grad():
        # decoded from the bytes = the forward path, in the 8 bits an image is held in
        assert torch.equal(m.images, as_float(to_pixels(codec(x).x_hat).permute(0, 3, 1, 2)))
    assert m.stream_bits == 8 * len(encode_images(codec, x)) / len(x)
    assert (tmp_path / "stream.vqg").stat().st_size * 8 / len(x) == m.stream_bits
    singles = sorted((tmp_path / "files").iterdir())
    assert len(singles) == len(x) and m.file_bits == 8 * sum(p.stat().st_size for p in singles) / len(x)
    assert m.file_bits > m.stream_bits  # each standalone file pays the header again
    acc = evaluate(m.images, split, answerers)
    assert m.accuracy == {"judge_rules": acc["judge_rules"]} and m.per_type == acc["per_type"]
    assert m.psnr == pytest.approx(float(psnr(x, m.images).mean()))
    assert m.encode_per_s > 0 and m.decode_per_s > 0


def test_measure_without_files_or_scratch_and_judge_alone(split):
    codec = continuous_codec()
    m = measure_codec(codec, split.images, split, {"judge_rules": RuleJudge()}, files=False)
    assert m.file_bits is None and m.stream_bits > 0
    originals = judge(split.images, as_float(split.images), split, {"judge_rules": RuleJudge()})
    assert originals.accuracy["judge_rules"] == 1.0 and originals.psnr == 100.0  # the rule judge reads originals exactly
