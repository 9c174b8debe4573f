"""Every figure of the course: the rate-accuracy plane, reconstruction grids, a playground pick.

Figures are built as `matplotlib.figure.Figure` objects (no pyplot state, and the global backend is
never switched), so a notebook keeps its inline backend, widget callbacks can redraw many times
without leaking windows, tests can inspect them, and the benchmark saves them with `fig.savefig`.
Introduced in notebooks/06_evaluation.ipynb (the playground's figures in notebooks/07_playground.ipynb).
"""
ANSWER_BITS = 4.585  # the information the answers hold per image (notebook 00): a lower bound on any rate


def _rate_axes(ax, floor: float | None, ylabel: str, title: str) -> None:
    """The axes every rate-accuracy figure shares: log rate, the zero-bit floor, grid and a legend
    outside the plot, so that no point hides behind it."""
    if floor is not None:
        ax.axhline(100 * floor, color="black", linestyle=":", label=f"zero-bit floor ({100 * floor:.1f}%)")
    ax.set_xscale("log")
    ax.set_xlabel("bits per image (one stream, header included; log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    ax.grid(alpha=0.3)


# One marker per codec, so each point is named by the legend instead of by labels that collide.
_MARKERS = "osD^v<>pPX*hH8d"


def rate_accuracy_figure(results, floor: float | None = None):
    """The benchmark's plane: each CodecResult at (stream bits, rule-judge accuracy), grouped by kind.

    Ours are joined by a line; every codec has its own marker and legend entry (no in-plot labels:
    points a fraction of a bit apart would print their names over each other).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 4.6))
    ax = fig.add_subplot()
    colours = {"ours": "tab:red", "ablation": "tab:gray", "classical": "tab:blue"}
    marker = 0
    for kind, colour in colours.items():
        group = sorted((r for r in results if r.kind == kind), key=lambda r: r.stream_bits)
        if kind == "ours" and group:
            ax.plot([r.stream_bits for r in group], [100 * r.judge_rules for r in group], "-", color=colour, alpha=0.5)
        for r in group:
            ax.plot(r.stream_bits, 100 * r.judge_rules, _MARKERS[marker % len(_MARKERS)], color=colour,
                    markersize=7, alpha=0.85, linestyle="none", label=f"{r.name} ({kind})")
            marker += 1
    ax.axvline(ANSWER_BITS, color="tab:green", linestyle=":", label="answer information (4.6 bits)")
    _rate_axes(ax, floor, "accuracy judged by the rule reader (%)", "Rate vs. answerability on easy-VQA test")
    fig.tight_layout()
    return fig


def grid_figure(originals, reconstructions: dict):
    """Originals (B,3,H,W) in [0,1] in the first row, one row per codec below."""
    from matplotlib.figure import Figure

    rows = [("original", originals)] + list(reconstructions.items())
    cols = len(originals)
    fig = Figure(figsize=(1.1 * cols + 1.6, 1.15 * len(rows)))
    axes = fig.subplots(len(rows), cols, squeeze=False)
    for i, (label, images) in enumerate(rows):
        for j in range(cols):
            ax = axes[i][j]
            ax.imshow(images[j].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig



def pick_figure(result):
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


def tradeoff_figure(points, new_point=None, floor: float | None = 0.670):
    """The playground's plane: the shipped ladder's Points by both judges, and the new codec as a star."""
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
    sources = sorted({p.source for p in known + ([new_point] if new_point else [])})
    _rate_axes(ax, floor, "judged accuracy (%)", f"Where the new codec lands (metrics from: {', '.join(sources) or 'nothing yet'})")
    fig.tight_layout()
    return fig
