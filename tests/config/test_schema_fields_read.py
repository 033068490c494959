"""Every recipe setting is read somewhere (issue 16: "a config key no code reads is a lie").

Walks the pydantic schema from ``Recipe`` and, for each field, looks for a read in ``r1cli/`` outside the
schema itself: an attribute access ``.name``, a quoted key ``"name"`` / ``'name'`` (dict access of a dumped
config, Snakefile ``config[...]``), or a ``name=`` keyword built from the section by ``**model_dump()``. A
field only read by a generic mechanism is listed in ALLOW with the reason; anything else unread fails.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from r1cli.config.schema import Recipe, Strict

ROOT = Path(__file__).resolve().parents[2] / "r1cli"

# Fields read dynamically (not by their name at the read site), with where they are read.
ALLOW: dict[str, str] = {
    "LengthTarget.*": "prepare.py dumps the section into add_length_targets(**length_target)",
    "MineHardConfig.from_stage": "checked at resolve against the stage the DAG mines (Recipe validator)",
}


def _models(tp: object) -> list[type[BaseModel]]:
    """BaseModel classes inside an annotation (Optional, list, dict, unions)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out: list[type[BaseModel]] = []
    for a in typing.get_args(tp):
        out += _models(a)
    if isinstance(tp, types.UnionType):
        for a in tp.__args__:
            out += _models(a)
    return out


def _walk() -> dict[str, set[str]]:
    """{field name: {"Model.field", ...}} over every model reachable from Recipe."""
    seen: set[type[BaseModel]] = set()
    fields: dict[str, set[str]] = {}
    todo: list[type[BaseModel]] = [Recipe]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for name, f in m.model_fields.items():
            fields.setdefault(name, set()).add(f"{m.__name__}.{name}")
            todo += _models(f.annotation)
    return fields


def _source() -> str:
    skip = {ROOT / "config" / "schema.py"}
    files = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (".py", "", ".smk") and p not in skip
             and "__pycache__" not in p.parts]
    return "\n".join(p.read_text(errors="replace") for p in files)


def _allowed(qual: str) -> bool:
    model = qual.split(".")[0]
    return qual in ALLOW or f"{model}.*" in ALLOW


def test_every_schema_field_is_read_somewhere() -> None:
    src = _source()
    unread: list[str] = []
    for name, quals in sorted(_walk().items()):
        pat = re.compile(rf"\.{name}\b|[\"']{name}[\"']|\b{name}=")
        if pat.search(src):
            continue
        unread += [q for q in sorted(quals) if not _allowed(q)]
    assert not unread, f"schema fields no code in r1cli/ reads (wire them or remove them): {unread}"


def test_removed_keys_are_refused_with_a_reason() -> None:
    import pytest

    from r1cli.config import resolve
    from r1cli.errors import R1ConfigError

    for key, word in [("rl.algorithm.kl.adaptive=true", "adaptive KL"), ("rl.algorithm.kl.horizon=5", "adaptive"),
                      ("rl.algorithm.value_loss_coef=0.5", "critic"), ("warmups.prm.coef=5", "process_coef"),
                      ("rl.eval_every=10", "eval stage"), ("rl.eval_size=10", "eval stage")]:
        with pytest.raises(R1ConfigError, match=word):
            resolve("tiny", [key])
    # every removed key is really gone from its section
    for m in Strict.__subclasses__():
        for k in m.removed_keys:
            assert k not in m.model_fields, (m.__name__, k)
