"""What notebook 07 shows of the playground: the answers as text, a pick as two pictures, the trade-off plot.

Figures are built as `matplotlib.figure.Figure` objects (no pyplot state), so widget callbacks can
redraw them many times without leaking windows, and tests can inspect them.
Introduced in notebooks/07_playground.ipynb.
"""
from vqagan_lib.playground import Answer, PickResult, Point


def _said(answer: Answer | None) -> str:
    if answer is None:
        return "-"
    return f"{answer.answer} ({answer.reading})" if answer.confidence is None else f"{answer.answer} ({answer.confidence:.0%})"


def answers_table(result: PickResult) -> str:
    """Each reader's answer on the original and on the reconstruction, as text (or why there are none)."""
    if result.message:
        return result.message
    lines = [f"Q: {result.question}   true answer: {result.true_answer or 'not known (typed or uploaded)'}",
             f"{'reader':12s} {'on the original':28s} on the reconstruction"]
    for name, answer in result.answers.items():
        lines.append(f"{name:12s} {_said(result.answers_original.get(name)):28s} {_said(answer)}")
    return "\n".join(lines)


def pick_figure(result: PickResult):
    """Original and reconstruction side by side, with the bits this image cost."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 2.9))
    for k, (image, title) in enumerate(((result.original, "original"), (result.reconstruction,
                                        f"{result.point}: {result.file_bits} bits\n({result.payload_bits} payload + header)"))):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.imshow(image.permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def tradeoff_figure(points: list[Point], new_point: Point | None = None, floor: float | None = 0.670):
    """Rate (bits/image, one stream) vs judged accuracy: the shipped ladder, and the new codec as a star."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    known = sorted((p for p in points if "stream_bits" in p.metrics), key=lambda p: p.metrics["stream_bits"])
    for judge, style, label in (("judge_rules", "o-", "rule judge"), ("judge_vilt", "s--", "ViLT judge")):
        have = [p for p in known if judge in p.metrics]
        if have:
            ax.plot([p.metrics["stream_bits"] for p in have], [100 * p.metrics[judge] for p in have], style,
                    color="tab:red", alpha=1.0 if judge == "judge_rules" else 0.5, label=f"shipped ladder, {label}")
    for p in known:
        ax.annotate(p.name, (p.metrics["stream_bits"], 100 * p.metrics.get("judge_rules", float("nan"))),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    if new_point is not None and "stream_bits" in new_point.metrics:
        for judge, marker, label in (("judge_rules", "*", "rule judge"), ("judge_vilt", "P", "ViLT judge")):
            if judge in new_point.metrics:
                ax.plot(new_point.metrics["stream_bits"], 100 * new_point.metrics[judge], marker, markersize=14,
                        color="tab:blue", label=f"{new_point.name}, {label}")
    if floor is not None:
        ax.axhline(100 * floor, color="black", linestyle=":", label=f"zero-bit floor ({100 * floor:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("bits per image (one stream, header included; log scale)")
    ax.set_ylabel("judged accuracy (%)")
    sources = sorted({p.source for p in known + ([new_point] if new_point else [])})
    ax.set_title(f"Where the new codec lands (metrics from: {', '.join(sources) or 'nothing yet'})", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
