"""Write the benchmarks page's section on where a time step goes, from the stored JSON files.

    python benchmarks/speed_section.py

Reads benchmarks/results/profile_step_*.json (benchmarks/profile_step.py),
task_throughput.json (benchmarks/task_throughput.py), dnc_memory_scaling.json
(benchmarks/dnc_memory_scaling.py), bench_dnc_quick.txt (`ntm bench --model dnc --quick`) and
dnc_peers.json (benchmarks/dnc_peers.py), and replaces the text between the markers in docs/benchmarks.md.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
MARKERS = ("<!-- speed:begin -->", "<!-- speed:end -->")


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def profile_lines() -> list[str]:
    lines = []
    for model in ("ntm", "dnc"):
        data = load(f"profile_step_{model}.json")
        if not data:
            continue
        for p in data["profiles"]:
            lines += [
                f"**{p['model'].upper()}, batch {p['batch']}**, copy batches of length {p['length']} "
                f"({p['time_steps']} time steps): {p['forward_us_per_step']:.0f} us forward and "
                f"{p['forward_backward_us_per_step']:.0f} us forward + backward per time step "
                f"({p['sequences_per_second']:.0f} sequences/s at that length). Largest self times per time step "
                f"(`{data['command']}`; `graph_*_cpp_fused` are inductor's fused kernels, `## Call CompiledFxGraph` "
                "the compiled graphs' own time, `CompiledFunction*` and `TorchDynamo Cache Lookup` the per-call "
                "overhead of the compiled step):",
                "",
                "| share | us per time step | calls per time step | what |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {r['share']:.1%} | {r['self_us_per_step']:.1f} | {r['calls_per_step']:.1f} | `{r['name']}` |"
                for r in p["top"][:10]
            ]
            lines.append("")
    return lines


def throughput_lines() -> list[str]:
    data = load("task_throughput.json")
    if not data:
        return []
    lines = [f"`ntm train` against the tree before a change (`{data['command']}`; trees {data['trees']}):", ""]
    for task, t in data["tasks"].items():
        before = ", ".join(f"{v:.0f}" for v in t["before"]["runs"]) if "before" in t else "-"
        now = ", ".join(f"{v:.0f}" for v in t["this tree"]["runs"])
        ratio = f"{t['ratio']:.2f}x" if "ratio" in t else "-"
        lines.append(f"- {task}: {before} sequences/s before, {now} after; median ratio {ratio}")
    return [*lines, ""]


def dnc_lines() -> list[str]:
    lines = []
    bench = RESULTS / "bench_dnc_quick.txt"
    if bench.exists():
        tail = [ln for ln in bench.read_text().splitlines() if ln.strip()][-3:]
        lines += ["`ntm bench --model dnc --quick` (batch 32, lengths 1-20, N = 128): " + "; ".join(tail) + ".", ""]
    data = load("dnc_memory_scaling.json")
    if data:
        lines += [
            f"The DNC's cost against N (`{data['command']}`: eager, batch {data['batch']}, copy length "
            f"{data['length']}; every step's N x N link matrix is kept for the backward pass):",
            "",
            "| N | ms per time step | peak MiB | link floats kept per sequence |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r['memory_locations']} | {r['ms_per_time_step']:.2f} | {r['peak_mib']:.0f} | "
            f"{r['link_floats_kept_per_sequence']:,} |"
            for r in data["rows"]
        ]
        lines.append("")
    peers = load("dnc_peers.json")
    if peers:
        lines += [
            f"Against the public PyTorch DNCs, in one run at the same sizes ({peers['sizes']['controller']} units, "
            f"N = {peers['sizes']['N']}, W = {peers['sizes']['W']}, {peers['sizes']['read_heads']} read head; "
            f"`{peers['command']}`, each peer from its own clone at the commit below): training sequences per "
            f"second on copy length {peers['copy_length']} ({peers['time_steps']} time steps), batch "
            f"{peers['batch']}, one thread, min / median / max of the models' turns:",
            "",
            "| model | parameters | sequences/s (min / median / max) | median against our eager |",
            "|---|---|---|---|",
        ]
        eager = peers["rows"][0]["median"]
        for r in peers["rows"]:
            v = r["sequences_per_second"]
            lines.append(
                f"| {r['model']} | {r['parameters']:,} | {min(v):.1f} / {r['median']:.1f} / {max(v):.1f} | "
                f"{r['median'] / eager:.2f}x |"
            )
        lines += ["", "Peer commits: " + ", ".join(f"{k} {v[:10]}" for k, v in peers["peer_commits"].items()), ""]
    return lines


def main() -> None:
    body = [
        MARKERS[0],
        "## Where a time step goes",
        "",
        "Written by `python benchmarks/speed_section.py` from the stored JSON files; every figure here was taken "
        "with nothing else running on the 2-core machine.",
        "",
        *profile_lines(),
        *throughput_lines(),
        *dnc_lines(),
        MARKERS[1],
    ]
    text = PAGE.read_text()
    if MARKERS[0] in text:
        start, end = text.index(MARKERS[0]), text.index(MARKERS[1]) + len(MARKERS[1])
        text = text[:start] + "\n".join(body) + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
    PAGE.write_text(text)
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
