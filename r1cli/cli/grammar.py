"""One CLI grammar for every ``r1`` command (README, "CLI grammar").

- :class:`R1Typer` is the Typer app every command module builds: its commands and groups show no type column
  for a plain flag (``--dry-run``, not ``--dry-run <bool>``).
- Renamed options keep working for one release as hidden aliases: ``cls=renamed({"--n": "--samples"})`` on a
  command rewrites the old spelling to the new one before parsing (never shown in ``--help``) and prints a
  one-line note on stderr. ``positional="--run"`` does the same for a positional run directory.

No torch here; nothing is imported but Typer and rich.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

#: an old spelling's replacement: a new option name; a function of the old option's value giving the new
#: tokens (``--reward-params '{"a": 1}'`` -> ``-p a=1``); or "" for a flag that only restated the default
#: (``--no-merge``), which is dropped
Rename = str | Callable[[str], list[str]]

REMOVAL = "the old spelling goes in the next release"


def _note(msg: str) -> None:
    from r1cli.cli.common import err_console

    err_console.print(f"[yellow]note:[/] {msg}", highlight=False, soft_wrap=True)


def _hide_flag_types(params: list[Any]) -> None:
    """A plain flag takes no value: show no ``<bool>`` type for it (Typer >= 0.2x shows one per option)."""
    for p in params:
        if getattr(p, "is_flag", False) and not getattr(p, "count", False) and p.metavar is None:
            p.metavar = ""


def _takes_value(params: list[Any]) -> set[str]:
    """Option names (long and short) that consume the next token as their value."""
    names: set[str] = set()
    for p in params:
        if getattr(p, "param_type_name", "") == "option" and not getattr(p, "is_flag", False):
            names.update(p.opts)
    return names


def rewrite_args(
    args: list[str], renames: dict[str, Rename], positional: str | None, takes_value: set[str]
) -> list[str]:
    """``args`` with every old option spelling replaced by the new one (and, with ``positional``, each
    positional token turned into ``positional TOKEN``); values of options are never rewritten."""
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            rest = args[i + 1 :]
            if positional:
                for r in rest:
                    out += _positional(positional, r)
                return out
            return [*out, *args[i:]]
        if not tok.startswith("-") or tok == "-":
            out += _positional(positional, tok) if positional else [tok]
            i += 1
            continue
        name, eq, inline = tok.partition("=")
        new = renames.get(name)
        if new == "":  # a flag that only restated the default (--no-merge): dropped
            _note(f"{name} is the default and no longer an option: drop it; {REMOVAL}")
            i += 1
            continue
        if new is not None:
            value: str | None = inline if eq else None
            if value is None and (callable(new) or new in takes_value) and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            if callable(new):
                replaced = new(value if value is not None else "")
                _note(f"{name} is deprecated: use {' '.join(replaced[:2])} ...; {REMOVAL}")
                out += replaced
            else:
                _note(f"{name} is now {new}; {REMOVAL}")
                out += [new] if value is None else [new, value]
            i += 1
            continue
        out.append(tok)
        if not eq and name in takes_value and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        i += 1
    return out


def _positional(option: str, token: str) -> list[str]:
    _note(f"the run directory is now {option} {token}; {REMOVAL}")
    return [option, token]


class _Grammar:
    """The r1 grammar for a click command or group: no ``<bool>`` on flags (help option included); old option
    spellings (``renames``) and a positional run dir (``positional``, commands only) rewritten before parsing."""

    renames: ClassVar[dict[str, Rename]] = {}
    positional: ClassVar[str | None] = None
    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        _hide_flag_types(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        opt = super().get_help_option(ctx)  # type: ignore[misc]
        if opt is not None:
            _hide_flag_types([opt])
        return opt

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if self.renames or self.positional:
            args = rewrite_args(args, self.renames, self.positional, _takes_value(self.params))
        return super().parse_args(ctx, args)  # type: ignore[misc]


class R1Command(_Grammar, TyperCommand):
    """A command of the r1 grammar (see :class:`_Grammar` and the module doc)."""


class R1Group(_Grammar, TyperGroup):
    """A command group of the r1 grammar (its callback's options follow the same rules)."""


def renamed(renames: dict[str, Rename] | None = None, *, positional: str | None = None) -> type[R1Command]:
    """A command class whose old spellings (``renames``: old -> new) still work, hidden, for one release."""
    return type("R1Command", (R1Command,), {"renames": dict(renames or {}), "positional": positional})


def renamed_group(renames: dict[str, Rename]) -> type[R1Group]:
    return type("R1Group", (R1Group,), {"renames": dict(renames)})


def params_from_json(text: str) -> list[str]:
    """``--reward-params '{"scheme": "pm1"}'`` (old) -> ``-p scheme="pm1"`` (new); a bad object exits 2."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"must be a JSON object: {exc.msg}", param_hint="--reward-params") from None
    if not isinstance(obj, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--reward-params")
    out: list[str] = []
    for k, v in obj.items():
        out += ["-p", f"{k}={json.dumps(v)}"]
    return out


class R1Typer(typer.Typer):
    """``typer.Typer`` whose commands and groups follow the r1 grammar (R1Command / R1Group by default)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", R1Group)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or R1Command, **kwargs)
