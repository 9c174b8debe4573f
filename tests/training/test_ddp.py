"""Two CPU processes (Gloo) run the same train(cfg); DDP must keep their weights identical."""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WORKER = textwrap.dedent("""
    import hashlib, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from vqagan_lib.models.codec import CodecConfig
    from vqagan_lib.models.discriminator import DiscriminatorConfig
    from vqagan_lib.training.losses import GANConfig
    from vqagan_lib.training.engine import TrainConfig, train
    from vqagan_lib.training.batches import DataConfig

    out = Path(sys.argv[1])
    cfg = TrainConfig(model=CodecConfig(channels=8, latent_dim=8), data=DataConfig(limit_images=16, val_images=8),
                      gan=GANConfig(weight=0.5, disc_start=1, disc=DiscriminatorConfig(channels=(8, 8, 16), groups=4, feature_layer=2)),
                      steps=3, batch_size=8, seed=1, device="cpu", name="ddp", out_dir=str(out / "run"), log_every=1)
    result = train(cfg, progress=False)
    digest = hashlib.sha256()
    for module in (result.model, result.disc):
        for key, value in module.named_parameters():  # weights only: rank 0 alone freezes the coding tables
            digest.update(key.encode() + value.detach().contiguous().numpy().tobytes())
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else int(__import__("os").environ["RANK"])
    (out / f"rank{rank}.txt").write_text(digest.hexdigest() + " " + str(len(result.history)))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = str(free_port())
    procs = []
    for rank in range(2):
        env = dict(os.environ, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=port, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
        procs.append(subprocess.Popen([sys.executable, str(script), str(tmp_path)], env=env, cwd=Path(__file__).parents[1],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    (hash0, rows0), (hash1, rows1) = ((tmp_path / f"rank{r}.txt").read_text().split() for r in range(2))
    assert hash0 == hash1  # gradients were averaged: both ranks took the same steps
    assert (rows0, rows1) == ("3", "0")  # only rank 0 logs
    assert (tmp_path / "run" / "codec.safetensors").exists() and (tmp_path / "run" / "log.csv").exists()
