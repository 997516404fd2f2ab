"""The training loop every learner shares: minibatches, logging, checkpoints, resume, a learning curve.

:class:`Trainer` keeps the whole dataset on the device as tensors and samples minibatches of frame indices with
its own seeded generator, so a run is reproducible and a resumed run continues exactly where it stopped (weights,
optimiser moments, both random generators and the step are in the checkpoint).

A checkpoint is a folder (``OUT/checkpoint``, replaced as a whole each time it is written):

``config.json``             format, algorithm name and config, dimensions, step, the observation encoder and action
                            codec (:mod:`robot_irl.learn.datasets`), the trainer config and caller metadata
``model.safetensors``       the learner's networks (``<module>.<parameter>``)
``normalizer.safetensors``  observation / action statistics (:class:`robot_irl.learn.networks.Normalizer`)
``optimizer.safetensors``   optimiser tensors, generator states; with ``trainer_state.json`` (step, history and
                            the optimisers' hyperparameters) only needed to resume

Next to it: ``metrics.jsonl`` (one line per logged step) and ``learning_curve.png``.

:func:`train_policy` is the short way from :class:`~robot_irl.learn.datasets.OfflineData` to a checkpoint.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_irl.core.config import Config, check
from robot_irl.learn.networks import Normalizer, load_normalizers, save_normalizers

CHECKPOINT_FORMAT = "robot_irl.checkpoint/1"
CHECKPOINT_DIR = "checkpoint"


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete or does not match what loads it."""


