"""What the Snakefile asks of a resolved config: which stages exist, their inputs, outputs, hashes and
resources. Pure Python, no torch (the Snakefile imports this on login nodes)."""

from __future__ import annotations

from typing import Any

from r1cli.config.load import config_hash
from r1cli.config.rundir import RunDir
from r1cli.eval.spec import eval_benchmarks, spec_from_recipe, spec_hash, split_budget

# r1 stage names accepted by --until, mapped to Snakemake rule names.
STAGE_RULES = {
    "base": "base_model",
    "prepare": "prepare",
    "clean": "clean",
    "dedup": "clean",
    "decontaminate": "clean",
    "filter": "filter_merge",
    "sft": "sft",
    "rl": "rl_stage",
    "eval": "eval",
    "report": "report",
    "mine-hard": "mine_hard",
    "drop-solved": "drop_solved",
    "limr": "limr_select",
    "value": "value_warmup",
    "long2short": "long2short",
}


class Plan:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cfg = config

    # --- helpers --------------------------------------------------------------------------------------------
    def get(self, dotted: str) -> Any:
        node: Any = self.cfg
        for k in dotted.split("."):
            node = node[int(k)] if isinstance(node, list) else node.get(k)
            if node is None:
                return None
        return node

    def hash(self, *sections: str) -> str:
        return config_hash({s: self.get(s) for s in sections})

    @property
    def embedded(self) -> bool:
        return str(self.cfg["model"]["path"]).startswith("embedded:")

    @property
    def stages(self) -> list[dict[str, Any]]:
        return list(self.cfg["rl"]["stages"]) if self.cfg["rl"].get("enabled", True) else []

    @property
    def stage_names(self) -> list[str]:
        return [s["name"] for s in self.stages]

    def stage(self, name: str) -> dict[str, Any]:
        for s in self.stages:
            if s["name"] == name:
                return s
        raise ValueError(f"no RL stage named {name!r} (stages: {self.stage_names})")

    # --- models ----------------------------------------------------------------------------------------------
    def model_dir(self, name: str) -> str | list[str]:
        """Run-relative path of a named model (RunDir owns it); [] when it is an external id (no rule makes it)."""
        rel = RunDir(".", self.cfg).model_rel(name)
        return [] if rel is None else rel

    def start_model(self) -> str | list[str]:
        return self.model_dir("sft")

    def rl_init_name(self, stage: str) -> str:
        """The named model an RL stage starts from: ``sft`` (the first stage, and LIMR's retraining on the
        selected subset) or the previous stage."""
        idx = self.stage_names.index(stage)
        if idx == 0 or self.stage(stage).get("data") == "limr":
            return "sft"
        return self.stage_names[idx - 1]

    def rl_extra_inputs(self, stage: str) -> list[str]:
        """Inputs of an RL stage besides its model and data: the pretrained critic (VC-PPO/VAPO)."""
        idx = self.stage_names.index(stage)
        return ["warmup/value/model"] if idx == 0 and self.cfg["warmups"]["value"]["enabled"] else []

    def rl_init_model(self, stage: str) -> str | list[str]:
        return self.model_dir(self.rl_init_name(stage))

    # --- data ------------------------------------------------------------------------------------------------
    def pre_filter_data(self) -> str:
        cur = self.cfg["curation"]
        return (
            "data/clean.parquet"
            if (cur["dedup"]["enabled"] or cur["decontaminate"]["enabled"])
            else "data/prepared.parquet"
        )

    def train_data(self) -> str:
        return (
            "data/filtered.parquet" if self.cfg["curation"]["filter"]["enabled"] else self.pre_filter_data()
        )

    def sft_data(self) -> str:
        """The SFT warm-up's input in the run dir: 'train' = the training set before the pass-rate filter,
        'sft' = data.sft prepared; a file of the user's is no DAG input ([])."""
        src = self.cfg["warmups"]["sft"]["data"]
        if src == "sft":
            return "data/sft.parquet"
        return self.pre_filter_data() if src == "train" else []  # type: ignore[return-value]

    def prepare_hash(self, split: str) -> str:
        """Settings of the prepare rule for ``split`` (prepared, test or sft). ``data.sft`` moves only the sft
        split, so adding it to a run re-prepares nothing else (and the other splits keep the hash they had before
        the key existed)."""
        data = {k: v for k, v in self.cfg["data"].items() if k != "sft"}
        if split == "sft":
            data = {"sft": self.get("data.sft"), "data_dir": self.get("data.data_dir")}
        return config_hash({"data": data, **{s: self.get(s) for s in ("template", "system_prompt", "seed")}})

    def rl_data(self, stage: str) -> str:
        st = self.stage(stage)
        if st.get("data") == "hard":
            idx = self.stage_names.index(stage)
            if idx == 0:
                raise ValueError(f"stage {stage!r} uses data: hard but has no previous stage to mine")
            return f"data/hard-{self.stage_names[idx - 1]}.parquet"
        if st.get("data") == "unsolved":
            idx = self.stage_names.index(stage)
            if idx == 0:
                raise ValueError(f"stage {stage!r} uses data: unsolved but has no previous stage whose rollouts "
                                 "decide which prompts are solved")
            return f"data/unsolved-{self.stage_names[idx - 1]}.parquet"
        if st.get("data") == "limr":
            self.limr_reference()  # validates
            return "data/limr.parquet"
        return self.train_data()

    def limr_reference(self) -> str:
        """The RL stage whose reward trajectories LIMR scores; it must come before every ``data: limr`` stage."""
        lc = self.cfg["curation"].get("limr") or {}
        users = [s["name"] for s in self.stages if s.get("data") == "limr"]
        ref = lc.get("reference_stage")
        if not lc.get("enabled"):
            raise ValueError(f"stage(s) {users} use data: limr but curation.limr.enabled is false")
        if ref not in self.stage_names:
            raise ValueError(
                f"curation.limr.reference_stage={ref!r} is not an RL stage (stages: {self.stage_names})"
            )
        ri = self.stage_names.index(ref)
        for u in users:
            if self.stage_names.index(u) <= ri:
                raise ValueError(f"LIMR stage {u!r} must come after its reference stage {ref!r}")
        return str(ref)

    def limr_input(self) -> str:
        return f"rl/{self.limr_reference()}/DONE"

    def filter_merge_hash(self) -> str:
        """Settings of the band step: the band and, when set, the OREAL repeat bands (runs without repeat
        bands keep the hash they had before the option existed)."""
        sections = ["curation.filter.acc"]
        if self.get("curation.filter.repeat"):
            sections.append("curation.filter.repeat")
        return self.hash(*sections)

    def filter_stop(self) -> list[str]:
        """The stop strings the pass-rate rollouts use: ``curation.filter.stop``, unset = ``rl.rollout.stop``."""
        own = self.get("curation.filter.stop")
        return list(own if own is not None else self.get("rl.rollout.stop") or [])

    def filter_shard_hash(self) -> str:
        """Settings of a pass-rate shard; the stop strings only when there are some (runs without keep the hash
        they had before the option existed)."""
        sections = ["curation.filter.model", "curation.filter.n", "curation.filter.temperature",
                    "curation.filter.top_p", "curation.filter.max_tokens", "rl.reward", "seed"]
        h = self.hash(*sections)
        return config_hash({"h": h, "stop": self.filter_stop()}) if self.filter_stop() else h

    def filter_shards(self) -> list[str]:
        n = int(self.cfg["curation"]["filter"]["shards"])
        return [f"data/passrates/shard-{i}-of-{n}.parquet" for i in range(n)]

    def benchmark_input(self, bench: str) -> str | list[str]:
        return "data/test.parquet" if split_budget(bench)[0] == "test" else []

    # --- hashes ----------------------------------------------------------------------------------------------
    def rl_hash(self, stage: str) -> str:
        rl = {k: v for k, v in self.cfg["rl"].items() if k != "stages"}
        # resources (GPUs, ranks, time) do not change what the stage computes: N ranks train exactly as one
        return config_hash(
            {
                "rl": rl,
                "stage": {k: v for k, v in self.stage(stage).items() if k != "resources"},
                "seed": self.cfg["seed"],
                "template": self.cfg.get("template"),
            }
        )

    # --- targets ---------------------------------------------------------------------------------------------
    def eval_targets(self) -> list[str]:
        ev = self.cfg["eval"]
        if not ev.get("enabled", True):
            return []
        out = []
        for m in ev["models"]:
            if m == "final" and not self.stages and not self.cfg["warmups"]["sft"]["enabled"]:
                continue
            for b in eval_benchmarks(self.cfg):
                out.append(f"eval/{m}/{b}/{spec_hash(spec_from_recipe(self.cfg, b))}/metrics.json")
        return out

    def report_inputs(self) -> list[str]:
        extra = ["long2short/model"] if self.cfg["long2short"]["enabled"] else []
        return [f"rl/{s}/DONE" for s in self.stage_names] + extra + self.eval_targets()

    def final_targets(self) -> list[str]:
        return ["report/index.html"]

    # --- resources -------------------------------------------------------------------------------------------
    def _res(self, res: dict[str, Any] | None, ranks: bool = False) -> dict[str, Any]:
        """Snakemake resources of a job whose section asks for ``res`` (None: a cheap rule, the top-level
        ``resources``). The top-level partition, QoS and constraint reach only jobs of its own class (GPU jobs
        ask for GPUs, CPU jobs do not), its account every job; the section's own values win. ``ranks``: the
        job's command runs data-parallel ranks itself (RL stages, SFT): one per GPU, else ``procs``; declared as
        Slurm tasks in the executor plugin's "mpi" mode (the command starts its ranks with srun inside the
        allocation)."""
        top = {k: v for k, v in (self.cfg.get("resources") or {}).items() if v is not None}
        own = {k: v for k, v in (res or {}).items() if v is not None}
        base = dict(top)
        if _is_gpu(own.get("gpus", top.get("gpus", 0))) != _is_gpu(top.get("gpus", 0)):
            for k in CLASS_KEYS:
                base.pop(k, None)
        base.update(own)
        out: dict[str, Any] = {
            "mem_mb": int(base.get("mem_mb", 4000)),
            "runtime": int(base.get("runtime", 60)),
            "cpus_per_task": int(base.get("cpus", 1)),
            "nodes": int(base.get("nodes", 1)),
        }
        gpus = int(base.get("gpus", 0))
        if gpus:
            out["gpu"] = gpus
        n = gpus or int(base.get("procs", 1))
        if ranks and n > 1:
            # one Slurm task per rank; the rule's command starts them itself (srun inside the allocation), so the
            # executor plugin must not wrap it in `srun -n1` (its "mpi" mode)
            per_node = max(1, n // out["nodes"])
            # recipe cpus are per job; Slurm's cpus_per_task is per rank
            out.update(ranks=n, tasks=n, mpi="srun", cpus_per_task=max(1, out["cpus_per_task"] // per_node))
            if gpus:
                out["tasks_per_gpu"] = 1
        if base.get("partition"):
            out["slurm_partition"] = base["partition"]
        if base.get("constraint"):
            out["constraint"] = base["constraint"]
        if base.get("account"):
            out["slurm_account"] = base["account"]
        if base.get("qos"):
            out["qos"] = base["qos"]
        return out

    def threads(self, section: str | None) -> int:
        """CPU threads of a job on one node (whole-job cpus; ranks on the node share them)."""
        return int(self._res(self.get(f"{section}.resources") if section else None)["cpus_per_task"])

    def stage_ranks(self, stage: str) -> int:
        """Data-parallel ranks of an RL stage's job: one per GPU, else ``resources.procs``."""
        return int(self._res(self.stage(stage).get("resources"), ranks=True).get("ranks", 1))

    def stage_threads(self, stage: str) -> int:
        """CPU threads of an RL stage's job on one node (its ranks there share them)."""
        return int(self._res(self.stage(stage).get("resources"))["cpus_per_task"])

    #: training sections whose command runs data-parallel ranks itself (one per GPU, else ``procs``)
    RANKED_SECTIONS = ("warmups.sft", "warmups.value", "long2short")

    def resources(self, section: str | None) -> dict[str, Any]:
        return self._res(self.get(f"{section}.resources") if section else None,
                         ranks=section in self.RANKED_SECTIONS)

    def ranks(self, section: str) -> int:
        """Data-parallel ranks of a training section's job (1 where the section trains on one process)."""
        return int(self.resources(section).get("ranks", 1))

    def stage_resources(self) -> dict[str, Any]:
        """Per-stage resources of rl_stage as callables of the wildcards (Snakemake evaluates them per job).
        Optional keys (gpu, partition, constraint) are declared only when some stage sets them."""
        per_stage = [self._res(s.get("resources"), ranks=True) for s in self.stages] or [self._res(None)]
        keys = sorted({k for r in per_stage for k in r})
        out: dict[str, Any] = {}
        for k in keys:

            def f(wildcards: Any, _k: str = k) -> Any:
                return self._res(self.stage(wildcards.stage).get("resources"), ranks=True).get(_k, _default(_k))

            out[k] = f
        return out


def _default(key: str) -> Any:
    return {"gpu": 0, "ranks": 1, "tasks": 1, "tasks_per_gpu": 1, "mpi": ""}.get(key)


#: lent by the top-level ``resources`` only to jobs of its own resource class (see Plan._res)
CLASS_KEYS = ("partition", "qos", "constraint")


def _is_gpu(gpus: Any) -> bool:
    return int(gpus or 0) > 0


# --- dry-run plan -------------------------------------------------------------------------------------------
#: pipeline order of the rules (a plan's rows are sorted by it, so the same plan prints the same way)
RULE_ORDER = ["base_model", "prepare", "clean", "filter_shard", "filter_merge", "sft", "value_warmup",
              "rl_stage", "mine_hard", "drop_solved", "limr_select", "long2short", "eval", "report", "all"]
_RL_RULES = ("rl_stage", "mine_hard", "drop_solved", "limr_select")


def job_resources(res: dict[str, Any] | None) -> dict[str, Any]:
    """A job's Snakemake resources as plan columns, units in the names: ``class`` (gpu | cpu), ``gpus``,
    ``nodes``, ``cpus``, ``mem_gb``, ``runtime_min`` (the wall-clock limit), ``gpu_hours`` and ``cpu_hours``
    (at that limit: an upper bound), ``partition``, ``account``, ``qos``, ``constraint``."""
    r = dict(res or {})
    gpus = int(r.get("gpu") or r.get("gpus") or 0)
    runtime = int(r.get("runtime") or 0)
    cpus = int(r.get("cpus_per_task") or r.get("_cores") or 1)
    return {
        "class": "gpu" if gpus > 0 else "cpu",
        "gpus": gpus,
        "nodes": int(r.get("nodes") or 1),
        "cpus": cpus,
        "mem_gb": round(int(r.get("mem_mb") or 0) / 1000, 1),
        "runtime_min": runtime,
        "gpu_hours": gpus * runtime / 60,
        "cpu_hours": cpus * int(r.get("nodes") or 1) * runtime / 60,
        "partition": r.get("slurm_partition") or "",
        "account": r.get("slurm_account") or "",
        "qos": r.get("qos") or "",
        "constraint": r.get("constraint") or "",
    }


def format_job_resources(cols: dict[str, Any]) -> str:
    """``gpus 8 · nodes 4 · cpus 64 · mem 900 GB · ≤ 2880 min · partition gpu · account a · qos q``."""
    parts = []
    if cols["gpus"]:
        parts.append(f"gpus {cols['gpus']}")
    if cols["nodes"] > 1:
        parts.append(f"nodes {cols['nodes']}")
    parts += [f"cpus {cols['cpus']}", f"mem {cols['mem_gb']:g} GB", f"≤ {cols['runtime_min']} min"]
    parts += [f"{k} {cols[k]}" for k in ("partition", "account", "qos", "constraint") if cols[k]]
    return " · ".join(parts)


def plan_rows(jobs: list[dict[str, Any]], stage_names: list[str] | tuple[str, ...] = ()
              ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of a dry-run plan (the ``job_info`` events of a Snakemake dry run) in a stable order -- pipeline
    order of the rules, RL stages (and their mining/selection jobs) in recipe order, then the wildcards -- each
    ``{"stage", "wildcards", "reason", **job_resources}``; and the totals: ``jobs``, ``gpu_hours``,
    ``cpu_hours`` and ``runtime_min`` (sum of the limits), ``gpu_jobs`` / ``cpu_jobs``, and the distinct
    (partition, account, qos) per class."""

    def key(ev: dict[str, Any]) -> tuple[Any, ...]:
        rule = str(ev.get("rule_name") or ev.get("name") or ev.get("rule") or "")
        wc = ev.get("wildcards") or {}
        wc = wc if isinstance(wc, dict) else {}
        rank = RULE_ORDER.index(rule) if rule in RULE_ORDER else len(RULE_ORDER)
        stage = str(wc.get("stage", ""))
        sidx = stage_names.index(stage) if stage in stage_names else -1
        if rule in _RL_RULES:
            return (RULE_ORDER.index("rl_stage"), sidx, rank, sorted(wc.items()))
        return (rank, sidx, 0, sorted((k, str(v)) for k, v in wc.items()))

    rows = []
    for ev in sorted((j for j in jobs if (j.get("rule_name") or j.get("name") or j.get("rule")) != "all"), key=key):
        wc = ev.get("wildcards") or {}
        cols = job_resources(ev.get("resources"))
        rows.append({
            "stage": str(ev.get("rule_name") or ev.get("name") or ev.get("rule")),
            "wildcards": " ".join(f"{k}={v}" for k, v in wc.items()) if isinstance(wc, dict) else str(wc),
            "reason": str(ev.get("reason") or ""),
            **cols,
        })
    classes: dict[str, list[tuple[str, str, str]]] = {}
    for r in rows:
        slot = (r["partition"], r["account"], r["qos"])
        if slot not in classes.setdefault(r["class"], []):
            classes[r["class"]].append(slot)
    totals = {
        "jobs": len(rows),
        "gpu_jobs": sum(r["class"] == "gpu" for r in rows),
        "cpu_jobs": sum(r["class"] == "cpu" for r in rows),
        "gpu_hours": sum(r["gpu_hours"] for r in rows),
        "cpu_hours": sum(r["cpu_hours"] for r in rows),
        "runtime_min": sum(r["runtime_min"] for r in rows),
        "slurm": {c: [{"partition": p, "account": a, "qos": q} for p, a, q in v] for c, v in classes.items()},
    }
    return rows, totals
