"""Pydantic schema of a recipe (and so of a run). Imports no torch: configs validate on login nodes and in CI.

Every knob says what it is and which paper motivated it. Unknown keys are errors (``extra="forbid"``), so a
typo in a recipe or in ``--set`` fails naming its YAML path instead of being silently ignored.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from r1cli.config.names import check_name, check_reward_params


def check_band(text: str) -> tuple[float, float]:
    """Validate a pass-rate band ``LO:HI`` (``0.2:0.8``, ``1:15/16``, ``:0.0625``) at resolve time; the same
    grammar as r1cli.data.filter.parse_band (tests/config/test_names.py checks they agree)."""
    from fractions import Fraction

    if ":" not in text:
        raise ValueError(f"invalid band {text!r}: expected LO:HI, e.g. 0.2:0.8, 1:15/16 or :0.0625")
    lo_s, hi_s = text.split(":", 1)
    denom = None
    for part in (hi_s, lo_s):
        if "/" in part:
            try:
                denom = int(part.split("/")[1])
            except ValueError:
                raise ValueError(f"invalid band {text!r}: bad denominator") from None
            if denom <= 0:
                raise ValueError(f"invalid band {text!r}: denominator must be positive")

    def num(t: str, default: float) -> float:
        t = t.strip()
        if not t:
            return default
        try:
            v = float(Fraction(t)) if "/" in t else float(t)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"invalid band {text!r}: bad bound {t!r}") from None
        return v / denom if denom is not None and "/" not in t else v

    lo, hi = num(lo_s, 0.0), num(hi_s, 1.0)
    if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
        raise ValueError(f"invalid band {text!r}: bounds must lie in [0, 1] (got {lo:g}:{hi:g})")
    if lo > hi:
        raise ValueError(f"invalid band {text!r}: lower bound {lo:g} exceeds upper bound {hi:g}")
    return lo, hi


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True)
    #: keys a section once accepted that no code read: refused with the reason instead of "extra input"
    removed_keys: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_removed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in cls.removed_keys:
                    raise ValueError(f"'{key}' is not a setting (removed: {cls.removed_keys[key]})")
        return data


class Resources(Strict):
    """Per-rule resources, forwarded to Snakemake (and so to Slurm through the executor plugin).

    A job is of the GPU class when it asks for GPUs, else of the CPU class. The top-level ``resources`` (the
    cheap rules' defaults) lends its partition, QoS and constraint only to jobs of its own class -- a GPU
    partition set there never reaches a CPU-only job, a CPU partition never a GPU stage -- and its account to
    every job; a section's own values always win (r1cli/pipeline/dag.py)."""

    gpus: int = Field(0, ge=0, description="GPUs per job (Slurm --gpus); a training job runs one rank per GPU")
    procs: int = Field(
        1, ge=1, description="ranks of a CPU training job (gloo processes, data-parallel); GPU jobs run one rank "
        "per GPU and ignore it"
    )
    nodes: int = Field(1, ge=1, description="nodes per job (multi-node through srun + DeepSpeed launcher)")
    cpus: int = Field(1, ge=1, description="CPU cores per job (cpus_per_task)")
    mem_mb: int = Field(4000, ge=1, description="memory per job in MB")
    runtime: int = Field(60, ge=1, description="wall-clock limit in minutes")
    partition: str | None = Field(None, description="Slurm partition; None = cluster default")
    constraint: str | None = Field(None, description="Slurm --constraint, e.g. 'a100|h100'")
    account: str | None = Field(None, description="Slurm --account; None = your default account")
    qos: str | None = Field(None, description="Slurm --qos; None = the partition's default")

    @model_serializer(mode="wrap")
    def _omit_unset_slurm_keys(self, handler: Any) -> dict[str, Any]:
        """account/qos appear in a dumped config only when set, so configs that do not use them keep the
        stage hashes (r1cli/pipeline/dag.py) they had before these keys existed -- no rerun on upgrade."""
        out = handler(self)
        for k in ("account", "qos"):
            if out.get(k) is None:
                out.pop(k, None)
        return out


class TinyModelSpec(Strict):
    """Shape of the embedded tiny model (a Qwen3-type causal LM built offline from a seed)."""

    arch: Literal["qwen3", "llama"] = "qwen3"
    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    max_positions: int = 256
    vocab_size: int = 384
    tasks: list[str] = Field(
        default_factory=lambda: ["addition", "countdown"],
        description="task text the BPE tokenizer is trained on",
    )


class ModelConfig(Strict):
    path: str = Field(..., description="HF hub id, local dir, or 'embedded:tiny' for the built-in tiny model")
    tokenizer: str | None = Field(None, description="tokenizer path/id when it differs from `path`")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "auto"
    tiny: TinyModelSpec = Field(default_factory=TinyModelSpec)
    trust_remote_code: bool = False


class LengthTarget(Strict):
    """L1 (Aggarwal & Welleck 2025, arXiv 2503.04697 §3): each prompt gets a length instruction with a target
    n_gold ~ U{low..high} (seeded per row at prepare time); the row keeps it as ``meta.target_len`` for the
    ``l1_exact`` / ``l1_max`` reward shaping."""

    low: int = Field(100, ge=1)
    high: int = Field(4000, ge=1)
    instruction: str = Field("Think for {n} tokens.", description="appended to the user prompt; {n} = target")
    separator: str = "\n\n"
    exact_fraction: float = Field(
        0.0, ge=0, le=1, description="L1-Max: this fraction of rows (seeded per row) gets `exact_instruction` and "
        "is scored by the Exact reward (meta.length_mode = 'exact'); the paper mixes 50/50"
    )
    exact_instruction: str = "Think for {n} tokens."

    @model_validator(mode="after")
    def _range(self) -> LengthTarget:
        if self.high < self.low:
            raise ValueError(f"length_target.high ({self.high}) < low ({self.low})")
        for key in ("instruction", "exact_instruction"):
            if "{n}" not in getattr(self, key):
                raise ValueError(f"length_target.{key} must contain {{n}}")
        return self


class DataSource(Strict):
    """One dataset: a hub id, a local jsonl/json/parquet file, or ``synth:<task>`` (built-in generator)."""

    source: str
    split: str = "train"
    prompt_key: str = "problem"
    answer_key: str = "answer"
    task: str = "math"
    limit: int | None = Field(None, ge=1, description="keep the first N rows (after shuffling with the seed)")
    shuffle: bool = False
    size: int | None = Field(None, ge=1, description="number of rows for synth: sources")
    length_target: LengthTarget | None = Field(None, description="L1 per-prompt length instruction")
    config: str | None = Field(None, description="Hub dataset config name (e.g. 'main' for openai/gsm8k)")
    drop_duplicates: bool = Field(
        False, description="drop rows whose prompt and answer repeat an earlier row's (DAPO-Math-17k ships each "
        "prompt ~100 times)"
    )


class DataConfig(Strict):
    train: DataSource
    test: DataSource | None = None
    sft: DataSource | None = Field(
        None, description="the SFT warm-up's own data (warmups.sft.data: sft), prepared like data.train to "
        "data/sft.parquet: SFT traces are often another set than the RL prompts"
    )
    data_dir: str | None = Field(None, description="local folder with benchmark/training files (R1_DATA_DIR)")


class DedupConfig(Strict):
    enabled: bool = False
    near: bool = True
    threshold: float = Field(0.8, gt=0, le=1, description="MinHash Jaccard threshold for near-duplicates")
    ngram: int = Field(5, ge=1)


class DecontamConfig(Strict):
    enabled: bool = False
    against: list[str] = Field(default_factory=list, description="benchmark names (see r1 eval)")
    ngram: int = Field(13, ge=1)


class RepeatBand(Strict):
    """OREAL difficulty balancing (Lyu et al. 2025, arXiv 2502.06781; code): rows whose measured pass rate p lies
    in [lo, hi) (hi = 1 includes 1) appear ``times`` times in the filtered training set; ``times: 0`` drops them
    (OREAL drops prompts with p >= 0.8)."""

    lo: float = Field(..., ge=0, le=1)
    hi: float = Field(..., ge=0, le=1)
    times: int = Field(..., ge=0)

    @model_validator(mode="after")
    def _range(self) -> RepeatBand:
        if self.hi <= self.lo:
            raise ValueError(f"repeat band needs lo < hi, got [{self.lo}, {self.hi})")
        return self


class FilterConfig(Strict):
    """Difficulty filter by pass rate (DeepScaleR/Kimi/Skywork/ORZ curation)."""

    enabled: bool = False
    acc: str = Field(
        "0.2:0.8", description="band LO:HI of pass rates kept, e.g. '0.2:0.8', '1:15/16', ':0.0625'"
    )
    model: str = Field("sft", description="'base', 'sft', or a model path/id whose pass rate is measured")
    n: int = Field(8, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(1024, ge=1)
    stop: list[str] | None = Field(
        None, description="strings that end a rollout, kept in it (unset: rl.rollout.stop, the RL stages' list)"
    )
    shards: int = Field(1, ge=1)
    batch_size: int = Field(64, ge=1)
    repeat: list[RepeatBand] = Field(
        default_factory=list, description="difficulty balancing: kept rows repeated by pass-rate band (OREAL)"
    )
    pass_rate_key: str | None = Field(
        None, description="read each prompt's pass rate from this field of its row (meta) instead of measuring "
        "it with rollouts, e.g. OREAL-RL-Prompts' published 'pass_rate'; model/n/sampling are then unused"
    )
    resources: Resources = Field(default_factory=Resources)

    @field_validator("acc")
    @classmethod
    def _acc_band(cls, v: str) -> str:
        check_band(v)
        return v

    @model_validator(mode="after")
    def _bands_disjoint(self) -> FilterConfig:
        bands = sorted((b.lo, b.hi) for b in self.repeat)
        for (lo1, hi1), (lo2, _) in zip(bands, bands[1:], strict=False):
            if lo2 < hi1:
                raise ValueError(f"curation.filter.repeat bands overlap: [{lo1}, {hi1}) and [{lo2}, ...)")
        return self


class LimrConfig(Strict):
    """LIMR learning-impact selection (Li et al. 2025, arXiv 2502.11886 §2.2)."""

    enabled: bool = False
    threshold: float = Field(0.6, ge=-10, le=1)
    reference_stage: str | None = Field(None, description="RL stage whose reward trajectories are scored")


class MineHardConfig(Strict):
    """ORZ annealing: prompts solved < max_acc in a stage's rollouts feed the next stage."""

    enabled: bool = False
    from_stage: str | None = Field(
        None, description="the stage whose rollouts are mined: the DAG mines the stage before each `data: hard` "
        "stage, so when given it must name that stage (checked at resolve)"
    )
    max_acc: float = Field(0.0625, ge=0, le=1)


class CurationConfig(Strict):
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    decontaminate: DecontamConfig = Field(default_factory=DecontamConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    limr: LimrConfig = Field(default_factory=LimrConfig)
    mine_hard: MineHardConfig = Field(default_factory=MineHardConfig)


class SFTConfig(Strict):
    """Cold-start SFT on chain-of-thought data; loss on response tokens only."""

    enabled: bool = False
    data: str = Field(
        "train", description="'train' (data.train's prepared rows with their gold traces, before the pass-rate "
        "filter), 'sft' (data.sft, prepared to data/sft.parquet) or a prepared parquet file"
    )
    response_key: str = Field("response", description="field with the target response text")
    steps: int = Field(250, ge=0)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = 0.0
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    max_len: int = Field(128, ge=8)
    resources: Resources = Field(default_factory=Resources)


class ValueWarmupConfig(Strict):
    """VC-PPO / VAPO value pretraining: critic regresses Monte-Carlo returns of the fixed initial policy."""

    enabled: bool = False
    steps: int = Field(50, ge=0)
    lr: float = Field(2e-6, gt=0)
    epochs: int = Field(1, ge=1, description="passes over each step's rollouts")
    mini_batch_size: int | None = Field(
        None, ge=1, description="rollouts per critic optimizer step (None: one step per pass on all of them)"
    )
    resources: Resources = Field(default_factory=Resources)


class PRMWarmupConfig(Strict):
    """PRIME implicit PRM: starts as the SFT/reference model, updated online with CE on outcome labels."""

    enabled: bool = False
    lr: float = Field(1e-6, gt=0)
    beta: float = Field(0.05, gt=0)
    removed_keys: ClassVar[dict[str, str]] = {
        "coef": "weight the process and outcome rewards with rl.algorithm.advantage_params "
        "{process_coef, outcome_coef} (PRIME's reward_dpo_coef / reward_gt_coef)",
    }
    freeze_policy_steps: int = Field(0, ge=0, description="OREAL: steps with the actor frozen, RM only")


class WarmupsConfig(Strict):
    sft: SFTConfig = Field(default_factory=SFTConfig)
    value: ValueWarmupConfig = Field(default_factory=ValueWarmupConfig)
    prm: PRMWarmupConfig = Field(default_factory=PRMWarmupConfig)


class KLConfig(Strict):
    type: Literal["k1", "k2", "k3", "abs", "low_var_kl"] = "k3"
    coef: float = Field(0.0, ge=0)
    use: Literal["loss", "reward"] = Field(
        "loss", description="KL as a loss term (GRPO) or a reward penalty (PPO)"
    )
    removed_keys: ClassVar[dict[str, str]] = {
        k: "no adaptive KL controller is wired into the RL step; the KL coefficient is fixed (kl.coef)"
        for k in ("adaptive", "target", "horizon")
    }
    ref_reset_every: int | None = Field(
        None, ge=1, description="replace the reference by the current policy every N rollout steps (r1 RL "
        "steps, each = one rollout and its mini-batch updates) of a stage. Papers that count policy updates "
        "divide by the updates per rollout: DeepSeek-R1-Zero's 400 updates at 16 per rollout = 25. "
        "None = fixed reference"
    )


class AdaptiveEntropyConfig(Strict):
    """Skywork-OR1 adaptive entropy control."""

    enabled: bool = False
    target: float = 0.2
    delta: float = 1e-4
    init: float = 0.0
    max: float = 0.005


class AlgorithmConfig(Strict):
    advantage: str = Field("grpo", description="r1cli.algos.ADVANTAGES name")
    policy_loss: str = Field("ppo_clip", description="r1cli.algos.POLICY_LOSSES name")
    loss_agg: Literal[
        "token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"
    ] = "token-mean"
    loss_agg_norm: float | None = Field(None, description="constant for seq-mean-token-sum-norm (Dr. GRPO)")
    clip_low: float = Field(0.2, ge=0)
    clip_high: float | None = Field(None, description="DAPO clip-higher ε_high; None = clip_low")
    dual_clip: float | None = Field(None, description="dual-clip constant c (> 1), applied where A < 0")
    advantage_params: dict[str, Any] = Field(default_factory=dict, description="e.g. gamma, lam, eps, alpha")
    loss_params: dict[str, Any] = Field(default_factory=dict)
    kl: KLConfig = Field(default_factory=KLConfig)
    entropy_coef: float = 0.0
    adaptive_entropy: AdaptiveEntropyConfig = Field(default_factory=AdaptiveEntropyConfig)
    ppo_epochs: int = Field(1, ge=1)
    removed_keys: ClassVar[dict[str, str]] = {
        "value_loss_coef": "the critic has its own optimizer and loss (rl.train.critic_lr), so a weight "
        "relative to the policy loss has no meaning",
    }
    value_clip: float | None = 0.2
    nll_coef: float = Field(0.0, ge=0, description="VAPO positive-example LM loss weight μ")

    @field_validator("advantage")
    @classmethod
    def _advantage_known(cls, v: str) -> str:
        return check_name("advantage", v)

    @field_validator("policy_loss")
    @classmethod
    def _loss_known(cls, v: str) -> str:
        return check_name("policy loss", v)


class ShapingTerm(Strict):
    """A reward-shaping term: sequence-level (r1cli.rewards.SHAPING, maps a sample's score to a new score) or
    token-level (r1cli.rewards.TOKEN_SHAPING, adds per-token rewards that reach the advantage estimator)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    start_step: int = Field(0, ge=0, description="global RL step from which the term applies (Kimi warm-up)")

    @field_validator("name")
    @classmethod
    def _term_known(cls, v: str) -> str:
        return check_name("shaping term", v)


def _user_reward_ok(v: str) -> str:
    """A user reward (``file.py:func`` / ``module:func``): the file (relative to the working directory, stored
    absolute) or module and the function must exist -- checked when the recipe resolves, not at RL step 1."""
    if ":" not in v:
        return v
    from r1cli.errors import R1ConfigError
    from r1cli.utils.userfn import normalize

    try:
        return normalize(v, "name")
    except R1ConfigError as exc:
        raise ValueError(str(exc).removeprefix("name: ")) from None


_REWARD_NAME = ("r1cli.rewards.REWARDS name (math, exact, countdown, kk, gsm8k, swe, code) or your own function: "
                "FILE.py:FUNCTION or MODULE:FUNCTION (see r1cli/rewards/custom.py for its signature)")


class RewardSpec(Strict):
    name: str = Field(..., description=_REWARD_NAME)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _reward_known(cls, v: str) -> str:
        return _user_reward_ok(check_name("reward", v, allow_user_function=True))

    @field_validator("params")
    @classmethod
    def _params_known(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_reward_params(v)  # type: ignore[return-value]


class RewardConfig(RewardSpec):
    name: str = Field("math", description=_REWARD_NAME)
    by_task: dict[str, RewardSpec] = Field(
        default_factory=dict, description="rows whose task is a key are scored by that reward instead"
    )
    shaping: list[ShapingTerm] = Field(default_factory=list)
    normalize: Literal["none", "running", "batch"] = Field(
        "none",
        description="sequence reward normalisation before the advantage: 'running' = (r - mean)/std over all "
        "rewards seen so far (OpenRLHF normalize_reward for PPO: LIMR, Demystify), 'batch' = over the step",
    )
    workers: int = Field(2, ge=1)
    deadline_s: float = Field(10.0, gt=0)


class DynamicSampling(Strict):
    filter: str | None = Field(None, description="r1cli.algos.FILTERS name: dapo | band | oreal_pairs")
    params: dict[str, Any] = Field(default_factory=dict)
    max_rounds: int = Field(3, ge=1, description="generation rounds to fill the batch (DAPO: 10)")
    oversample: float = Field(1.0, ge=1.0)

    @field_validator("filter")
    @classmethod
    def _filter_known(cls, v: str | None) -> str | None:
        return None if v is None else check_name("dynamic-sampling filter", v)


class PrioritizedSampling(Strict):
    """Kimi k1.5 (arXiv 2501.12599 §2.3.4) prioritised sampling: prompt i is drawn with probability ∝
    (1 - s_i) + floor, s_i = its success rate in this run's rollouts so far (prior: the row's measured pass
    rate from the difficulty filter when present, else ``prior``)."""

    enabled: bool = False
    floor: float = Field(0.05, ge=0, description="added to every weight so solved prompts can come back")
    prior: float = Field(0.5, ge=0, le=1, description="success rate assumed for a prompt never measured")


class RolloutConfig(Strict):
    backend: Literal["hf", "vllm"] = "hf"
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    max_prompt: int = Field(1024, ge=1)
    prompts_per_step: int = Field(32, ge=1)
    dynamic_sampling: DynamicSampling = Field(default_factory=DynamicSampling)
    prioritized: PrioritizedSampling = Field(default_factory=PrioritizedSampling)
    tensor_parallel: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    stop: list[str] = Field(
        default_factory=list,
        description="strings that end a response and stay in it (vLLM's stop with include_stop_str_in_output; "
        "Open-Reasoner-Zero: </answer>, User:, Human:, Assistant:)",
    )


class TrainConfig(Strict):
    backend: Literal["torch", "deepspeed"] = "torch"
    lr: float = Field(1e-6, gt=0)
    critic_lr: float | None = None
    critic_mini_batches: int | None = Field(
        None, ge=1, description="critic optimizer steps per pass over a step's rollouts (ORZ: 12); None = "
        "one step on all of them"
    )
    critic_init: str | None = Field(
        None, description="model path/id the critic (and value warm-up) starts from, e.g. a reward model "
        "(VAPO); None = the policy's start model"
    )
    optimizer: Literal["adamw", "adafactor"] = Field("adamw", description="policy optimizer (TOPR: Adafactor)")
    betas: tuple[float, float] = Field(
        (0.9, 0.999), strict=False,  # YAML gives a list
        description="AdamW betas; default verl's (0.9, 0.999) (OpenRLHF and oat use (0.9, 0.95))"
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW decoupled weight decay; default verl's 0.01")
    grad_clip: float | None = 1.0
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine", "linear"] = "constant"
    min_lr_ratio: float = 0.0
    mini_batch_prompts: int | None = Field(None, description="prompts per optimizer step; None = whole batch")
    micro_batch_size: int = Field(64, ge=1, description="rows per forward/backward (gradient accumulation)")
    token_budget: int | None = Field(
        None,
        description="tokens per micro-batch (rows x longest row, rows sorted by length; packed on deepspeed); "
        "None = micro_batch_size rows",
    )
    zero_stage: int = Field(2, ge=0, le=3, description="ZeRO stage of the deepspeed engine (2 = default; the torch "
                            "engine refuses any other value)")
    gradient_checkpointing: bool = False
    dtype: Literal["float32", "bfloat16"] = "float32"
    threads: int | None = Field(None, description="torch CPU threads; None = all cores of the job")


class CheckpointConfig(Strict):
    every: int = Field(10, ge=1, description="RL steps between checkpoints")
    keep: int = Field(2, ge=1, description="newest N checkpoints kept")


class RLStage(Strict):
    name: str
    steps: int = Field(..., ge=0)
    max_response: int = Field(..., ge=1)
    n: int = Field(8, ge=1, description="samples per prompt (group size)")
    prompts_per_step: int | None = None
    lr: float | None = None
    temperature: float | None = None
    data: Literal["train", "hard", "limr", "unsolved"] = Field(
        "train",
        description="'hard' = mined from the previous stage (ORZ); 'limr' = the LIMR subset selected from "
        "curation.limr.reference_stage's reward trajectories (the stage then starts from the start model); "
        "'unsolved' = the previous stage's data minus prompts whose last rollout group was all correct "
        "(Skywork-OR1)",
    )
    lr_end: float | None = Field(None, description="linear decay to this lr over the stage (ORZ annealing)")
    resources: Resources = Field(default_factory=Resources)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v or not all(c.isalnum() or c in "_-" for c in v):
            raise ValueError("stage names use letters, digits, '_' and '-' only")
        return v


class RLConfig(Strict):
    enabled: bool = True
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)
    removed_keys: ClassVar[dict[str, str]] = {
        k: "no evaluation runs inside the RL stage; the eval stage (eval.*) evaluates the models"
        for k in ("eval_every", "eval_size")
    }
    stages: list[RLStage] = Field(default_factory=list)

    @model_validator(mode="after")
    def _engine_keys_apply(self) -> RLConfig:
        """Engine keys that the chosen engine would not read are refused, not ignored."""
        ro, tr = self.rollout, self.train
        if ro.backend == "hf":
            if ro.tensor_parallel != 1:
                raise ValueError(f"rl.rollout.tensor_parallel={ro.tensor_parallel} applies to the vllm sampler; "
                                 "the hf sampler runs on each rank's trainer (set it to 1 or rollout.backend=vllm)")
            if ro.gpu_memory_utilization != 0.5:
                raise ValueError(f"rl.rollout.gpu_memory_utilization={ro.gpu_memory_utilization} applies to the "
                                 "vllm sampler only (remove it or set rollout.backend=vllm)")
        if tr.backend == "torch" and tr.zero_stage != 2:
            raise ValueError(f"rl.train.zero_stage={tr.zero_stage} applies to the deepspeed engine; the torch "
                             "engine replicates the model on every rank (set train.backend=deepspeed)")
        return self

    @model_validator(mode="after")
    def _unique_stage_names(self) -> RLConfig:
        names = [s.name for s in self.stages]
        if len(names) != len(set(names)):
            raise ValueError(f"rl.stages names must be unique, got {names}")
        if self.stages and self.stages[0].data in ("hard", "unsolved"):
            raise ValueError(f"rl.stages.0.data={self.stages[0].data!r} needs a previous stage's rollouts; the "
                             "first stage has none")
        return self


class Long2ShortConfig(Strict):
    enabled: bool = False
    method: Literal["merge", "shortest", "dpo", "length-rl"] = "shortest"
    merge_alpha: float = Field(0.5, ge=0, le=1)
    n: int = Field(8, ge=1)
    steps: int = Field(100, ge=0)
    lr: float = Field(1e-5, gt=0)
    dpo_lr: float | None = Field(
        None, gt=0, description="lr of the dpo method (None: lr); DPO wants a much lower lr than SFT"
    )
    beta: float = Field(0.1, gt=0)
    resources: Resources = Field(default_factory=Resources)


class EvalOverride(Strict):
    """Per-benchmark sampling (e.g. LIMR: AIME/AMC 4 samples at 0.4, MATH-500 greedy). Unset = eval.*."""

    n: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    k: list[int] | None = None
    greedy: bool | None = None
    stop: list[str] | None = Field(None, description="strings that end a response on this benchmark ([] = none)")


class EvalConfig(Strict):
    enabled: bool = True
    benchmarks: list[str] = Field(default_factory=lambda: ["test"])
    models: list[str] = Field(
        default_factory=lambda: ["final"],
        description="which models: base, sft, <stage name>, final, long2short",
    )
    n: int = Field(1, ge=1)
    temperature: float = Field(0.6, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(32768, ge=1)
    k: list[int] = Field(default_factory=lambda: [1])
    greedy: bool = Field(True, description="also report greedy accuracy")
    limit: int | None = Field(None, ge=1, description="first N problems of each benchmark")
    stop: list[str] = Field(default_factory=list, description="strings that end a response (as rl.rollout.stop)")
    per_benchmark: dict[str, EvalOverride] = Field(
        default_factory=dict, description="benchmark name -> sampling overrides (n, temperature, ...)"
    )
    length_budgets: list[int] = Field(
        default_factory=list,
        description="L1: evaluate each benchmark once per budget N with `budget_instruction` appended to the "
        "prompt (results as '<benchmark>@N'); empty = plain prompts",
    )
    budget_instruction: str = Field("Think for {n} tokens.", description="the budget text; {n} = N")
    budget_max_tokens_factor: float | None = Field(
        None, gt=0, description="L1: generate at most factor x N tokens for a budget-N evaluation (L1-Exact: 2); "
        "None = eval.max_tokens"
    )
    engine: Literal["hf", "vllm"] = "hf"
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _budgets_ok(self) -> EvalConfig:
        if any(n < 1 for n in self.length_budgets):
            raise ValueError(f"eval.length_budgets must be positive token counts, got {self.length_budgets}")
        if "{n}" not in self.budget_instruction:
            raise ValueError("eval.budget_instruction must contain {n}")
        return self


TRACKER_NAMES = ("jsonl", "tensorboard", "wandb", "mlflow")
_TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


class LoggingConfig(Strict):
    """Experiment tracking (r1cli/utils/tracking.py): every training stage (SFT, value warm-up, RL,
    long2short) logs its per-step metrics, and every eval job its table, to each tracker named here, with the
    resolved recipe as the run config. ``jsonl`` is r1's own record (report, status, resume read it)."""

    report_to: list[Literal["jsonl", "tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=lambda: ["jsonl", "tensorboard"],
        description="trackers: jsonl (metrics.jsonl), tensorboard (RUN/tensorboard), wandb (RUN/wandb, offline "
        "without WANDB_API_KEY), mlflow (RUN/mlflow/mlflow.db or MLFLOW_TRACKING_URI)",
    )
    project: str = Field("r1", min_length=1, description="W&B project and MLflow experiment name")

    @field_validator("report_to")
    @classmethod
    def _trackers_ok(cls, v: list[str]) -> list[str]:
        import importlib.util

        if "jsonl" not in v:
            raise ValueError("must include 'jsonl' (metrics.jsonl is what r1's report, status and resume read)")
        if len(set(v)) != len(v):
            raise ValueError(f"names a tracker twice: {v}")
        for name in v:
            pkg = _TRACKER_PACKAGES.get(name)
            if pkg is not None and importlib.util.find_spec(pkg) is None:
                raise ValueError(
                    f"{name!r} is selected but the {pkg!r} package is not installed "
                    "(pip install 'r1cli[tracking]')"
                )
        return v


class Recipe(Strict):
    """A resolved recipe: everything a run knows."""

    name: str
    description: str = ""
    paper: str = ""
    seed: int = 0
    scale: str = "full"
    template: str = Field("chat", description="prompt template name (see r1 data prepare --help)")
    system_prompt: str | None = None
    model: ModelConfig
    data: DataConfig
    curation: CurationConfig = Field(default_factory=CurationConfig)
    warmups: WarmupsConfig = Field(default_factory=WarmupsConfig)
    rl: RLConfig = Field(default_factory=RLConfig)
    long2short: Long2ShortConfig = Field(default_factory=Long2ShortConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    resources: Resources = Field(default_factory=Resources, description="defaults for cheap rules")
    published: dict[str, Any] = Field(default_factory=dict, description="headline numbers (CATALOG)")

    @model_validator(mode="after")
    def _sft_data_exists(self) -> Recipe:
        if self.warmups.sft.enabled and self.warmups.sft.data == "sft" and self.data.sft is None:
            raise ValueError("warmups.sft.data is 'sft' but the recipe has no data.sft")
        return self

    @model_validator(mode="after")
    def _mine_hard_from_stage(self) -> Recipe:
        src = self.curation.mine_hard.from_stage
        if src is not None:
            names = [s.name for s in self.rl.stages]
            for i, st in enumerate(self.rl.stages):
                if st.data == "hard" and i > 0 and names[i - 1] != src:
                    raise ValueError(
                        f"curation.mine_hard.from_stage={src!r} but stage {st.name!r} (data: hard) mines the "
                        f"stage before it, {names[i - 1]!r}"
                    )
        return self
