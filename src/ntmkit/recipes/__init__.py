"""Recipes: a training run as a small TOML file, read with the standard library's ``tomllib``.

A recipe names the task and the model, the settings every phase shares (``[settings]``: the
command line's option names without dashes) and an ordered list of phases (``[[phases]]``), each
with its budget in sequences and the settings it changes (batch, optimiser, learning rate and its
schedule, memory sizes, task options such as ``min_items``), whether it stops once the task is
learned (``until_learned``) and whether it starts a fresh optimiser (``fresh_optimizer``; else it
carries the optimiser's state on from the phase before). For example::

    task = "priority_sort"
    model = "ntm"
    [settings]
    read_heads = 4
    [[phases]]
    sequences = 860160
    learning_rate = 1e-3
    lr_schedule = "614400:1e-4"
    [[phases]]
    sequences = 163840
    batches = 128
    learning_rate = 3e-5
    fresh_optimizer = true

``ntm train RECIPE`` (a shipped recipe's name, a path, or a run directory) runs every phase in one
run directory and resumes in the right phase; flags given on the command line win over the recipe.
:func:`resolve` is the one place the order is written: the option's default, then the task's
recommended setting, then the recipe's ``[settings]``, then the phase's, then the flags given.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import NTMError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover (Python 3.10)
    import tomli as tomllib

PHASE_KEYS = ("sequences", "until_learned", "fresh_optimizer")
TOP_KEYS = {"name", "description", "task", "model", "seed", "shipped", "settings", "phases"}
# Options a recipe does not hold: the budget is the phases', the directories are the run's.
NOT_IN_RECIPES = {
    "task", "model", "seed", "epochs", "steps_per_epoch", "keep_training", "max_minutes", "preset",
    "checkpoint_dir", "train_log_dir", "figure_dir", "sequences", "quiet", "axis", "values", "seeds",
    "first_seed", "evaluate", "jobs", "sweep_dir", "suite", "quick", "history", "run_dir", "config",
}  # fmt: skip
CONFIG = "config.toml"


class RecipeError(NTMError):
    """A recipe file that cannot run: the message names the file, the key and the fix."""


@dataclass
class Phase:
    """One phase: its budget, its stop rule, its optimiser and the settings it changes."""

    sequences: int
    until_learned: bool = False
    fresh_optimizer: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recipe:
    name: str
    task: str
    model: str
    phases: list[Phase]
    settings: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    seed: int | None = None
    shipped: str | None = None  # the shipped model it makes
    source: str = ""  # where it was read from

    @property
    def sequences(self) -> int:
        """The budget of all its phases, in sequences."""
        return sum(p.sequences for p in self.phases)

    def with_flags(self, flags: dict[str, Any]) -> Recipe:
        """This recipe with ``flags`` (given on the command line) winning over every phase's settings."""
        flags = dict(flags)
        task, model, seed = flags.pop("task", self.task), flags.pop("model", self.model), flags.pop("seed", self.seed)
        phases = [
            dataclasses.replace(p, settings={k: v for k, v in p.settings.items() if k not in flags})
            for p in self.phases
        ]
        return dataclasses.replace(
            self, task=task, model=model, seed=seed, settings={**self.settings, **flags}, phases=phases
        )


def options():
    """Option name -> its :class:`ntmkit.options.Option`, for the options a recipe may set."""
    from ..options import OPTIONS

    return {
        o.name: o for o in OPTIONS if o.name not in NOT_IN_RECIPES and o.group in ("task", "model", "training", "files")
    }


def shipped_dir():
    return resources.files(__name__)


def shipped() -> list[str]:
    """The names of the shipped recipes."""
    return sorted(p.name[: -len(".toml")] for p in shipped_dir().iterdir() if p.name.endswith(".toml"))


def find(spec: str) -> Path:
    """The file a recipe ``spec`` names: a shipped recipe's name, a TOML file, or a run directory
    (its ``config.toml``)."""
    path = Path(spec)
    if path.is_dir():
        if not (path / CONFIG).is_file():
            raise RecipeError(f"{path} holds no {CONFIG}: give a run directory written by 'ntm train', or a recipe")
        return path / CONFIG
    if path.is_file():
        return path
    if "/" not in spec and not spec.endswith(".toml"):
        candidate = shipped_dir() / f"{spec}.toml"
        if candidate.is_file():
            return Path(str(candidate))
    raise RecipeError(
        f"no recipe {spec!r}: give a shipped recipe ({', '.join(shipped())}), a .toml file or a run directory"
    )


