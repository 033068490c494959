"""Recipe loading: YAML with ``extends:``, ``scales:`` and ``--set a.b.0.c=v`` overrides, then validation.

Errors name the YAML path (``rl.stages.0.steps``) and, where known, the file.
"""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from r1cli.config.names import did_you_mean
from r1cli.config.schema import Recipe
from r1cli.errors import R1ConfigError

RECIPE_SUFFIX = ".yaml"


def recipes_dir() -> Path:
    return Path(str(resources.files("r1cli") / "recipes"))


def list_recipes() -> list[str]:
    return sorted(p.stem for p in recipes_dir().glob(f"*{RECIPE_SUFFIX}") if not p.stem.startswith("_"))


def recipe_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = recipes_dir() / f"{name_or_path}{RECIPE_SUFFIX}"
    if cand.exists():
        return cand
    known = list_recipes()
    raise R1ConfigError(
        f"unknown recipe '{name_or_path}'{did_you_mean(name_or_path, known)} (known: {', '.join(known)}; or give "
        "a path to a .yaml file)"
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise R1ConfigError(f"invalid YAML: {exc}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise R1ConfigError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", file=str(path)) from exc
    except OSError as exc:
        raise R1ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise R1ConfigError("a recipe must be a mapping at top level", file=str(path))
    return data


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Merge ``over`` into a copy of ``base``: mappings merge recursively, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_raw(name_or_path: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a recipe dict with its ``extends:`` chain merged (child wins)."""
    path = recipe_path(name_or_path)
    key = str(path.resolve())
    if key in _seen:
        raise R1ConfigError(f"circular extends: {' -> '.join((*_seen, key))}", file=str(path))
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent:
        parents = [parent] if isinstance(parent, str) else list(parent)
        merged: dict[str, Any] = {}
        for par in parents:
            ppath = Path(par)
            if not ppath.is_absolute() and (path.parent / par).exists():
                par = str(path.parent / par)
            merged = deep_merge(merged, load_raw(par, (*_seen, key)))
        data = deep_merge(merged, data)
    data.setdefault("name", path.stem)
    return data


def parse_value(text: str) -> Any:
    """Values of ``--set`` are YAML scalars/flow collections: 3 -> int, 1e-4 -> float, [a,b] -> list."""
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(v, str):
        try:  # YAML 1.1 reads 1e-4 as a string
            return float(v) if any(c in v for c in "eE.") and v.lower() not in ("inf", "nan") else v
        except ValueError:
            return v
    return v


def apply_set(data: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``a.b.0.c=value`` override in place (lists indexed by integers)."""
    if "=" not in assignment:
        raise R1ConfigError(f"--set expects KEY=VALUE, got '{assignment}'")
    dotted, raw = assignment.split("=", 1)
    keys = [k for k in dotted.strip().split(".") if k]
    if not keys:
        raise R1ConfigError(f"--set has an empty key: '{assignment}'")
    value = parse_value(raw)
    node: Any = data
    for i, k in enumerate(keys[:-1]):
        path = ".".join(keys[: i + 1])
        node = _step(node, k, path, create=True)
    last = keys[-1]
    if isinstance(node, list):
        idx = _index(last, node, dotted)
        node[idx] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise R1ConfigError(f"{dotted}: cannot set a key inside a {type(node).__name__}")
    return data


def _index(k: str, node: list[Any], path: str) -> int:
    try:
        idx = int(k)
    except ValueError as exc:
        raise R1ConfigError(f"{path}: '{k}' is not a list index") from exc
    if not -len(node) <= idx < len(node):
        raise R1ConfigError(f"{path}: index {idx} out of range (list has {len(node)} items)")
    return idx


def _step(node: Any, k: str, path: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(k, node, path)]
    if isinstance(node, dict):
        if k not in node or node[k] is None:
            if not create:
                raise R1ConfigError(f"{path}: no such key")
            node[k] = {}
        return node[k]
    raise R1ConfigError(f"{path}: cannot descend into a {type(node).__name__}")


def format_validation_error(
    exc: ValidationError, source: str | None = None, overrides: list[str] | None = None
) -> str:
    """One line per error, naming its YAML path; an error in a value that a ``--set`` gave names that ``--set``
    argument (not the recipe file)."""
    sets = []
    for a in overrides or []:
        dotted, raw = a.split("=", 1)
        sets.append(([k for k in dotted.strip().split(".") if k], a, raw))
    lines, blamed_file = [], False
    for err in exc.errors():
        parts = [str(p) for p in err["loc"]]
        loc = ".".join(parts) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + did_you_mean(parts[-1] if parts else "", known_keys(parts[:-1]))
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        inp = err.get("input")
        shown = "" if isinstance(inp, dict | list) or inp is None else f" (got {inp!r})"
        # the last --set whose key is this path, a parent of it, or inside it (a validator of the parent)
        hit = None
        for keys, a, raw in sets:
            n = min(len(keys), len(parts))
            if keys[:n] == parts[:n]:
                hit = (a, raw, keys == parts)
        if hit is not None:
            a, raw, exact = hit
            if exact and shown:
                shown = f" (got {raw.strip()!r})"
            lines.append(f"--set {a}: {loc}: {msg}{shown}")
        else:
            blamed_file = True
            lines.append(f"{loc}: {msg}{shown}")
    where = f"{source}: " if source and blamed_file else ""
    what = "invalid recipe" if blamed_file else "invalid --set override"
    return where + what + ":\n  " + "\n  ".join(lines)


def _arms(tp: Any) -> list[Any]:
    """The non-None members of a union annotation (``X | None`` -> [X]); [tp] for any other."""
    args = get_args(tp)
    if get_origin(tp) in (Union, UnionType):
        return [a for a in args if a is not type(None)]
    return [tp]


def known_keys(parts: list[str]) -> list[str]:
    """The keys a recipe accepts at the YAML path ``parts`` (``["rl", "stages", "0"]`` -> an RLStage's fields);
    [] where the path is free-form (a ``params`` dict) or unknown."""
    types: list[Any] = [Recipe]
    for part in parts:
        nxt: list[Any] = []
        for tp in (a for t in types for a in _arms(t)):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                field = tp.model_fields.get(part)
                nxt += [field.annotation] if field is not None else []
            elif get_origin(tp) in (list, tuple, dict):
                nxt.append(get_args(tp)[-1] if get_args(tp) else Any)
        types = nxt
    models = [a for t in types for a in _arms(t) if isinstance(a, type) and issubclass(a, BaseModel)]
    keys = [k for m in models for k in m.model_fields]
    return list(dict.fromkeys(keys))


def resolve(name_or_path: str, overrides: list[str] | None = None, scale: str | None = None) -> Recipe:
    """Load, extend, scale, override and validate a recipe."""
    data = load_raw(name_or_path)
    scales = data.pop("scales", {}) or {}
    if scale and scale != "full":
        if scale not in scales:
            raise R1ConfigError(
                f"recipe '{data.get('name')}' has no scale '{scale}'{did_you_mean(scale, scales)} "
                f"(has: {', '.join(sorted(scales)) or 'none'})"
            )
        data = deep_merge(data, scales[scale])
        data["scale"] = scale
    for s in overrides or []:
        try:
            apply_set(data, s)
        except R1ConfigError as exc:
            raise R1ConfigError(f"--set {s}: {exc}") from exc
    return validate(data, source=str(recipe_path(name_or_path)), overrides=overrides)


def validate(data: dict[str, Any], source: str | None = None, overrides: list[str] | None = None) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise R1ConfigError(format_validation_error(exc, source, overrides)) from exc


def to_dict(recipe: Recipe) -> dict[str, Any]:
    return recipe.model_dump(mode="json")


def to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(to_dict(recipe), sort_keys=False, allow_unicode=True)


def config_hash(obj: Any, length: int = 12) -> str:
    """Stable short hash of any JSON-able value (a config, a section, a sampling spec)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def section_hash(cfg: dict[str, Any], *sections: str) -> str:
    """Hash of dotted config sections (``warmups.sft``, ``seed``): the params hash of a Snakemake rule
    (r1cli.pipeline.dag.Plan.hash computes the same)."""

    def get(dotted: str) -> Any:
        node: Any = cfg
        for k in dotted.split("."):
            node = node[int(k)] if isinstance(node, list) else node.get(k)
            if node is None:
                return None
        return node

    return config_hash({s: get(s) for s in sections})


#: config sections each training stage depends on (the params of its Snakemake rule in workflows/rules)
STAGE_SECTIONS: dict[str, tuple[str, ...]] = {
    "sft": ("warmups.sft", "seed", "template"),
    "value": ("warmups.value", "rl.reward", "seed", "rl.train.critic_init"),
    "long2short": ("long2short", "seed"),
}


def stage_params_hash(cfg: Recipe | dict[str, Any], stage: str) -> str:
    """Params hash of a training stage: ``sft``, ``value``, ``long2short`` or ``rl/<stage name>`` (the latter
    equal to r1cli.pipeline.dag.Plan.rl_hash)."""
    data = to_dict(cfg) if isinstance(cfg, Recipe) else cfg
    if stage.startswith("rl/"):
        name = stage[3:]
        stages = [s for s in data["rl"].get("stages", []) if s["name"] == name]
        if not stages:
            raise ValueError(f"no RL stage named {name!r}")
        rl = {k: v for k, v in data["rl"].items() if k != "stages"}
        # resources (GPUs, ranks, time) do not change what the stage computes: N ranks train exactly as one
        stage_math = {k: v for k, v in stages[0].items() if k != "resources"}
        return config_hash({"rl": rl, "stage": stage_math, "seed": data["seed"], "template": data.get("template")})
    if stage not in STAGE_SECTIONS:
        raise ValueError(f"unknown training stage {stage!r} (sft, value, long2short, rl/<stage name>)")
    return section_hash(data, *STAGE_SECTIONS[stage])


def load_frozen(run_dir: str | Path) -> Recipe:
    """Load the frozen config of a run directory (what every stage command reads)."""
    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise R1ConfigError(
            f"no frozen config in {run_dir} (expected {path}); create the run with r1 pipeline"
        )
    data = _read_yaml(path)
    data.pop("_r1", None)
    return validate(data, source=str(path))
