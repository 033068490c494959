"""``vllm`` rollout engine (GPU): the same interface as ``hf`` -- prompt token ids in, ``n`` samples each out,
with the sampler's log-probs of the chosen tokens and finish reasons -- plus the colocated-RL hooks: in-place
weight reload, prefix-cache reset, sleep / wake-up (vLLM ≥ 0.10; measured API notes in ML-STACK-NOTES §5).

vLLM is imported inside ``__init__`` only: the module imports on a machine without it, and constructing the
engine there raises a RuntimeError naming the extra to install.

Log-probs: vLLM returns, per generated token, the log-prob of the chosen token under ``logprobs_mode``
(vLLM's default ``raw_logprobs`` = the model's distribution before temperature/top-p; pass
``logprobs_mode="processed_logprobs"`` for the distribution actually sampled from).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from r1cli.engines.rollout import Sample, SamplingSpec, decode_response


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise RuntimeError(
            "the vllm rollout engine needs vLLM: pip install 'r1cli[vllm]' on a GPU machine "
            f"(import failed: {exc})"
        ) from exc
    return vllm


class VLLMRollout:
    """Sample with ``vllm.LLM`` from token-id prompts.

    ``tensor_parallel``: GPUs per engine (large models); data parallelism over engines lives in the caller
    (``r1cli.eval.dp``). ``enable_sleep_mode``: needed for :meth:`sleep` / :meth:`wake_up` when the engine
    shares GPUs with training. ``max_model_len``: None = the model's own."""

    def __init__(
        self,
        model_path: str,
        *,
        tensor_parallel: int = 1,
        gpu_memory_utilization: float = 0.5,
        dtype: str = "auto",
        seed: int = 0,
        enable_sleep_mode: bool = False,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        logprobs_mode: str | None = None,
        tokenizer: str | None = None,
        trust_remote_code: bool = False,
        **llm_kwargs: Any,
    ) -> None:
        vllm = _import_vllm()
        kwargs: dict[str, Any] = {
            "model": model_path,
            "tokenizer": tokenizer or model_path,
            "tensor_parallel_size": int(tensor_parallel),
            "gpu_memory_utilization": float(gpu_memory_utilization),
            "dtype": dtype,
            "seed": int(seed),
            "enable_sleep_mode": bool(enable_sleep_mode),
            "enable_prefix_caching": bool(enable_prefix_caching),
            "trust_remote_code": bool(trust_remote_code),
            **llm_kwargs,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = int(max_model_len)
        if logprobs_mode is not None:
            kwargs["logprobs_mode"] = logprobs_mode
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.model_path = model_path
        self.sleeping = False

    # ------------------------------------------------------------------------------------------ sampling
    def sampling_params(self, spec: SamplingSpec, seed: int | None = None) -> Any:
        """``vllm.SamplingParams`` of a spec: top_k 0 -> -1 (off), greedy = temperature 0, logprobs=0 (the
        chosen token's log-prob only); stop strings end a response and stay in it, as ORZ samples."""
        stop = {"stop": list(spec.stop), "include_stop_str_in_output": True} if spec.stop else {}
        return self._vllm.SamplingParams(
            n=int(spec.n),
            temperature=float(spec.temperature) if not spec.greedy else 0.0,
            top_p=float(spec.top_p) if not spec.greedy else 1.0,
            top_k=-1 if int(spec.top_k) <= 0 else int(spec.top_k),
            max_tokens=int(spec.max_tokens),
            seed=int(spec.seed if seed is None else seed),
            logprobs=0,
            **stop,
        )

    def generate(
        self, prompts: list[list[int]], spec: SamplingSpec, seeds: list[int] | None = None
    ) -> list[list[Sample]]:
        """For each prompt (token ids) ``spec.n`` samples. Request ``i`` is seeded ``seeds[i]`` (default
        ``spec.seed + i``) so that prompts draw independent random streams and a request's samples do not
        depend on batching."""
        if seeds is not None and len(seeds) != len(prompts):
            raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
        if self.sleeping:
            raise RuntimeError("VLLMRollout.generate called while asleep; call wake_up() first")
        from vllm.inputs import TokensPrompt

        if not prompts:
            return []
        reqs = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        params = [
            self.sampling_params(spec, seed=(int(seeds[i]) if seeds is not None else int(spec.seed) + i) & 0x7FFFFFFF)
            for i in range(len(prompts))
        ]
        outs = self.llm.generate(reqs, params, use_tqdm=False)
        result: list[list[Sample]] = []
        for p, ro in zip(prompts, outs, strict=True):
            group = []
            for co in sorted(ro.outputs, key=lambda c: c.index):
                ids = list(co.token_ids)
                group.append(
                    Sample(
                        prompt_ids=list(p),
                        response_ids=ids,
                        logprobs=chosen_logprobs(co.logprobs, ids),
                        finish_reason=normalise_finish(co.finish_reason),
                        text=decode_response(self.tokenizer, ids),
                    )
                )
            if len(group) != spec.n:
                raise RuntimeError(f"vLLM returned {len(group)} samples for a prompt, expected {spec.n}")
            result.append(group)
        return result

    # -------------------------------------------------------------------------------------- RL plumbing
    def load_weights(self, named_tensors: Iterable[tuple[str, Any]] | dict[str, Any]) -> None:
        """Reload weights in place on every worker, then drop the prefix cache (old weights)."""
        items = list(named_tensors.items()) if isinstance(named_tensors, dict) else list(named_tensors)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(items)})
        self.llm.reset_prefix_cache()

    def sleep(self, level: int = 1) -> None:
        """Free GPU memory for training: level 1 offloads weights to CPU and drops the KV cache; level 2 drops
        the weights too (reload with :meth:`load_weights` after :meth:`wake_up`)."""
        self.llm.sleep(level=level)
        self.sleeping = True

    def wake_up(self, tags: list[str] | None = None) -> None:
        if tags is None:
            self.llm.wake_up()
        else:
            self.llm.wake_up(tags=tags)
        self.sleeping = False


def chosen_logprobs(step_logprobs: Any, ids: list[int]) -> list[float]:
    """Log-prob of each chosen token from vLLM's per-step ``{token_id: Logprob}`` dicts (or raw floats)."""
    if step_logprobs is None:
        return [0.0] * len(ids)
    out = []
    for tok, step in zip(ids, step_logprobs, strict=False):
        if step is None:
            out.append(0.0)
            continue
        lp = step.get(tok) if hasattr(step, "get") else step
        val = getattr(lp, "logprob", lp)
        out.append(float(val) if val is not None else 0.0)
    out += [0.0] * (len(ids) - len(out))
    return out


def normalise_finish(reason: str | None) -> str:
    """vLLM finish reasons -> r1's: 'stop' (EOS or a stop string) or 'length' (everything else)."""
    return "stop" if reason == "stop" else "length"