def load(spec: str) -> Recipe:
    """Read and check a recipe (see :func:`parse`)."""
    path = find(spec)
    try:
        text = path.read_text()
    except OSError as e:
        raise RecipeError(f"recipe {path} cannot be read ({e.strerror}): check the path") from None
    return parse(text, str(path))


def parse(text: str, source: str = "<recipe>") -> Recipe:
    """A :class:`Recipe` from TOML ``text``; every key and type is checked, and every phase is resolved
    through the command line's checks (a task option the task does not take, a bad schedule)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"recipe {source} is not valid TOML ({e}): fix the syntax") from None
    where = f"recipe {source}"
    for key in raw:
        if key not in TOP_KEYS:
            raise RecipeError(f"{where}: unknown key {key!r}: use {', '.join(sorted(TOP_KEYS))}")
    for key in ("task", "model"):
        if not isinstance(raw.get(key), str):
            raise RecipeError(f"{where}: '{key}' must be given as a string (e.g. {key} = \"copy\")")
    from ..registry import MODELS
    from ..tasks import TASKS

    if raw["task"] not in TASKS:
        raise RecipeError(f"{where}: unknown task {raw['task']!r}: use one of {', '.join(TASKS)}")
    if raw["model"] not in MODELS:
        raise RecipeError(f"{where}: unknown model {raw['model']!r}: use one of {', '.join(MODELS)}")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63):
        raise RecipeError(f"{where}: 'seed' must be an integer in [0, 2**63), got {seed!r}")
    settings = _settings(raw.get("settings", {}), f"{where}: [settings]", phase=False)
    phases_raw = raw.get("phases")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise RecipeError(f"{where}: no [[phases]]: give at least one, with its budget (sequences = ...)")
    phases = []
    for k, p in enumerate(phases_raw, 1):
        pw = f"{where}: phase {k}"
        if not isinstance(p, dict):
            raise RecipeError(f"{pw}: must be a table ([[phases]])")
        if "sequences" not in p:
            raise RecipeError(f"{pw} has no budget: give sequences = N (the sequences it trains on)")
        sequences = p["sequences"]
        if isinstance(sequences, bool) or not isinstance(sequences, int) or sequences < 1:
            raise RecipeError(f"{pw}: 'sequences' must be a positive integer, got {sequences!r}")
        flags = {}
        for key in ("until_learned", "fresh_optimizer"):
            if key in p and not isinstance(p[key], bool):
                raise RecipeError(f"{pw}: '{key}' must be true or false, got {p[key]!r}")
            flags[key] = bool(p.get(key, False))
        rest = _settings({k: v for k, v in p.items() if k not in PHASE_KEYS}, pw, phase=True)
        phases.append(Phase(sequences, flags["until_learned"], flags["fresh_optimizer"], rest))
    recipe = Recipe(
        name=str(raw.get("name") or Path(source).stem),
        task=raw["task"],
        model=raw["model"],
        phases=phases,
        settings=settings,
        description=str(raw.get("description", "")),
        seed=seed,
        shipped=raw.get("shipped"),
        source=source,
    )
    for k in range(len(phases)):
        check_phase(recipe, k)
    return recipe


def _settings(raw: Any, where: str, phase: bool) -> dict:
    if not isinstance(raw, dict):
        raise RecipeError(f"{where} must be a table of settings")
    table = options()
    out = {}
    for key, v in raw.items():
        if key not in table:
            close = [n for n in table if key.replace("-", "_") == n]
            hint = f"did you mean {close[0]}?" if close else "see 'ntm train --help' for the option names (no dashes)"
            raise RecipeError(f"{where}: unknown key {key!r}: {hint}")
        o = table[key]
        if phase and o.group == "model":
            raise RecipeError(f"{where}: '{key}' sets the model, which a phase cannot change: move it to [settings]")
        out[key] = _typed(v, o, f"{where}: '{key}'")
    return out


def _typed(v: Any, o, where: str):
    if o.action in ("flag", "bool"):
        if not isinstance(v, bool):
            raise RecipeError(f"{where} must be true or false, got {v!r}")
        return v
    if o.type is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise RecipeError(f"{where} must be an integer, got {v!r}")
        return v
    if o.type is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise RecipeError(f"{where} must be a finite number, got {v!r}")
        return float(v)
    if not isinstance(v, str):
        raise RecipeError(f"{where} must be a string, got {v!r}")
    if o.choices and v not in o.choices:
        raise RecipeError(f"{where} must be one of {', '.join(map(str, o.choices))}, got {v!r}")
    return v


def resolve(recipe: Recipe, k: int) -> dict[str, Any]:
    """Phase ``k`` (from 0)'s settings, in the one order settings win: the recipe's ``[settings]``,
    then the phase's (the command line's flags are already in the recipe: :meth:`Recipe.with_flags`).
    What neither sets takes the task's recommended setting, else the option's default
    (:func:`ntmkit.options.value`). Includes ``task``, ``model`` and ``seed``."""
    out = {"task": recipe.task, "model": recipe.model, **recipe.settings, **recipe.phases[k].settings}
    if recipe.seed is not None:
        out["seed"] = recipe.seed
    return out


def namespace(recipe: Recipe, k: int, directory: Path, previous: Path | None):
    """The command line's namespace for phase ``k`` run in ``directory`` (starting from the phase
    before's weights in ``previous``): every option unset but those the recipe resolves to."""
    import argparse

    from ..options import OPTIONS

    ns = argparse.Namespace(**{o.name: None for o in OPTIONS})
    ns.train = ns.test = ns.visualize = ns.random_seq_len = False
    ns.command = "train"
    for key, v in resolve(recipe, k).items():
        setattr(ns, key, v)
    phase = recipe.phases[k]
    ns.keep_training = not phase.until_learned
    ns.checkpoint_dir = ns.train_log_dir = str(directory)
    ns.nproc = ns.nproc or 1
    ns.epochs = 1
    batch = ns.batches if ns.batches is not None else _default("batches", ns)
    ns.steps_per_epoch = max(1, math.ceil(phase.sequences / batch))
    ns.init_optimizer = False
    if previous is not None:
        ns.init_from = str(previous)
        ns.init_optimizer = not phase.fresh_optimizer
    return ns


