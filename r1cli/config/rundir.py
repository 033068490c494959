"""The run directory: the one owner of every path inside ``runs/<name>/`` (ARCHITECTURE.md, "Run directory").

Torch-free: the CLI, the stages and the Snakefile's ``Plan`` all ask it. ``Plan`` (r1cli.pipeline.dag) converts
its paths to the run-relative strings Snakemake wants; everything else takes absolute :class:`~pathlib.Path`\\ s.

```
config.yaml                              frozen resolved recipe
base/model/                              the embedded model, built (embedded:tiny)
data/{train,test,prepared,clean,passrates,filtered,limr}.parquet, data/passrates/shard-I-of-N.parquet
warmup/{sft,value,prm}/{model,checkpoints,metrics.jsonl}
rl/<stage>/{model,critic,checkpoints,metrics.jsonl,trajectories.jsonl,DONE}
long2short/{model,...}
eval/<model>/<benchmark>/<sampling hash>/{samples.jsonl,metrics.json}
report/   logs/
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: named models of a run besides its RL stages
MODEL_NAMES = ("base", "sft", "final", "long2short")


def _as_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None or isinstance(cfg, dict):
        return cfg or {}
    from r1cli.config.load import to_dict

    return to_dict(cfg)


@dataclass(frozen=True)
class RunDir:
    """Paths of one run. ``cfg``: the resolved recipe (``Recipe`` or its dict); only the model names need it."""

    root: Path
    cfg: dict[str, Any]

    def __init__(self, root: str | Path, cfg: Any = None) -> None:
        object.__setattr__(self, "root", Path(root))
        object.__setattr__(self, "cfg", _as_dict(cfg))

    @classmethod
    def load(cls, root: str | Path) -> RunDir:
        """A run dir with its frozen config (``config.yaml``) read back."""
        from r1cli.config.load import load_frozen

        return cls(root, load_frozen(root))

    # --- fixed places --------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def events(self) -> Path:
        return self.logs / "events.jsonl"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def long2short(self) -> Path:
        return self.root / "long2short"

    def data(self, name: str) -> Path:
        """``data/<name>.parquet``: train, test, prepared, clean, passrates, filtered, limr, or a mined set."""
        return self.root / "data" / f"{name}.parquet"

    def filter_shard(self, i: int, n: int) -> Path:
        return self.root / "data" / "passrates" / f"shard-{i}-of-{n}.parquet"

    def warmup(self, kind: str) -> Path:
        """``warmup/<kind>``: sft, value or prm (``model/``, ``checkpoints/``, ``metrics.jsonl`` inside)."""
        if kind not in ("sft", "value", "prm"):
            raise ValueError(f"no warm-up {kind!r} (sft | value | prm)")
        return self.root / "warmup" / kind

    def rl(self, stage: str) -> Path:
        """``rl/<stage>`` (``model/``, ``critic/``, ``checkpoints/``, ``metrics.jsonl``, ``trajectories.jsonl``)."""
        return self.root / "rl" / stage

    def eval(self, model: str, benchmark: str | None = None, spec_hash: str | None = None) -> Path:
        p = self.root / "eval" / model
        if benchmark is not None:
            p = p / benchmark
            if spec_hash is not None:
                p = p / spec_hash
        return p

    # --- named models --------------------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return str(self.cfg["model"]["path"]).startswith("embedded:")

    @property
    def stage_names(self) -> list[str]:
        rl = self.cfg["rl"]
        return [s["name"] for s in rl["stages"]] if rl.get("enabled", True) else []

    def model_rel(self, name: str) -> str | None:
        """Run-relative folder of a named model (base, sft, final, an RL stage, long2short); None when the model
        lives outside the run (a Hub id or a path for ``base``, or a name that is not a model of the run)."""
        if name == "base":
            return "base/model" if self.embedded else None
        if name == "sft":
            return "warmup/sft/model" if self.cfg["warmups"]["sft"]["enabled"] else self.model_rel("base")
        if name == "final":
            stages = self.stage_names
            return self.model_rel(stages[-1]) if stages else self.model_rel("sft")
        if name in self.stage_names:
            return f"rl/{name}/model"
        if name == "long2short":
            return "long2short/model"
        return None

    def model(self, name: str) -> str:
        """The path (or Hub id) of a model named as in recipes and on the CLI: a named model of the run, else a
        folder relative to the run when one exists there, else ``name`` itself (a path or Hub id)."""
        rel = self.model_rel(name)
        if rel is not None:
            return str(self.root / rel)
        if name in ("base", "sft", "final"):
            return str(self.cfg["model"]["path"])  # base (and sft/final without stages) outside the run
        p = Path(name)
        if name not in MODEL_NAMES and not p.is_absolute() and (self.root / p).exists():
            return str(self.root / p)
        return name

    def is_run_model(self, name: str) -> bool:
        return self.model_rel(name) is not None
