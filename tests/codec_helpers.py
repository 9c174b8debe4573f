"""Small seeded codecs for the codec tests: random weights, but tables with real entropy."""
import torch

from vqagan_lib.models.codec import Codec, CodecConfig


def tiny_codec(seed: int = 0, latent_dim: int = 6, spread: float = 2.0, fit_steps: int = 60) -> Codec:
    """A 16-channel codec whose latents spread over several integers and whose prior fits them.

    The encoder's last layer is rescaled so latents of random images have std ~`spread`, and the
    prior is fitted to those latents for a few Adam steps, so the frozen tables have real entropy.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only contend on a shared machine
    try:
        return _fit(seed, latent_dim, spread, fit_steps)
    finally:
        torch.set_num_threads(threads)


def _fit(seed, latent_dim, spread, fit_steps) -> Codec:
    torch.manual_seed(seed)
    codec = Codec(CodecConfig(latent_dim=latent_dim, channels=16))
    x = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = codec.encode(x)  # (64, D)
        codec.encoder.head.weight.mul_(spread / y.std(dim=0, keepdim=True).t())
        codec.encoder.head.bias.zero_()
        y = codec.encode(x)
    optimizer = torch.optim.Adam(codec.entropy_model.parameters(), lr=0.05, foreach=False)
    for _ in range(fit_steps):
        optimizer.zero_grad()
        codec.entropy_model.noisy_bits(y).mean().backward()
        optimizer.step()
    codec.freeze_tables()
    return codec.eval()


def random_images(n: int, seed: int = 1, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))  # (n, 3, S, S)
