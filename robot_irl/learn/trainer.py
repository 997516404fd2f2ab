"""The training loop every learner shares: minibatches, logging, checkpoints, resume, evaluation, learning curves.

:class:`Trainer` keeps the whole dataset on the device as tensors (packed into one matrix, so a minibatch is one
gather) and samples minibatches of row indices with its own seeded generator, so a run is reproducible and a
resumed run continues exactly where it stopped (weights, optimiser moments, the learner's own counters, the random
generators and the step are in the checkpoint). ``device="auto"`` trains on CUDA when torch sees a GPU.

Learners return their metrics as detached 0-d tensors (or floats); the trainer reads them back to the host only at
log steps (one synchronisation per log step, none per update), writes ``metrics.jsonl``, TensorBoard scalars
(``OUT/tb``) and, at the end, ``learning_curve.png``. A non-finite metric stops the run with an error naming it.
With ``eval_every`` and an evaluator (:class:`RolloutEvaluator`: rollouts of the latest weights in simulation,
through :class:`robot_irl.learn.policy.LearnedPolicy`) the success rate and return are logged as
``eval/success_rate`` and ``eval/return``; evaluation draws no random numbers from the training generators.

A checkpoint is a folder (``OUT/checkpoint``, replaced as a whole each time it is written):

``config.json``             format, algorithm name and config, dimensions, step, the observation encoder and action
                            codec (:mod:`robot_irl.learn.datasets`), the trainer config and caller metadata
``model.safetensors``       the learner's networks (``<module>.<parameter>``)
``normalizer.safetensors``  observation / action statistics (:class:`robot_irl.learn.networks.Normalizer`)
``optimizer.safetensors``   optimiser tensors, generator states; with ``trainer_state.json`` (step, history and
                            the optimisers' hyperparameters) only needed to resume

Next to it: ``metrics.jsonl`` (one line per logged step), ``tb/`` (TensorBoard), ``learning_curve.png`` and, with
periodic evaluation, ``eval_checkpoint/`` (the weights last evaluated).

:func:`train_policy` is the short way from :class:`~robot_irl.learn.datasets.OfflineData` to a checkpoint: frames
for behaviour cloning, transitions (:class:`~robot_irl.learn.datasets.TDDataConfig`) for TD learners.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from robot_irl.core.config import Config, ConfigError, check
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
    device: str = "auto"  # auto: cuda when available, else cpu
    num_threads: int = 2  # torch intra-op threads; 0 leaves torch's default
    matmul_precision: Literal["highest", "high", "medium"] = "highest"  # float32 matmuls: highest = IEEE fp32;
    #   high = TF32 on CUDA; medium = bfloat16 inputs, fp32 accumulation (CPUs with AMX/AVX512-BF16, CUDA):
    #   several times faster matmuls at ~3 significant digits (torch.set_float32_matmul_precision)
    log_every: int = 100
    checkpoint_every: int = 0  # steps between checkpoints; 0: only at the end
    validation_fraction: float = 0.0  # fraction of episodes held out for a validation error (train_policy)
    eval_every: int = 0  # steps between evaluations in simulation (needs an evaluator); 0: none
    eval_episodes: int = 5
    eval_max_steps: int = 0  # 0: the recording's max_steps (or 200)
    eval_seed: int = 100_000  # first evaluation episode seed (away from the recording's seeds)
    tensorboard: bool = True  # scalars in OUT/tb
    progress: bool = True

    def validate(self) -> None:
        w = "TrainerConfig"
        check(self.steps >= 1, f"{w}.steps", f"must be >= 1, got {self.steps}")
        check(self.batch_size >= 1, f"{w}.batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.num_threads >= 0, f"{w}.num_threads", "must be >= 0")
        check(self.log_every >= 1, f"{w}.log_every", "must be >= 1")
        check(self.checkpoint_every >= 0, f"{w}.checkpoint_every", "must be >= 0")
        check(0.0 <= self.validation_fraction < 1.0, f"{w}.validation_fraction", "must be in [0, 1)")
        check(self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"{w}.device",
              f"must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        check(self.eval_every >= 0, f"{w}.eval_every", "must be >= 0")
        check(self.eval_episodes >= 1, f"{w}.eval_episodes", "must be >= 1")
        check(self.eval_max_steps >= 0, f"{w}.eval_max_steps", "must be >= 0")


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` if torch sees a GPU else ``cpu``; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"TrainerConfig.device: {name!r} requested but torch sees no CUDA device; use 'auto' or "
                          "'cpu'")
    return name


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
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            tensors["rng.cuda"] = torch.cuda.get_rng_state()
        if generator is not None:
            tensors["rng.sampler"] = generator.get_state()
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {**trainer_state, "optimizers": rest}
        if hasattr(algorithm, "training_state"):
            state["algorithm_state"] = algorithm.training_state()
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

    ``data`` maps names to tensors with one row per frame or transition (``obs``, ``action``, ...), already
    normalised; ``normalizers`` and ``meta`` are stored in every checkpoint. ``validation`` (same keys) is scored
    with ``algorithm.evaluate`` at every log step when given. ``evaluator(checkpoint_folder) -> {"success_rate",
    "return"}`` runs every ``config.eval_every`` steps (and at the end) on a weights-only checkpoint.
    """

    def __init__(self, algorithm: Any, data: Mapping[str, torch.Tensor], config: TrainerConfig, out: str | Path,
                 normalizers: Mapping[str, Normalizer], meta: Mapping | None = None,
                 validation: Mapping[str, torch.Tensor] | None = None, evaluator: Any = None) -> None:
        sizes = {k: len(v) for k, v in data.items()}
        if not sizes or len(set(sizes.values())) != 1 or next(iter(sizes.values())) == 0:
            raise ValueError(f"Trainer: data needs tensors with the same, non-zero number of rows; got {sizes}")
        self.algorithm, self.config, self.out = algorithm, config, Path(out)
        self.device = torch.device(resolve_device(config.device))
        self.data = {k: v.to(self.device) for k, v in data.items()}
        self.validation = {k: v.to(self.device) for k, v in validation.items()} if validation else None
        self.size = next(iter(sizes.values()))
        self.normalizers, self.meta = dict(normalizers), {**(meta or {}), "trainer": config.to_dict()}
        self.evaluator = evaluator
        self._writer = None
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.step = 0
        self.history: list[dict] = []
        self.train_time_s = 0.0
        self._pack()

    @property
    def checkpoint_path(self) -> Path:
        return self.out / CHECKPOINT_DIR

    def _pack(self) -> None:
        """Float32 columns side by side in one (N, D) matrix: a minibatch is then a single row gather."""
        self._packed, self._layout = None, []
        if not all(v.dtype == torch.float32 and v.dim() in (1, 2) for v in self.data.values()):
            return
        start = 0
        for key, v in self.data.items():
            width = 1 if v.dim() == 1 else v.shape[1]
            self._layout.append((key, start, start + width, v.dim() == 1))
            start += width
        self._packed = torch.cat([v.reshape(self.size, -1) for v in self.data.values()], dim=1)

    def sample(self) -> dict[str, torch.Tensor]:
        idx = torch.randint(self.size, (self.config.batch_size,), generator=self.generator, device=self.device)
        if self._packed is None:
            return {k: v[idx] for k, v in self.data.items()}
        rows = self._packed[idx]
        return {k: rows[:, a] if flat else rows[:, a:b] for k, a, b, flat in self._layout}

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
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"])
        if "rng.sampler" in tensors:
            self.generator.set_state(tensors["rng.sampler"])
        if hasattr(self.algorithm, "load_training_state"):
            self.algorithm.load_training_state(state.get("algorithm_state", {}))
        self.step, self.history = int(state["step"]), list(state["history"])
        self.train_time_s = float(state.get("train_time_s", 0.0))
        self._rewrite_metrics()
        return True

    def _rewrite_metrics(self) -> None:
        with open(self.out / "metrics.jsonl", "w") as f:
            f.writelines(json.dumps(h) + "\n" for h in self.history)

    @staticmethod
    def mean_metrics(metrics: list[Mapping[str, Any]]) -> dict[str, float]:
        """Per-key means of the updates' metrics; tensors are averaged on their device and read back at once."""
        if not metrics:
            return {}
        keys = list(metrics[0])
        tensor_keys = [k for k in keys if torch.is_tensor(metrics[0][k])]
        out = {k: float(np.mean([float(m[k]) for m in metrics])) for k in keys if k not in tensor_keys}
        if tensor_keys:
            means = torch.stack([torch.stack([m[k].float() for m in metrics]).mean() for k in tensor_keys])
            out.update(zip(tensor_keys, means.tolist()))  # the one host synchronisation
        return {k: out[k] for k in keys}

    def _log(self, metrics: list[Mapping[str, Any]], evaluation: Mapping[str, float] | None = None) -> dict:
        record = {"step": self.step, **self.mean_metrics(metrics)}
        bad = [k for k, v in record.items() if not np.isfinite(v)]
        if bad:
            raise FloatingPointError(f"{self.algorithm.name}: metric(s) {bad} became non-finite at step {self.step} "
                                     f"({ {k: record[k] for k in bad} }); lower the learning rates or check the data")
        if self.validation is not None and hasattr(self.algorithm, "evaluate"):
            record.update({f"val_{k}": v for k, v in self.algorithm.evaluate(self.validation).items()})
        record.update(evaluation or {})
        record["time_s"] = round(self.train_time_s, 3)
        self.history.append(record)
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._writer is not None:
            for key, value in record.items():
                if key not in ("step", "time_s"):
                    self._writer.add_scalar(_tensorboard_tag(key), value, self.step)
        return record

    def evaluate(self) -> dict[str, float]:
        """Run the evaluator on the current weights (saved to ``OUT/eval_checkpoint``) without touching the
        training random generators; returns ``eval/<metric>`` values."""
        path = save_checkpoint(self.out / "eval_checkpoint", self.algorithm, self.normalizers,
                               {**self.meta, "step": self.step})
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            result = self.evaluator(path)
        return {f"eval/{k}": float(v) for k, v in result.items()}

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
        precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision(c.matmul_precision)
        evaluate = bool(c.eval_every and self.evaluator is not None)
        self._writer = None
        if c.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out / "tb"), purge_step=self.step if resumed else None)
        pending: list[Mapping[str, Any]] = []
        started_at = self.step
        try:
            with tqdm(total=c.steps, initial=self.step, disable=not c.progress, unit="step", dynamic_ncols=True,
                      mininterval=0.5, desc=f"train {self.algorithm.name}") as bar:
                while self.step < c.steps:
                    tick = time.perf_counter()
                    pending.append(self.algorithm.update(self.sample()))
                    self.step += 1
                    bar.update(1)
                    due = evaluate and (self.step % c.eval_every == 0 or self.step == c.steps)
                    if self.step % c.log_every == 0 or self.step == c.steps or due:
                        # reading the metrics back waits for queued device work: count it as training time
                        means = self.mean_metrics(pending)
                        self.train_time_s += time.perf_counter() - tick
                        record = self._log([means], self.evaluate() if due else None)
                        pending = []
                        bar.set_postfix({k.removeprefix("eval/"): f"{v:.4g}" for k, v in record.items()
                                         if k not in ("step", "time_s")})
                    else:
                        self.train_time_s += time.perf_counter() - tick
                    if c.checkpoint_every and self.step % c.checkpoint_every == 0 and self.step < c.steps:
                        self.save()
        finally:
            torch.set_float32_matmul_precision(precision)
            if self._writer is not None:
                self._writer.close()
            if hasattr(self.evaluator, "close"):
                self.evaluator.close()
        self.save()
        plot_learning_curve(self.history, self.out / "learning_curve.png", title=f"{self.algorithm.name}")
        final = self.history[-1] if self.history else {}
        done = self.step - started_at
        return {"steps": self.step, "resumed": resumed, "device": str(self.device),
                "train_time_s": round(self.train_time_s, 2),
                "updates_per_s": round(self.step / max(self.train_time_s, 1e-9), 1) if done else 0.0,
                "final": final, "checkpoint": str(self.checkpoint_path),
                "evaluations": [{k: h[k] for k in h if k == "step" or k.startswith("eval/")} for h in self.history
                                if any(k.startswith("eval/") for k in h)]}


