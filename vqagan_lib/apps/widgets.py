"""Notebook 07's interactive playground: ipywidgets around `Playground`, wired in one place.

    image slider | upload ─┐
    question list | typed ─┼─> Playground.pick ──> picture, bits, every reader's answer
    rate point ────────────┘
    knobs (dotted overrides) + steps ─> Playground.finetune ──> a new rate point ──> the trade-off plot

Every callback only calls `Playground`, so the logic stays tested without Jupyter; this module is the
wiring, and `PlaygroundUI` can be driven from a test by setting widget values. Displayed without a live
kernel (a static page, a stored notebook), it says so in words instead of printing widget reprs.
Introduced in notebooks/07_playground.ipynb.
"""
import ipywidgets as W
from IPython.display import display

from vqagan_lib.apps.playground import Playground, Point, answers_table
from vqagan_lib.errors import VQAGanError
from vqagan_lib.evaluation.figures import pick_figure, tradeoff_figure

STATIC_TEXT = ("[the interactive playground: an image, a question and a rate point to pick, and knobs to fine-tune; "
               "run the notebook in JupyterLab (or Jupyter Notebook) to use it]")


def _label(point: Point, fine_tuned: bool = False) -> str:
    if fine_tuned:
        return f"{point.name} (fine-tuned)"
    return f"{point.name} ({point.nominal_bits:g} bits)" if point.nominal_bits else point.name


class PlaygroundUI:
    """The widgets of notebook 07. `ladder`: points judged on the playground's slice, for the plot;
    `new`: an already fine-tuned point to offer and to star on the plot."""

    def __init__(self, pg: Playground, image: int = 0, new: Point | None = None, ladder: list[Point] | None = None,
                 steps: int = 50, max_steps: int = 1000):
        self.pg, self.ladder, self.new, self.runs, self.upload_bytes = pg, ladder or pg.points, new, 0, None
        self.quiet = False  # True while the question list is being replaced
        self.points = {p.name: p for p in pg.points}
        self.image = W.IntSlider(value=image, min=0, max=len(pg.test.images) - 1, description="test image")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="or upload")
        self.question = W.Dropdown(description="question", layout=W.Layout(width="460px"))
        self.typed = W.Text(placeholder="...or type a question (easy-VQA words)", continuous_update=False,
                            layout=W.Layout(width="460px"))
        self.rate = W.Dropdown(options=[(_label(p), p.name) for p in pg.points], description="rate point")
        if new is not None:
            self._offer(new)
        self.pick_out, self.ft_out, self.plot_out = W.Output(), W.Output(), W.Output()
        # The knobs: each slider sets one dotted TrainConfig field, as `python -m vqagan_lib train` takes it.
        rates = sorted({p.nominal_bits for p in pg.points if p.nominal_bits})
        self.knobs = {
            "vqa.weight": W.FloatSlider(value=1.0, min=0.0, max=5.0, step=0.1, description="VQA weight"),
            "rate.weight": W.FloatLogSlider(value=1.0, base=10, min=-1, max=1, description="rate weight"),
            # the shipped points' own rates, exactly: a log slider would snap 6 to 6.06
            "rate.target": W.SelectionSlider(options=[(f"{r:g}", r) for r in rates] or [("none", None)],
                                             description="rate target (bits)"),
            "gan.weight": W.FloatSlider(value=0.1, min=0.0, max=1.0, step=0.05, description="GAN weight"),
            "model.latent_dim": W.Dropdown(options=sorted({4, 8, 16, 32} | {p.latent_dim for p in pg.points}),
                                           value=pg.points[0].latent_dim if pg.points else 16, description="latent size"),
        }
        self.steps = W.IntSlider(value=min(steps, max_steps), min=1, max=max_steps, description="steps")
        self.button = W.Button(description="fine-tune", button_style="primary")
        self.image.observe(self.on_image, names="value")
        self.upload.observe(self.on_upload, names="value")
        for w in (self.question, self.typed, self.rate):
            w.observe(self.show_pick, names="value")
        self.button.on_click(self.on_finetune)
        k = self.knobs
        self.box = W.VBox([W.HBox([self.image, self.upload]), self.question, self.typed, self.rate, self.pick_out,
                           W.HTML("<b>Fine-tune</b>"), W.HBox([k["vqa.weight"], k["rate.weight"]]),
                           W.HBox([k["rate.target"], k["gan.weight"]]), W.HBox([k["model.latent_dim"], self.steps, self.button]),
                           self.ft_out, self.plot_out])
        self.on_image()
        self.show_plot()

    def changes(self) -> dict:
        """The knobs as dotted overrides: what `Playground.finetune` and the command line take."""
        return {key: w.value for key, w in self.knobs.items()}

    def _offer(self, point: Point) -> None:
        self.points[point.name] = point
        self.rate.options = list(self.rate.options) + [(_label(point, fine_tuned=True), point.name)]

    def _set_questions(self, questions: list[str]) -> None:
        """New options, and the first one shown as chosen (a Dropdown that starts empty would stay blank).
        The caller redraws once, so the change itself draws nothing."""
        self.quiet = True
        try:
            self.question.options = questions
            self.question.value = questions[0] if questions else None
        finally:
            self.quiet = False

    def show_pick(self, *_):
        if self.quiet:
            return
        question = self.typed.value.strip() or (self.question.value or "")
        source = self.upload_bytes if self.upload_bytes is not None else self.image.value
        with self.pick_out:
            self.pick_out.clear_output(wait=True)
            try:
                result = self.pg.pick(source, question, self.points[self.rate.value])
            except VQAGanError as e:
                print(e)
                return
            display(pick_figure(result))
            print(answers_table(result))

    def on_image(self, *_):
        self.upload_bytes = None
        self._set_questions(self.pg.image(self.image.value)[1])
        self.show_pick()

    def on_upload(self, *_):
        if self.upload.value:
            self.upload_bytes = bytes(self.upload.value[0]["content"])
            self._set_questions([])  # an uploaded picture has no questions of its own: type one
            self.show_pick()

    def show_plot(self):
        with self.plot_out:
            self.plot_out.clear_output(wait=True)
            display(tradeoff_figure(self.ladder, self.new))

    def on_finetune(self, *_):
        self.button.disabled = True
        self.runs += 1
        try:
            with self.ft_out:
                self.ft_out.clear_output()
                try:
                    point = self.pg.finetune(self.changes(), steps=self.steps.value, name=f"widget-{self.runs}")
                except VQAGanError as e:
                    print(e)
                    return
                print(point.message)
            self.new = point
            self._offer(point)
            self.rate.value = point.name  # redraws the pick with the new codec
            self.show_plot()
        finally:
            self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs):
        """The widgets for a live kernel; words, not `VBox(children=...)`, for anything that shows only text."""
        bundle = self.box._repr_mimebundle_(**kwargs) or {}
        return {**bundle, "text/plain": STATIC_TEXT}