def _default(name: str, ns) -> Any:
    from ..options import value

    return value(ns, name)


def check_phase(recipe: Recipe, k: int) -> None:
    """Run the command line's checks on phase ``k``: one line naming the recipe and phase on failure."""
    from ..checks import validate
    from ..options import UsageError

    ns = namespace(recipe, k, Path("/nonexistent-recipe-check"), None)
    try:
        validate(ns, None)
    except (UsageError, NTMError) as e:
        raise RecipeError(f"recipe {recipe.source}: phase {k + 1}: {e}") from None


def dumps(recipe: Recipe, header: str = "") -> str:
    """The recipe as TOML (what ``config.toml`` holds); :func:`parse` reads it back to an equal recipe."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines.append(f"name = {_toml(recipe.name)}")
    if recipe.description:
        lines.append(f"description = {_toml(recipe.description)}")
    lines += [f"task = {_toml(recipe.task)}", f"model = {_toml(recipe.model)}"]
    if recipe.seed is not None:
        lines.append(f"seed = {recipe.seed}")
    if recipe.shipped:
        lines.append(f"shipped = {_toml(recipe.shipped)}")
    lines += ["", "[settings]", *(f"{k} = {_toml(v)}" for k, v in recipe.settings.items())]
    for p in recipe.phases:
        lines += ["", "[[phases]]", f"sequences = {p.sequences}"]
        if p.until_learned:
            lines.append("until_learned = true")
        if p.fresh_optimizer:
            lines.append("fresh_optimizer = true")
        lines += [f"{k} = {_toml(v)}" for k, v in p.settings.items()]
    return "\n".join(lines) + "\n"


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def attach_to_manifest() -> dict:
    """Give each manifest entry the shipped recipe that re-makes it (a recipe naming it with
    ``shipped = ...``): its name and text, and ``command`` = ``ntm train RECIPE``, one runnable
    command; the account of how the file itself was trained is kept under ``history``."""
    import json
    from pathlib import Path

    from .. import pretrained

    path = Path(pretrained.__file__).parent / "manifest.json"
    entries = json.loads(path.read_text())
    for name in shipped():
        r = load(name)
        if r.shipped in entries:
            entry = entries[r.shipped]
            if "history" not in entry:
                entry["history"] = entry.get("command", "")
            entry["command"] = f"ntm train {name}"
            entry["recipe"] = name
            entry["recipe_text"] = (shipped_dir() / f"{name}.toml").read_text()
    path.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return entries