@dataclass
class TrainerConfig(Config):
    steps: int = 5000
    batch_size: int = 256
    seed: int = 0
    device: str = "cpu"
    num_threads: int = 2  # torch intra-op threads; 0 leaves torch's default
    log_every: int = 100
    checkpoint_every: int = 0  # steps between checkpoints; 0: only at the end
    validation_fraction: float = 0.0  # fraction of episodes held out for a validation error (train_policy)
    progress: bool = True

    def validate(self) -> None:
        w = "TrainerConfig"
        check(self.steps >= 1, f"{w}.steps", f"must be >= 1, got {self.steps}")
        check(self.batch_size >= 1, f"{w}.batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.num_threads >= 0, f"{w}.num_threads", "must be >= 0")
        check(self.log_every >= 1, f"{w}.log_every", "must be >= 1")
        check(self.checkpoint_every >= 0, f"{w}.checkpoint_every", "must be >= 0")
        check(0.0 <= self.validation_fraction < 1.0, f"{w}.validation_fraction", "must be in [0, 1)")
        check(self.device == "cpu" or self.device.startswith("cuda"), f"{w}.device",
              f"must be 'cpu' or 'cuda[:N]', got {self.device!r}")


# ---------------------------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------------------------
def _optimizer_tensors(optimizers: Mapping[str, torch.optim.Optimizer]) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimiser states split into tensors (for safetensors) and the JSON-able rest."""
    tensors, rest = {}, {}
    for name, opt in optimizers.items():
        sd = opt.state_dict()
        plain: dict[str, dict] = {}
        for idx, state in sd["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
                else:
                    plain.setdefault(str(idx), {})[key] = value
        rest[name] = {"param_groups": sd["param_groups"], "state": plain,
                      "tensor_state": sorted({str(i) for i in sd["state"]})}
    return tensors, rest


def _load_optimizers(optimizers: Mapping[str, torch.optim.Optimizer], tensors: Mapping[str, torch.Tensor],
                     rest: Mapping[str, Any], device: torch.device) -> None:
    for name, opt in optimizers.items():
        if name not in rest:
            raise CheckpointError(f"checkpoint has no state for optimiser {name!r} (has {sorted(rest)})")
        saved = rest[name]
        state: dict[int, dict] = {}
        for idx in saved["tensor_state"]:
            prefix = f"{name}.{idx}."
            entry = {k[len(prefix):]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)}
            entry.update(saved["state"].get(idx, {}))
            state[int(idx)] = entry
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})


def save_checkpoint(path: str | Path, algorithm: Any, normalizers: Mapping[str, Normalizer], meta: Mapping,
                    trainer_state: Mapping | None = None, generator: torch.Generator | None = None) -> Path:
    """Write a checkpoint folder at ``path`` (replacing one there) and return it.

    ``meta`` is stored in ``config.json`` (encoder, codec, trainer config, anything the caller adds);
    ``trainer_state`` and ``generator`` make it resumable.
    """
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {f"{m}.{k}": v.detach().cpu().contiguous() for m, module in algorithm.modules().items()
               for k, v in module.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    save_normalizers(tmp / "normalizer.safetensors", normalizers)
    config = {"format": CHECKPOINT_FORMAT, "algorithm": algorithm.name, "algorithm_config": algorithm.config.to_dict(),
              "obs_dim": algorithm.obs_dim, "act_dim": algorithm.act_dim, **meta}
    if trainer_state is not None:
        config["step"] = int(trainer_state["step"])
        tensors, rest = _optimizer_tensors(algorithm.optimizers())
        tensors["rng.torch"] = torch.get_rng_state()
        if generator is not None:
            tensors["rng.sampler"] = generator.get_state()
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {**trainer_state, "optimizers": rest}
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1, default=float))
    (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    old = path.with_name(path.name + ".old")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    return path


def read_checkpoint_config(path: str | Path) -> dict:
    """``config.json`` of a checkpoint folder (``path`` may also be a training run folder holding one)."""
    path = Path(path)
    if (path / CHECKPOINT_DIR / "config.json").is_file():
        path = path / CHECKPOINT_DIR
    cfg = path / "config.json"
    if not cfg.is_file():
        raise CheckpointError(f"no checkpoint at {path}: {cfg.name} does not exist")
    config = json.loads(cfg.read_text())
    if config.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{cfg}: format {config.get('format')!r} is not {CHECKPOINT_FORMAT!r}")
    config["path"] = str(path)
    return config


def build_algorithm(config: Mapping, device: str = "cpu") -> Any:
    """A fresh learner as described by a checkpoint's ``config.json``."""
    from robot_irl.learn import ALGORITHMS

    cls = ALGORITHMS.get(config["algorithm"])
    algo_config = cls.config_class.from_dict(config["algorithm_config"], where=f"{config['algorithm']} config")
    return cls(config["obs_dim"], config["act_dim"], algo_config, device=device)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[Any, dict, dict[str, Normalizer]]:
    """(learner with the saved weights, ``config.json`` contents, normalisers) of a checkpoint folder."""
    from safetensors.torch import load_file

    config = read_checkpoint_config(path)
    folder = Path(config["path"])
    algorithm = build_algorithm(config, device)
    weights = load_file(str(folder / "model.safetensors"))
    for name, module in algorithm.modules().items():
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{folder}: weights of {name!r} do not fit the network: {e}") from None
    return algorithm, config, load_normalizers(folder / "normalizer.safetensors")


# ---------------------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------------------
class Trainer:
    """Runs ``algorithm.update`` on minibatches of ``data`` for ``config.steps`` steps, writing under ``out``.

    ``data`` maps names to tensors with one row per frame (``obs``, ``action``, ...), already normalised;
    ``normalizers`` and ``meta`` are stored in every checkpoint. ``validation`` (same keys) is scored with
    ``algorithm.evaluate`` at every log step when given.
    """

    def __init__(self, algorithm: Any, data: Mapping[str, torch.Tensor], config: TrainerConfig, out: str | Path,
                 normalizers: Mapping[str, Normalizer], meta: Mapping | None = None,
                 validation: Mapping[str, torch.Tensor] | None = None) -> None:
        sizes = {k: len(v) for k, v in data.items()}
        if not sizes or len(set(sizes.values())) != 1 or next(iter(sizes.values())) == 0:
            raise ValueError(f"Trainer: data needs tensors with the same, non-zero number of rows; got {sizes}")
        self.algorithm, self.config, self.out = algorithm, config, Path(out)
        self.device = torch.device(config.device)
        self.data = {k: v.to(self.device) for k, v in data.items()}
        self.validation = {k: v.to(self.device) for k, v in validation.items()} if validation else None
        self.size = next(iter(sizes.values()))
        self.normalizers, self.meta = dict(normalizers), {**(meta or {}), "trainer": config.to_dict()}
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.step = 0
        self.history: list[dict] = []
        self.train_time_s = 0.0

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def sample(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(self.size, (self.config.batch_size,), generator=self.generator, device=self.device)
        return {k: v[idx] for k, v in self.data.items()}

    def save(self) -> Path:
        state = {"step": self.step, "history": self.history, "train_time_s": self.train_time_s}
        return save_checkpoint(self.checkpoint_path, self.algorithm, self.normalizers, self.meta, state,
                               self.generator)

    def resume(self) -> bool:
        """Continue from ``OUT/checkpoint`` if there is one; returns whether it did."""
        from safetensors.torch import load_file

        if not (self.checkpoint_path / "trainer_state.json").is_file():
            return False
        loaded, config, _ = load_checkpoint(self.checkpoint_path, str(self.device))
        if config["obs_dim"] != self.algorithm.obs_dim or config["act_dim"] != self.algorithm.act_dim:
            raise CheckpointError(f"{self.checkpoint_path}: dimensions {config['obs_dim']}->{config['act_dim']} "
                                  f"differ from this run's {self.algorithm.obs_dim}->{self.algorithm.act_dim}")
        for name, module in self.algorithm.modules().items():
            module.load_state_dict(loaded.modules()[name].state_dict())
        state = json.loads((self.checkpoint_path / "trainer_state.json").read_text())
        tensors = load_file(str(self.checkpoint_path / "optimizer.safetensors"))
        _load_optimizers(self.algorithm.optimizers(), tensors, state["optimizers"], self.device)
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.sampler" in tensors:
            self.generator.set_state(tensors["rng.sampler"])
        self.step, self.history = int(state["step"]), list(state["history"])
        self.train_time_s = float(state.get("train_time_s", 0.0))
        self._rewrite_metrics()
        return True

    def _rewrite_metrics(self) -> None:
        with open(self.out / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(h) + "\n" for h in self.history)

    def _log(self, metrics: list[dict[str, float]]) -> dict:
        record = {"step": self.step, **{k: float(np.mean([m[k] for m in metrics])) for k in metrics[0]}}
        if self.validation is not None and hasattr(self.algorithm, "evaluate"):
            record.update({f"val_{k}": v for k, v in self.algorithm.evaluate(self.validation).items()})
        record["time_s"] = round(self.train_time_s, 3)
        self.history.append(record)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        return record

    def run(self, resume: bool = False) -> dict:
        """Train to ``config.steps`` (continuing a checkpoint if ``resume``); returns a summary."""
        from tqdm.auto import tqdm

        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume() if resume else False
        if not resumed:
            torch.manual_seed(self.config.seed)
            (self.out / "metrics.jsonl").unlink(missing_ok=True)
        c = self.config
        pending: list[dict[str, float]] = []
        with tqdm(total=c.steps, initial=self.step, disable=not c.progress, unit="step", dynamic_ncols=True,
                  mininterval=0.5, desc=f"train {self.algorithm.name}") as bar:
            while self.step < c.steps:
                tick = time.perf_counter()
                pending.append(self.algorithm.update(self.sample()))
                self.step += 1
                self.train_time_s += time.perf_counter() - tick
                bar.update(1)
                if self.step % c.log_every == 0 or self.step == c.steps:
                    record = self._log(pending)
                    pending = []
                    bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "time_s")})
                if c.checkpoint_every and self.step % c.checkpoint_every == 0 and self.step < c.steps:
                    self.save()
        self.save()
        plot_learning_curve(self.history, self.out / "learning_curve.png", title=f"{self.algorithm.name}")
        final = self.history[-1] if self.history else {}
        return {"steps": self.step, "resumed": resumed, "train_time_s": round(self.train_time_s, 2),
                "updates_per_s": round(self.step / max(self.train_time_s, 1e-9), 1), "final": final,
                "checkpoint": str(self.checkpoint_path)}