def _tensorboard_tag(key: str) -> str:
    if "/" in key:
        return key
    return f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"


def plot_learning_curve(history: list[dict], path: str | Path, title: str = "") -> Path | None:
    """One panel per logged metric against the step (log scale where positive); returns the PNG path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not history:
        return None
    keys = [k for k in dict.fromkeys(k for h in history for k in h) if k not in ("step", "time_s")]
    base = list(dict.fromkeys(k.removeprefix("val_") for k in keys))
    base = [k for k in base if not k.startswith("eval/")] + [k for k in base if k.startswith("eval/")]
    cols = min(len(base), 4)
    rows = -(-len(base) // cols)
    fig = Figure(figsize=(4.0 * cols, 3.2 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, key in enumerate(base):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name, style in ((key, "o-" if key.startswith("eval/") else "-"), (f"val_{key}", "--")):
            points = [(h["step"], h[name]) for h in history if name in h]
            label = "validation" if name.startswith("val_") else "evaluation" if name.startswith("eval/") \
                else "train"
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=label)
        values = [h[key] for h in history if key in h]
        if values and all(v > 0 for v in values) and max(values) / min(values) > 10:
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


def fit_normalizers(data, data_config=None) -> dict[str, Normalizer]:
    """Observation and action normalisers fitted on ``data`` (an OfflineData).

    Without ``data_config`` (behaviour cloning) both are standardised. With a
    :class:`~robot_irl.learn.datasets.TDDataConfig`: observations are standardised if ``normalize_states`` (else
    left as they are), actions per ``action_normalization`` (``minmax`` to [-1, 1], ``standard`` or ``none``).
    """
    if data_config is None:
        return {"obs": Normalizer.fit(data.observations), "action": Normalizer.fit(data.actions)}
    obs = Normalizer.fit(data.observations) if data_config.normalize_states \
        else Normalizer.identity(data.observations.shape[1])
    mode = data_config.action_normalization
    action = {"minmax": Normalizer.fit_range, "standard": Normalizer.fit}[mode](data.actions) if mode != "none" \
        else Normalizer.identity(data.actions.shape[1])
    return {"obs": obs, "action": action}


def train_policy(data, encoder, codec, out: str | Path, algorithm: str = "bc",
                 algorithm_config: Config | Mapping | None = None, trainer: TrainerConfig | None = None,
                 resume: bool = False, meta: Mapping | None = None, data_config=None, evaluator: Any = None) -> dict:
    """Fit normalisers on ``data`` (:class:`~robot_irl.learn.datasets.OfflineData`), train ``algorithm`` and
    write ``out/checkpoint``. Returns the trainer's summary plus the data sizes.

    ``encoder``/``codec`` (:func:`robot_irl.learn.datasets.load_offline_data` returns them) go into the checkpoint,
    so :class:`robot_irl.learn.policy.LearnedPolicy` rebuilds the same inputs and outputs. Learners that train on
    transitions (``cls.transitions``, e.g. IQL) get :meth:`OfflineData.transition_tensors` under ``data_config``
    (default :class:`~robot_irl.learn.datasets.TDDataConfig`, saved in the checkpoint); the others every frame.
    ``evaluator``: see :class:`Trainer` (used when ``trainer.eval_every`` > 0).
    """
    from robot_irl.learn import ALGORITHMS
    from robot_irl.learn.datasets import TDDataConfig

    trainer = trainer or TrainerConfig()
    cls = ALGORITHMS.get(algorithm)
    if algorithm_config is None or isinstance(algorithm_config, Mapping):
        algorithm_config = cls.config_class.from_dict(dict(algorithm_config or {}), where=f"{algorithm} config")
    if hasattr(cls, "resolve_config"):
        algorithm_config = cls.resolve_config(algorithm_config, trainer.steps)
    transitions = bool(getattr(cls, "transitions", False))
    if transitions and data_config is None:
        data_config = TDDataConfig()
    device = resolve_device(trainer.device)
    train, held_out = _split_episodes(data, trainer.validation_fraction, trainer.seed)
    normalizers = fit_normalizers(train, data_config if transitions else None)

    def tensors(d):
        t = d.transition_tensors(device, data_config.timeouts) if transitions else d.tensors(device)
        t["obs"] = normalizers["obs"].normalize(t["obs"])
        t["next_obs"] = normalizers["obs"].normalize(t["next_obs"])
        t["action"] = normalizers["action"].normalize(t["action"])
        if transitions:
            return {k: t[k] for k in ("obs", "action", "reward", "next_obs", "done")}
        return t

    torch.manual_seed(trainer.seed)
    learner = cls(encoder.dim, codec.dim, algorithm_config, device=device)
    train_tensors = tensors(train)
    count = len(train_tensors["obs"])
    info = {"encoder": encoder.to_dict(), "codec": codec.to_dict(), "frames": len(train),
            "episodes": train.num_episodes, "sources": list(data.sources), **(meta or {})}
    if transitions:
        info.update({"data": data_config.to_dict(), "transitions": count})
    run = Trainer(learner, train_tensors, trainer, out, normalizers, info,
                  validation=tensors(held_out) if held_out is not None else None, evaluator=evaluator)
    sizes = {"frames": len(train), "episodes": train.num_episodes, **({"transitions": count} if transitions else {})}
    return {**run.run(resume=resume), **sizes}


# ---------------------------------------------------------------------------------------------------------------
# evaluation in simulation
# ---------------------------------------------------------------------------------------------------------------
class RolloutEvaluator:
    """Success rate and mean return of a checkpoint over ``episodes`` rollouts on a simulated driver.

    ``backend``/``driver_config``: the driver (``robot_irl.drivers.DRIVERS``), built and connected on the first
    call and kept for the next ones; episode seeds are ``seed, seed + 1, ...`` every time, so successive
    evaluations are comparable. Cameras in the config are not rendered (the learned policies act on vector
    observations; rendering is the slow part of a rollout). Call :meth:`close` when done (the trainer does).
    """

    def __init__(self, backend: str, driver_config: Mapping | None = None, episodes: int = 5, max_steps: int = 200,
                 seed: int = 100_000, stop_on_success: bool = False, adversary: str = "none") -> None:
        from robot_irl.drivers import FAMILIES

        if backend not in FAMILIES["sim"]:
            raise ConfigError(f"evaluation runs in simulation: {backend!r} is not a sim backend "
                              f"({list(FAMILIES['sim'])})")
        if episodes < 1 or max_steps < 1:
            raise ConfigError(f"RolloutEvaluator: episodes and max_steps must be >= 1, got {episodes}, {max_steps}")
        self.backend, self.driver_config = backend, dict(driver_config or {})
        self.episodes, self.max_steps, self.seed = int(episodes), int(max_steps), int(seed)
        self.stop_on_success, self.adversary = bool(stop_on_success), adversary
        self.driver = None
        self.results: list = []

    def open(self):
        if self.driver is None:
            from robot_irl.drivers import make_driver

            config = {k: v for k, v in self.driver_config.items() if k != "cameras"}
            self.driver = make_driver(self.backend, config)
            self.driver.connect()
        return self.driver

    def _adversary(self):
        if self.adversary == "none":
            return None
        from robot_irl.collect.adversary import AdversaryConfig, ScriptedAdversary

        return ScriptedAdversary(AdversaryConfig.preset(self.adversary), seed=self.seed)

    def __call__(self, checkpoint: str | Path, policy: Any = None, on_step: Any = None,
                 progress: bool = False) -> dict[str, float]:
        from robot_irl.learn.policy import LearnedPolicy
        from robot_irl.runner import run_episode, summarize

        driver = self.open()
        if policy is None:
            policy = LearnedPolicy(checkpoint)
            policy.check_features(driver)
        self.results = []
        for ep in range(self.episodes):
            self.results.append(run_episode(driver, policy, self.max_steps, index=ep, seed=self.seed + ep,
                                            stop_on_success=self.stop_on_success, adversary=self._adversary(),
                                            on_step=on_step))
            if progress:
                r = self.results[-1]
                print(f"  episode {ep}: {r.steps} steps, success {r.success}, return {r.episode_return:.3f}",
                      flush=True)
        summary = summarize(self.results)
        return {"success_rate": summary["success_rate"], "return": summary["mean_return"]}

    def close(self) -> None:
        if self.driver is not None:
            self.driver.disconnect()
            self.driver = None
