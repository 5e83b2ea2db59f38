"""Draws docs/bench-http.png from the JSON `make bench-http` writes: one panel per workload,
a bar per scenario with the median req/s over the rounds and a whisker from the slowest to
the fastest round; the label gives the same-round ratio to plain proxying.

usage: chart.py bench-http.json bench-http.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

WORKLOADS = [("50B", "50-byte body"), ("16KiB", "16 KiB body"), ("zipf", "Zipf, 100k keys, 50 B")]
COLOURS = {
    "direct": "#9e9e9e",
    "proxy": "#616161",
    "envoy-cache": "#1f77b4",
    "hz-l1": "#d62728",
    "hz-l2": "#ff7f0e",
    "hz-norule": "#e6a0a0",
    "varnish": "#2ca02c",
    "nginx": "#17becf",
}


def main(src, dst):
    data = json.load(open(src))
    rows = data["summary"]
    panels = [(w, t) for w, t in WORKLOADS if any(r["workload"] == w for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6), squeeze=False)
    for ax, (workload, title) in zip(axes[0], panels):
        rs = [r for r in rows if r["workload"] == workload]
        names = [r["scenario"] for r in rs]
        med = [r["rps"]["median"] for r in rs]
        lo = [r["rps"]["median"] - r["rps"]["min"] for r in rs]
        hi = [r["rps"]["max"] - r["rps"]["median"] for r in rs]
        y = list(range(len(rs)))[::-1]
        ax.barh(y, med, xerr=[lo, hi], color=[COLOURS.get(n, "#444") for n in names],
                capsize=3, error_kw={"elinewidth": 1})
        ax.set_yticks(y)
        ax.set_yticklabels(names)
        ax.set_title(title)
        ax.set_xlabel("req/s (median, whisker = min-max over rounds)")
        top = max(r["rps"]["max"] for r in rs)
        ax.set_xlim(0, top * 1.35)
        for yi, r in zip(y, rs):
            label = f'{r["rps"]["median"]:,.0f}'
            if r.get("vs_proxy"):
                label += f'  {r["vs_proxy"]["median"]:.2f}x proxy'
            if workload == "zipf" and r.get("hit_ratio"):
                label += f'  hit {r["hit_ratio"]["median"]:.2f}'
            ax.text(r["rps"]["max"] + top * 0.02, yi, label, va="center", fontsize=7)
        ax.grid(axis="x", alpha=0.3)
    m = data["machine"]
    v = data["versions"]
    fig.suptitle(
        f'make bench-http, {data["date"]}: {m["nproc"]} cores, load {m["load1_min"]:.1f}-{m["load1_max"]:.1f}; '
        f'Envoy {v.get("envoy", "?")} --concurrency 1; {data["settings"]["wrk"]}; '
        f'{data["settings"]["rounds"]} rounds; hzcache {v.get("hzcache", "?")}',
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(dst, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