def plot_learning_curve(history: list[dict], path: str | Path, title: str = "") -> Path | None:
    """One panel per logged metric against the step (log scale where positive); returns the PNG path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not history:
        return None
    keys = [k for k in history[0] if k not in ("step", "time_s")]
    base = sorted({k.removeprefix("val_") for k in keys})
    fig = Figure(figsize=(4.0 * len(base), 3.2), layout="constrained")
    FigureCanvasAgg(fig)
    steps = [h["step"] for h in history]
    for i, key in enumerate(base):
        ax = fig.add_subplot(1, len(base), i + 1)
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            values = [h.get(name, np.nan) for h in history]
            if not np.all(np.isnan(values)):
                ax.plot(steps, values, style, label="validation" if name.startswith("val_") else "train")
        if all(h.get(key, 1.0) > 0 for h in history):
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.savefig(str(path), dpi=90)
    return Path(path)


# ---------------------------------------------------------------------------------------------------------------
# from data to a checkpoint
# ---------------------------------------------------------------------------------------------------------------
def _split_episodes(data, fraction: float, seed: int):
    if fraction <= 0 or data.num_episodes < 2:
        return data, None
    rng = np.random.default_rng(seed)
    episodes = rng.permutation(data.episodes)
    held = max(1, int(round(fraction * len(episodes))))
    return data.select_episodes(sorted(episodes[held:])), data.select_episodes(sorted(episodes[:held]))


def train_policy(data, encoder, codec, out: str | Path, algorithm: str = "bc",
                 algorithm_config: Config | Mapping | None = None, trainer: TrainerConfig | None = None,
                 resume: bool = False, meta: Mapping | None = None) -> dict:
    """Fit normalisers on ``data`` (:class:`~robot_irl.learn.datasets.OfflineData`), train ``algorithm`` and
    write ``out/checkpoint``. Returns the trainer's summary plus the data sizes.

    ``encoder``/``codec`` (:func:`robot_irl.learn.datasets.load_offline_data` returns them) go into the checkpoint,
    so :class:`robot_irl.learn.policy.LearnedPolicy` rebuilds the same inputs and outputs.
    """
    from robot_irl.learn import ALGORITHMS

    trainer = trainer or TrainerConfig()
    cls = ALGORITHMS.get(algorithm)
    if algorithm_config is None or isinstance(algorithm_config, Mapping):
        algorithm_config = cls.config_class.from_dict(dict(algorithm_config or {}))
    train, held_out = _split_episodes(data, trainer.validation_fraction, trainer.seed)
    normalizers = {"obs": Normalizer.fit(train.observations), "action": Normalizer.fit(train.actions)}

    def tensors(d):
        t = d.tensors(trainer.device)
        t["obs"] = normalizers["obs"].normalize(t["obs"])
        t["next_obs"] = normalizers["obs"].normalize(t["next_obs"])
        t["action"] = normalizers["action"].normalize(t["action"])
        return t

    torch.manual_seed(trainer.seed)
    learner = cls(encoder.dim, codec.dim, algorithm_config, device=trainer.device)
    info = {"encoder": encoder.to_dict(), "codec": codec.to_dict(), "frames": len(train),
            "episodes": train.num_episodes, "sources": list(data.sources), **(meta or {})}
    run = Trainer(learner, tensors(train), trainer, out, normalizers, info,
                  validation=tensors(held_out) if held_out is not None else None)
    return {**run.run(resume=resume), "frames": len(train), "episodes": train.num_episodes}
