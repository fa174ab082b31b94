"""Write the benchmarks page's section on where a time step goes, from the stored JSON files.

    python benchmarks/speed_section.py

Reads benchmarks/results/profile_step_*.json (benchmarks/profile_step.py),
task_throughput.json (benchmarks/task_throughput.py), dnc_memory_scaling.json
(benchmarks/dnc_memory_scaling.py), bench_dnc_quick.txt (`ntm bench --model dnc --quick`),
dnc_peers.json (benchmarks/dnc_peers.py), heavy_tail/*.json (the seed A/B, `ntm sweep` files) and
cold_start_10_seeds.json (benchmarks/cold_start.py --generalise), cold_start_engine_*.json
(benchmarks/cold_start.py on the two compiling engines) and bench_history.jsonl (`ntm bench
--history`, benchmarks/bench_history.py), and replaces the text between the markers in
docs/benchmarks.md.
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
        for name, v in t.items():
            if name in ("before", "this tree") or not isinstance(v, dict):
                continue
            runs = ", ".join(f"{r:.0f}" for r in v["runs"])
            against = f"; {v['median'] / t['before']['median']:.2f}x the tree before" if "before" in t else ""
            lines.append(
                f"  - with `{data['trees'][name].split(' ', 1)[-1]}`: {runs} sequences/s; "
                f"{t[f'ratio {name}']:.2f}x this tree{against}"
            )
    return [*lines, ""]


def dnc_lines() -> list[str]:
    lines = []
    bench = RESULTS / "bench_dnc_quick.txt"
    if bench.exists():
        keep = ("eager throughput", "train throughput", "speedup over eager")
        tail = [ln for ln in bench.read_text().splitlines() if ln.startswith(keep)]
        lines += [
            "`ntm bench --model dnc --quick` (batch 32, lengths 1-20, N = 128; eager: the reference equations, "
            "differentiated automatically): " + "; ".join(tail) + ".",
            "",
        ]
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
            "| model | parameters | sequences/s (min / median / max) | median against our eager reference "
            "(first row) |",
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


def heavy_tail_lines() -> list[str]:
    """Seeds that fail to learn copy: the A/B over seeds 100-109 and the cold-start check of the
    defaults on seeds 200-209 (benchmarks/results/heavy_tail/*.json, cold_start_10_seeds.json)."""
    arms = [(name, load(f"heavy_tail/{name}.json")) for name in ("adam", "amsgrad", "adam-spike")]
    arms = [(name, d) for name, d in arms if d]
    if not arms:
        return []
    lines = [
        "## Seeds that do not learn copy",
        "",
        "Some seeds came close to learning copy on defaults and then lost it: on one batch the gradient's norm "
        "jumps to a hundred times its usual size (0.05 near convergence), the fixed clip of 10 lets it through, "
        "and Adam, dividing by a slowly moving second moment, turns it into a step of several learning rates on "
        "every parameter it touches; the machine falls back to chance and stays there. Three arms on seeds "
        "100-109 (no setting was chosen on them), each seed capped at 4 minutes, two runs at a time (so the "
        "seconds are not timings; sequences are the measure):",
        "",
        "| arm | command | learned | sequences to learn, per seed (- : not within the cap) |",
        "|---|---|---|---|",
    ]
    for name, d in arms:
        per_seed = ", ".join(f"{s['sequences']:,}" if s.get("learned") else "-" for s in d["seeds"])
        lines.append(f"| {d.get('note', name).split('.')[0]} | `{d['command']}` | {d['learned']} | {per_seed} |")
    lines.append("")
    cold = load("cold_start_10_seeds.json")
    if cold:
        lines += [
            f"The defaults with the spike clip, checked on ten more seeds (`{cold['command']}`, nothing else "
            "running; each run from a cold process with an empty compile cache, then scored on copy lengths "
            "beyond training, 100 fresh sequences per length, in its own 128 rows):",
            "",
            "| seed | wall s to stop | training s to learn | sequences to learn | wrong bits per sequence by length |",
            "|---|---|---|---|---|",
        ]
        for r in cold["runs"]:
            if "wall_seconds" not in r:
                lines.append(f"| {r['seed']} | not learned | - | - | - |")
                continue
            gen = ", ".join(f"{k}: {v:.3g}" for k, v in r.get("generalisation", {}).items())
            lines.append(
                f"| {r['seed']} | {r['wall_seconds']:.1f} | {r['learned_seconds']:.1f} | "
                f"{r['learned_sequences']:,} | {gen} |"
            )
        lines += [
            "",
            f"Learned {cold['learned']}; median wall seconds to stop {cold.get('median_wall_seconds', 0):.1f} "
            f"(max {cold.get('max_wall_seconds', 0):.1f}); median training seconds to learn "
            f"{cold.get('median_learned_seconds', 0):.1f}; no wrong bit at any scored length: "
            f"{cold.get('perfect_to_longest', '-')}.",
            "",
        ]
        base = load("cold_start_10_seeds_no_spike_clip.json")
        if base:
            pairs = [
                (a, b)
                for a in cold["runs"]
                for b in base["runs"]
                if a["seed"] == b["seed"] and "wall_seconds" in a and "wall_seconds" in b
            ]
            same = sum(a["learned_sequences"] == b["learned_sequences"] for a, b in pairs)
            spread = max((abs(a["wall_seconds"] - b["wall_seconds"]) for a, b in pairs), default=0.0)
            lines += [
                f"The same command again (`{base['command']}`): at that commit the CLI parsed `--spike_clip` but did "
                "not pass it to training (mended since, with a test that every training flag reaches the training "
                "config), so this is a second run of the defaults, not a run without the clip: learned "
                f"{base['learned']}, median wall seconds {base.get('median_wall_seconds', 0):.1f} (max "
                f"{base.get('max_wall_seconds', 0):.1f}), no wrong bit at any scored length: "
                f"{base.get('perfect_to_longest', '-')}. {same} of {len(pairs)} seeds learned at the same sequence "
                f"count as in the table above, and the wall seconds of these identical runs differ by up to "
                f"{spread:.1f} s: differences of that size are this machine's noise.",
                "",
            ]
    return lines


def engine_lines() -> list[str]:
    """Cold starts with the step compiled before training (--engine compiled) and while training
    runs eagerly (--engine auto, the default): cold_start_engine_{auto,compiled}.json."""
    arms = [(name, load(f"cold_start_engine_{name}.json")) for name in ("compiled", "auto")]
    if not all(d for _, d in arms):
        return []
    lines = [
        "## Training while the step compiles",
        "",
        "On an empty compile cache, compiling the step (forward and backward, the memory size symbolic) takes "
        "30-60 s, and with `--engine compiled` nothing trains meanwhile. The default engine, `auto`, trains "
        "eagerly from the first step while a helper process on the other core compiles the same step into the "
        "on-disk compile cache; then the training process compiles it from the cache (about 3 s) and goes on "
        "compiled. A marker in the cache directory records the steps the cache holds, so on a warm cache `auto` "
        "compiles in-process at once, as `compiled` does. Both arms on seeds 0-4, in one sitting, nothing else "
        "running (`python benchmarks/cold_start.py --seeds 0,1,2,3,4` with and without "
        "`--flags '--engine compiled'`):",
        "",
        "| engine | seed | wall s to stop | first step done at s | compiled from step | training s to learn "
        "| sequences to learn |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in arms:
        assert d is not None
        for r in d["runs"]:
            if "wall_seconds" not in r:
                lines.append(f"| {name} | {r['seed']} | not learned | - | - | - | - |")
                continue
            lines.append(
                f"| {name} | {r['seed']} | {r['wall_seconds']:.1f} | {r['first_step_seconds']:.1f} | "
                f"{r['compiled_from_step']} | {r['learned_seconds']:.1f} | {r['learned_sequences']:,} |"
            )
    lines.append("")
    for name, d in arms:
        assert d is not None
        lines.append(
            f"- `{name}`: learned {d['learned']}; first step done at a median of "
            f"{d['median_first_step_seconds']:.1f} s (max {d['max_first_step_seconds']:.1f}); median wall seconds "
            f"to stop {d['median_wall_seconds']:.1f} (max {d['max_wall_seconds']:.1f})."
        )
    auto = arms[1][1]
    assert auto is not None
    switch = [r["compiled_from_step"] for r in auto["runs"] if r.get("compiled_from_step")]
    lines += [
        "",
        f"The first step now comes within seconds of launching. The time to stop did not fall: the eager phase "
        f"ran {min(switch)}-{max(switch)} steps, because the helper, compiling on one core beside the training "
        "process, takes longer than a compilation in the training process alone, and an eager step costs several "
        "compiled ones; the 1,000 steps after learning and the final check take a further 35-50 s of every run. "
        "The `compiled` arm's seed 1 (830,400 sequences) is the heavy tail of the section above: eager and "
        "compiled kernels round differently, so the two arms' runs of one seed part ways after the first steps, "
        "and one seed's outcome in either arm is chance, not a property of the engine.",
        "",
    ]
    return lines


def grad_flow_lines() -> list[str]:
    """Gradient explosions on N-grams with the feed-forward controller (grad_flow/*.json)."""
    data = load("grad_flow/ngrams-ff-seed0.json")
    if not data:
        return []
    b = data["breakdown"]
    picks = [r for r in b["per_step"] if r["t"] % 20 == 0 or r["t"] == len(b["per_step"]) - 1]
    lines = [
        "## Gradient explosions over long sequences",
        "",
        f"`ntm train --task ngrams` (feed-forward controller, defaults, seed 0; 200 time steps) reported 20 "
        "non-finite steps in a row at step 2,204 and restored a checkpoint; the run repeats exactly. Its batch "
        f"at step {b['step']:,} (`{data['command']}`; {b['memory_rows']} memory rows) has a parameter-gradient "
        f"norm of {b['parameter_grad_norm']:.3g}. Per time step, the norm of the gradient reaching the write and "
        "the read head's weighting and the memory, from the last step back:",
        "",
        "| time step | write weighting | read weighting | memory |",
        "|---|---|---|---|",
    ]
    for r in reversed(picks):
        w = r["weighting_grad_norm"]
        lines.append(f"| {r['t']} | {w[0]:.3g} | {w[-1]:.3g} | {r['memory_grad_norm']:.3g} |")
    lines += [
        "",
        "The gradient grows backwards through time by about eight orders of magnitude within some 60 steps and "
        "stays there. The run's 10-step mean gradient norms reached 2e18 before its non-finite steps: growth of "
        "this kind, carried a little further, overflows float32. "
        "Bounding each sample's gradient reaching the state between time steps (`--state_grad_clip`, off by "
        "default) stops the compounding at its source. The same run with and without it (logged windows are 10 "
        "steps; cost: bits per sequence above the optimal estimator on the training batches):",
        "",
        "| run | steps | windows with mean gradient norm > 100 | largest | non-finite restores | mean cost, "
        "last 500 steps |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        lines.append(
            f"| `{r['run'].split('/')[-1]}` | {r['steps']:,} | {r['windows_over_100']} | "
            f"{r['largest_window_mean_grad_norm']:.3g} | {r['non_finite_restores']} | "
            f"{r['mean_cost_last_500_steps']:.1f} |"
        )
    lines += [
        "",
        "(`nan-repro`: `ntm train --task ngrams --seed 0 --epochs 1 --steps_per_epoch 2400 --report_interval 50 "
        "--max_to_keep 100`; `nan-sgc1`: the same with `--state_grad_clip 1`.) Neither run learned N-grams in "
        "this budget (about 69 bits per sequence above the optimal estimator on 100 fresh sequences at the end): "
        "the bound removes the explosions, not the reason the feed-forward machine does not learn this task.",
        "",
    ]
    return lines


def history_rows() -> list[dict]:
    """The lines of bench_history.jsonl (`ntm bench --history`), oldest first; [] without the file."""
    path = RESULTS / "bench_history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def history_lines(entries: list[dict]) -> list[str]:
    """The history of `ntm bench` runs: one row per entry of ``entries`` (:func:`history_rows`)."""
    if not entries:
        return []
    lines = [
        "## History of `ntm bench`",
        "",
        "Each row is one run of the command shown, at the commit shown, with nothing else running, recorded by "
        "`ntm bench ... --history benchmarks/results/bench_history.jsonl` or, for another source tree (a "
        "`git worktree` of the commit before a change), `python benchmarks/bench_history.py --tree DIR -- FLAGS`; "
        "training sequences per second at batch 32, lengths 1-20. For a model with hand-written operators (the "
        "DNC's link operator), eager is its reference equations, and the eager run with the operators is in its "
        "own column; DNC rows without that column were taken when eager meant the run with the operator:",
        "",
        "| date (UTC) | commit | command | eager | eager with hand-written operators | compiled | compiled / eager "
        "| seconds to converge (cold) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in entries:
        conv = ", ".join("not learned" if s is None else f"{s:g}" for s in e.get("seconds_to_converge") or []) or "-"
        fused = f"{e['eager_fused_at_32']:,.0f}" if "eager_fused_at_32" in e else "-"
        lines.append(
            f"| {e['date']} | {e['commit']} | `{e['run']}` | {e['eager_at_32']:,.0f} | {fused} | "
            f"{e['compiled_at_32']:,.0f} | {e['speedup']:.2f}x | {conv} |"
        )
    return [*lines, ""]


def targets_lines(rows: list[dict]) -> list[str]:
    """Each speed target against its latest stored figure (``rows``: :func:`history_rows`) and the
    command that wrote it."""
    ntm = [r for r in rows if r["run"].startswith("ntm bench") and "--model" not in r["run"]]
    dnc = [r for r in rows if r["run"].startswith("ntm bench --model dnc") and "eager_fused_at_32" in r]
    b1, warm = load("loop_throughput_batch1.json"), load("cold_start_warm.json")
    auto, ten = load("cold_start_engine_auto.json"), load("cold_start_10_seeds.json")
    peers = load("dnc_peers.json")
    if not (ntm and dnc and b1 and warm and auto and ten and peers):
        return []
    last = ntm[-1]
    ratios = sorted(r["speedup"] for r in dnc[-3:])
    train_b1 = b1["train"]
    compiled = next(r for r in peers["rows"] if r["model"] == "ntmkit DNC, compiled")
    lines = [
        "## Speed targets at a glance",
        "",
        "The latest stored figure for each target; '-> not met' where the figure misses it. Each figure's command "
        "wrote the JSON file this table is read from (nothing else running while it ran).",
        "",
        "| target | figure | command |",
        "|---|---|---|",
        f"| copy, batch 32, one process: >= 2,500 sequences/s | {last['compiled_at_32']:,.0f} sequences/s, "
        f"{last['speedup']:.2f}x eager ({last['commit']}) -> not met | `{last['run']}` |",
        f"| copy, batch 1, inside `ntm train --batches 1`: >= 150 sequences/s | "
        f"{train_b1['defaults']['sequences_per_second']:.0f} on defaults, "
        f"{train_b1['memory_sizes full']['sequences_per_second']:.0f} with `--memory_sizes full` (bare compiled "
        f"loop {b1['bench_sequences_per_second']:.0f}) -> not met | `{b1['command']}` |",
        f"| first step within 10 s of launching, empty cache | median {auto['median_first_step_seconds']:.1f} s "
        f"(max {auto['max_first_step_seconds']:.1f}) | `{auto['command']}` |",
        f"| `ntm train` on defaults, empty cache, to its stop: median <= 60 s over 5 seeds | median "
        f"{auto['median_wall_seconds']:.1f} s (max {auto['max_wall_seconds']:.1f}) -> not met | `{auto['command']}` |",
        f"| the same with a warm cache: <= 30 s | median {warm['median_wall_seconds']:.1f} s (max "
        f"{warm['max_wall_seconds']:.1f}; learned at a median of {warm['median_learned_seconds']:.1f} training s) "
        f"-> not met | `{warm['command']}` |",
        f"| 10 of 10 fresh seeds learn and stop within 180 s, cold | learned {ten['learned']}, max "
        f"{ten['max_wall_seconds']:.1f} s | `{ten['command']}` |",
        f"| ... and 8 of 10 make no wrong bit to length 80 | {ten['perfect_to_longest']} -> not met | "
        f"`{ten['command']}` |",
        f"| DNC compiled >= 3x its eager reference at batch 32 | lengths 1-20: {ratios[0]:.2f}-{ratios[-1]:.2f}x over "
        f"{len(ratios)} runs -> not met; length 20: {compiled['median'] / peers['rows'][0]['median']:.2f}x | "
        f"`ntm bench --model dnc --quick`; `{peers['command']}` |",
        "",
    ]
    warm_runs = [r for r in warm["runs"] if "wall_seconds" in r]
    after = [r["wall_seconds"] - r["learned_seconds"] for r in warm_runs]
    lines += [
        f"With a warm cache (`{warm['command']}`: one untimed run fills the cache, then each seed starts from it "
        "and compiles in-process from the first step), per seed: "
        + "; ".join(
            f"seed {r['seed']} {r['wall_seconds']:.1f} s to stop, learned at {r['learned_seconds']:.1f} s "
            f"({r['learned_sequences']:,} sequences)"
            for r in warm_runs
        )
        + f". Launch to first step, then the steps after learning and the final check take {min(after):.1f}-"
        f"{max(after):.1f} s of each run beside the learning, so a 30 s stop would need the machine learned in a "
        "few seconds; and the seed that needs 830,400 sequences on the compiled path (seed 1, the same count as in "
        "the engine comparison below) is still there.",
        "",
    ]
    return lines


def main() -> None:
    history = history_rows()
    body = [
        MARKERS[0],
        "## Where a time step goes",
        "",
        "Written by `python benchmarks/speed_section.py` from the stored JSON files; every figure here was taken "
        "with nothing else running on the 2-core machine.",
        "",
        *targets_lines(history),
        *profile_lines(),
        *throughput_lines(),
        *dnc_lines(),
        *heavy_tail_lines(),
        *engine_lines(),
        *grad_flow_lines(),
        *history_lines(history),
        MARKERS[1],
    ]
    text = PAGE.read_text()
    if MARKERS[0] in text:
        start, end = text.index(MARKERS[0]), text.index(MARKERS[1]) + len(MARKERS[1])
        text = text[:start] + "\n".join(body) + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
    from ntmkit.clidoc import reflow

    PAGE.write_text(reflow(text))
    print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
