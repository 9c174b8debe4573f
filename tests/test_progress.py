"""Progress bars suit where they run: a stored headless notebook run keeps the bar's last state, not '0%'."""
import io
import sys
import types

import pytest
from tqdm.std import tqdm as text_tqdm

from vqagan_lib import runtime


class ZMQInteractiveShell:  # the name ipykernel's shell has; progress_kind looks at no more than that
    pass


@pytest.fixture
def in_kernel(monkeypatch):
    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return monkeypatch


def test_outside_a_kernel_it_is_a_terminal(monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert runtime.progress_kind() == "terminal"


def test_a_jupyter_server_kernel_gets_the_widget(in_kernel):
    in_kernel.setenv("JPY_SESSION_NAME", "/work/notebooks/03_vae_gan.ipynb")
    assert runtime.progress_kind() == "widget"


def test_a_headless_kernel_gets_plain_text_that_ends_on_the_last_state(in_kernel):
    assert runtime.progress_kind() == "headless"
    out = io.StringIO()
    bar = runtime.progress_bar(range(50), desc="nb03", file=out)
    assert type(bar) is text_tqdm and bar.mininterval == runtime.HEADLESS_PROGRESS_INTERVAL
    for _ in bar:
        pass
    last = out.getvalue().replace("\n", "").split("\r")[-1]
    assert "100%" in last and "50/50" in last  # what nbclient keeps after folding the carriage returns
