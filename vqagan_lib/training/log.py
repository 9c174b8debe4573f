"""Every logged scalar of a run, in RUN_DIR/log.csv (pandas-ready) and RUN_DIR/tb (TensorBoard).

`tensorboard --logdir runs` shows every run's curves side by side.
Introduced in notebooks/03_vae_gan.ipynb.
"""
import csv
import io
from pathlib import Path

from vqagan_lib.fileio import atomic_write_text


class RunLog:
    """Rows of {"step": int, "train/...": float, "val/...": float}; inactive on DDP ranks other than 0."""

    def __init__(self, run_dir, history: list[dict] | None = None, enabled: bool = True):
        self.run_dir = Path(run_dir)
        self.history = list(history or [])  # rows restored from a resumed state come first
        self.enabled = enabled
        self._writer = None

    def write(self, row: dict) -> None:
        self.history.append(row)
        if not self.enabled:
            return
        self._write_csv()
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tb"))
        for key, value in row.items():
            if key != "step":
                self._writer.add_scalar(key, value, row["step"])

    def _write_csv(self) -> None:
        # Columns appear as terms switch on (GAN after disc_start, val/ at evals): rewrite the
        # whole file with the union of columns, atomically, so the file is always one table.
        columns = list(dict.fromkeys(k for row in self.history for k in row))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write_text(self.run_dir / "log.csv", buf.getvalue())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
