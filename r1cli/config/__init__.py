"""Recipe schema and loading. Never imports torch."""

from r1cli.config.load import (
    apply_set,
    config_hash,
    deep_merge,
    list_recipes,
    load_frozen,
    load_raw,
    recipe_path,
    resolve,
    to_dict,
    to_yaml,
    validate,
)
from r1cli.config.schema import Recipe, Resources, RLStage

__all__ = [
    "RLStage",
    "Recipe",
    "Resources",
    "apply_set",
    "config_hash",
    "deep_merge",
    "list_recipes",
    "load_frozen",
    "load_raw",
    "recipe_path",
    "resolve",
    "to_dict",
    "to_yaml",
    "validate",
]
