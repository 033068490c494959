"""Error types shared by every layer. The CLI maps R1InputError to exit code 2."""

from __future__ import annotations


class R1Error(Exception):
    """Base class of r1's own errors."""


class R1InputError(R1Error):
    """Bad user input (config, data row, CLI argument). Message names file, row and field."""

    def __init__(
        self, message: str, *, file: str | None = None, row: int | None = None, field: str | None = None
    ) -> None:
        parts = []
        if file is not None:
            parts.append(str(file))
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field '{field}'")
        prefix = ": ".join([", ".join(parts)]) if parts else ""
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file, self.row, self.field = file, row, field


class R1ConfigError(R1InputError):
    """A recipe/config problem; the message names the YAML path (e.g. rl.stages.0.steps)."""
