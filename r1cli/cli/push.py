"""``r1 push --run RUN --repo-id ID [--stage final]``: upload a run's model folder with its model card to the Hugging
Face Hub (``huggingface_hub``: create_repo + upload_folder). Also the helper that writes each exported model
folder's card (``r1 train sft|rl``, ``r1 long2short``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import typer

from r1cli.cli.common import console, fail, frozen, handle_errors

MODEL_NAMES_HELP = "final | sft | <RL stage name> | long2short"


def model_names(cfg: Any, run: Path, name: str) -> tuple[Path, list[str]]:
    """The folder of the run's model ``name`` and the other names of that folder (``final`` = the last RL
    stage); raises ``ValueError`` for a name that is no model folder of the run."""
    from r1cli.config import to_dict
    from r1cli.pipeline.dag import Plan

    plan = Plan(to_dict(cfg))
    rel = plan.model_dir(name)
    if rel == [] or rel == plan.model_dir("base"):
        known = ["final", *(["sft"] if cfg.warmups.sft.enabled else []), *plan.stage_names,
                 *(["long2short"] if cfg.long2short.enabled else [])]
        raise ValueError(f"{name!r} is not a trained model of this run (models: {', '.join(known)})")
    names = ["sft", *plan.stage_names, "final", "long2short"]
    aliases = [n for n in names if n != name and plan.model_dir(n) == rel]
    return run / str(rel), aliases


def write_model_card(cfg: Any, run: Path, name: str, model_dir: Path | None = None) -> Path:
    """Write the model card (README.md) of the run's model ``name`` into its folder."""
    from r1cli.config import to_dict
    from r1cli.report.card import write_card

    folder, aliases = model_names(cfg, run, name)
    return write_card(to_dict(cfg), run, model_dir or folder, model_name=name, aliases=aliases)


@handle_errors
def push(
    run: Path = typer.Option(..., "--run", help="run directory"),
    repo_id: str = typer.Option(..., "--repo-id", help="Hub repository, e.g. your-name/qwen-r1-zero"),
    stage: str = typer.Option("final", "--stage", help=f"which model: {MODEL_NAMES_HELP}"),
    private: bool = typer.Option(False, "--private", help="create the repository as private"),
    revision: str | None = typer.Option(None, "--revision", help="branch to push to (default: main)"),
    message: str | None = typer.Option(None, "--message", help="commit message"),
) -> None:
    """Upload a model of the run with a fresh model card (recipe, resolved config, data, eval table with the
    sampling spec, how to load it). Needs network and a Hub token (HF_TOKEN or `hf auth login`)."""
    from r1cli.config import to_dict
    from r1cli.report.card import model_card

    if not (run / "config.yaml").exists():
        raise fail(f"{run} is not an r1 run directory (no config.yaml)")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise fail(f"--repo-id must be OWNER/NAME, got {repo_id!r}")
    cfg = frozen(run)
    try:
        folder, aliases = model_names(cfg, run, stage)
    except ValueError as exc:
        raise fail(f"--stage: {exc}") from None
    if not (folder / "config.json").is_file():
        raise fail(f"{folder} has no exported model (config.json); run the pipeline up to {stage!r} first")
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        raise fail("HF_HUB_OFFLINE is set: unset it to push to the Hub")
    card = model_card(to_dict(cfg), run, model_name=stage, aliases=aliases, repo_id=repo_id)
    from huggingface_hub import HfApi

    api = HfApi()
    with tempfile.TemporaryDirectory(prefix="r1-push-") as tmp:
        staged = Path(tmp) / folder.name
        staged.mkdir()
        for p in sorted(folder.iterdir()):  # the run's folder stays untouched (Snakemake tracks its mtime)
            if p.is_file() and p.name != "README.md":
                try:
                    os.link(p, staged / p.name)
                except OSError:
                    shutil.copy2(p, staged / p.name)
        (staged / "README.md").write_text(card, encoding="utf-8")
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(staged),
            repo_type="model",
            revision=revision,
            commit_message=message or f"r1: {cfg.name} {stage} from {run.name}",
        )
    console.print(f"pushed {folder} ({stage}) with its model card -> {getattr(commit, 'commit_url', None) or url}")
