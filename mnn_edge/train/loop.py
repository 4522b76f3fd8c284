"""The training loop behind ``mnn-train``: one code path for CPU, one GPU and torchrun multi-GPU.

Under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment) the same loop wraps the network in
DistributedDataParallel, shards the data with a DistributedSampler and lets rank 0 alone
validate, log and save. Stages that train only the pose heads skip the decoder (the encoder is
about 40% of the compute); DDP is told that unused parameters are expected.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mnn_edge.artifact import DEFAULT_MEAN, DEFAULT_STD, landmark_scheme_for
from mnn_edge.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mnn_edge.errors import MnnEdgeError, Terminated
from mnn_edge.fileio import write_text_atomic
from mnn_edge.meanface import mean_face
from mnn_edge.model.network import MNN, init_weights, scale_pose
from mnn_edge.train.config import Stage, TrainConfig, check_step_memory
from mnn_edge.train.dataset import CropDataset
from mnn_edge.train.losses import mnn_losses

LAST = "last.pt"  # fp32 weights + optimizer state, for --resume
FINAL = "model_fp16.pt"  # fp16 weights only, what ships
LOG = "log.json"  # one entry per epoch


class TrainNet(nn.Module):
    """MNN with switches to run the encoder and pose heads only, and to read the pose of the
    mirrored images too (the ``mirror`` loss); what DDP wraps."""

    def __init__(self, model: MNN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, decoder: bool = True, mirror: bool = False) -> dict[str, torch.Tensor]:
        if decoder:
            out = self.model(x)
        else:
            code, _ = self.model.encoder(x)
            out = {"pose": scale_pose(self.model.fc_pose(code)), "pose_proj": scale_pose(self.model.fc_pose_proj(code))}
        if mirror:
            # Encoder and fc_pose only: the term compares poses, the decoder would be wasted work.
            code, _ = self.model.encoder(x.flip(-1))
            out["pose_mirror"] = scale_pose(self.model.fc_pose(code))
        return out


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1 (NCCL on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return DistInfo(rank=dist.get_rank(), world=world, local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise MnnEdgeError("--device cuda was requested but this torch build sees no CUDA GPU")
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def device_memory_bytes(device: torch.device) -> float | None:
    """The GPU's memory on CUDA, the machine's RAM on CPU; None where the system does not say."""
    from mnn_edge.host import memory_gb

    if device.type == "cuda":
        return float(torch.cuda.get_device_properties(device).total_memory)
    ram_gib = memory_gb()
    return None if ram_gib is None else ram_gib * 1024**3


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then cosine from ``lr`` to ``lr * min_lr_frac`` over the run's progress."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    cos = cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * warm * cos


def expected_end_step(total_steps: int, step: int, elapsed_s: float, budget_s: float | None,
                      session_steps: int, session_s: float) -> int:
    """The step the run will stop at, for the progress bar: the planned steps, or fewer when the
    time budget (max_minutes) runs out first, at the pace of this session's steps so far. Without
    it the bar said 4,000 steps / 1:43 h for a run that stops at 78 minutes."""
    if budget_s is None or session_steps < 1 or session_s <= 0:
        return total_steps  # no budget, or no pace measured yet
    steps_left_in_budget = max(budget_s - elapsed_s, 0.0) * session_steps / session_s
    return min(total_steps, step + math.ceil(steps_left_in_budget))


def train_mode(model: MNN) -> None:
    """``model.train()``, except batch norms whose weights are all frozen: their running statistics
    stay as loaded, so a frozen encoder gives exactly the outputs it gave before the stage."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def apply_freeze(model: MNN, stage: Stage) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(not any(name.startswith(prefix) for prefix in stage.freeze))
    train_mode(model)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def wrapped_yaw_error(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """|pred - gt| in degrees with the difference wrapped into [-180, 180]."""
    return torch.remainder(pred - gt + 180.0, 360.0).sub(180.0).abs()


class MixtureSampler(torch.utils.data.Sampler):
    """Indices into concatenated sources, each draw from source ``i`` with probability
    ``weights[i] / sum(weights)`` and uniformly within it (with replacement).

    A pass has as many draws as there are faces in all sources; it is fixed by (seed, pass) and,
    under torchrun, every rank makes the same draws and keeps every ``world``-th one.
    """

    def __init__(self, sizes: list[int], weights: list[float], seed: int = 0, rank: int = 0, world: int = 1):
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.p = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return int(self.sizes.sum()) // self.world

    def __iter__(self):
        rng = np.random.default_rng((self.seed, self.epoch, 7919))
        n = len(self) * self.world
        which = rng.choice(len(self.sizes), size=n, p=self.p)
        index = self.offsets[which] + np.floor(rng.random(n) * self.sizes[which]).astype(np.int64)
        return iter(index[self.rank::self.world].tolist())


class Trainer:
    """Holds the run's state; :meth:`run` trains until the planned steps or the time budget end."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.dist = setup_distributed(cfg.device if cfg.device != "auto" else
                                      ("cuda" if torch.cuda.is_available() else "cpu"))
        self.device = pick_device(cfg.device, self.dist)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed + self.dist.rank)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.out = cfg.out
        self._check_out()
        check_step_memory(cfg, self.device.type, device_memory_bytes(self.device))

        sources = cfg.train_sources()
        per_source = [src.read() for src in sources]
        samples = [s for group in per_source for s in group]
        val = cfg.val_source()
        self.val_samples = val.read() if val is not None else []
        self.mean, self.std = DEFAULT_MEAN, DEFAULT_STD
        self.model = MNN(cfg.num_landmarks)
        init_weights(self.model, cfg.seed)
        state: dict = {}
        if cfg.resume is not None or cfg.init is not None:
            ck = load_checkpoint(cfg.resume or cfg.init, cfg.num_landmarks)
            self.model.load_state_dict(ck.model.state_dict())
            self.mean, self.std = tuple(ck.mean), tuple(ck.std)
            if cfg.resume is not None:
                state = ck.state
        # NHWC on CPU too: oneDNN's convolutions train faster per step on 2 AVX2 cores for every
        # stage of the starter recipe (bench/train_step_layout.py, numbers in bench/README.md).
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model.to(self.device, memory_format=self.memory_format)
        self.net: nn.Module = TrainNet(self.model)
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            # Frozen modules, a skipped decoder or a zero-weight head leave parameters without a
            # gradient in some steps; DDP must then look for them (an extra graph traversal).
            partial = any(s.freeze or not s.weights.trains_every_head
                          for s in cfg.schedule)
            self.net = DistributedDataParallel(self.net, device_ids=ids, find_unused_parameters=partial)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        if state.get("optimizer"):
            self.opt.load_state_dict(state["optimizer"])
        if self.amp and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state.get("step", 0))
        self.elapsed_before = float(state.get("elapsed_s", 0.0))
        self.log: list[dict] = list(state.get("log", []))

        self.dataset = CropDataset(samples, cfg.num_landmarks, mean=self.mean, std=self.std,
                                   augment=cfg.augment, seed=cfg.seed)
        self.sampler = None
        if len(sources) > 1:
            self.sampler = MixtureSampler([len(g) for g in per_source], [src.weight for src in sources],
                                          seed=cfg.seed, rank=self.dist.rank, world=self.dist.world)
        elif self.dist.world > 1:
            from torch.utils.data.distributed import DistributedSampler

            self.sampler = DistributedSampler(self.dataset, shuffle=True, seed=cfg.seed)
        if len(self.dataset) < cfg.batch * self.dist.world:
            raise MnnEdgeError(f"{len(self.dataset)} training faces are fewer than one batch "
                               f"({cfg.batch} x {self.dist.world} processes)")
        per_pass = len(self.dataset) // (cfg.batch * self.dist.world)
        self.steps_per_epoch = cfg.epoch_steps or per_pass
        self.per_pass = per_pass
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.mean_face = torch.from_numpy(np.array(mean_face(), dtype=np.float32)).to(self.device)
        self.t0 = time.monotonic()

    def _check_out(self) -> None:
        last = self.out / LAST
        if last.exists() and self.cfg.resume is None and not self.cfg.force:
            raise MnnEdgeError(f"{last} already exists: continue it with --resume {last}, or pass --force "
                               "to start afresh (it will be overwritten)")

    # -- clock and schedule -------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.t0

    def progress(self) -> float:
        p = self.step / self.total_steps
        if self.cfg.max_minutes is not None:
            p = max(p, self.elapsed() / (60.0 * self.cfg.max_minutes))
        return p

    def _loader(self, pass_index: int) -> DataLoader:
        self.dataset.set_epoch(pass_index)
        if self.sampler is not None:
            self.sampler.set_epoch(pass_index)
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000003 + pass_index)
        return DataLoader(self.dataset, batch_size=self.cfg.batch, shuffle=self.sampler is None,
                          sampler=self.sampler, num_workers=self.cfg.workers, generator=gen,
                          drop_last=True,  # a last batch of 1 would break BatchNorm at the 1x1 stage
                          pin_memory=self.device.type == "cuda")

    def batches(self):
        """Endless batches, pass after pass (the pass index seeds shuffling and augmentation)."""
        pass_index = self.step // max(self.per_pass, 1)
        while True:
            yield from self._loader(pass_index)
            pass_index += 1

    # -- one step -------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor], stage: Stage, lr: float) -> dict[str, float]:
        for g in self.opt.param_groups:
            g["lr"] = lr
        batch = to_device(batch, self.device)
        image = batch["image"].contiguous(memory_format=self.memory_format)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            out = self.net(image, stage.weights.needs_decoder, stage.weights.mirror > 0)
        total, terms = mnn_losses(out, batch, stage.weights, self.mean_face, self.cfg.sigma)
        if not torch.isfinite(total):
            raise MnnEdgeError(f"the loss became {total.item()} at step {self.step} (lower --lr?)")
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None],
                                           self.cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        return {"loss": float(total.detach()), **{k: float(v) for k, v in terms.items()}}

    @torch.no_grad()
    def validate(self, stage: Stage) -> dict[str, float]:
        """Mean loss terms of ``stage`` and pose MAE (degrees, fc_pose) on the validation faces."""
        if not self.val_samples:
            return {}
        ds = CropDataset(self.val_samples, self.cfg.num_landmarks, mean=self.mean, std=self.std)
        loader = DataLoader(ds, batch_size=self.cfg.batch, num_workers=self.cfg.workers)
        net = TrainNet(self.model).eval()
        sums: dict[str, float] = {}
        count, n_pose, err = 0, 0, torch.zeros(3)
        for batch in loader:
            batch = to_device(batch, self.device)
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                out = net(batch["image"], stage.weights.needs_decoder, stage.weights.mirror > 0)
            _, terms = mnn_losses(out, batch, stage.weights, self.mean_face, self.cfg.sigma)
            n = batch["image"].shape[0]
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
            ok = batch["pose_valid"]
            pred, gt = out["pose"].float()[ok, :3], batch["pose"][ok, :3]
            e = (pred - gt).abs()
            e[:, 0] = wrapped_yaw_error(pred[:, 0], gt[:, 0])
            err += e.sum(0).cpu()
            n_pose += int(ok.sum())
            count += n
        train_mode(self.model)
        res = {f"val_{k}": v / max(count, 1) for k, v in sums.items()}
        mae = (err / max(n_pose, 1)).tolist()
        res.update(val_mae_yaw=mae[0], val_mae_pitch=mae[1], val_mae_roll=mae[2], val_mae=sum(mae) / 3)
        return res

    # -- saving -----------------------------------------------------------------------------------
    def checkpoint(self, half: bool = False) -> Checkpoint:
        state = {} if half else {"optimizer": self.opt.state_dict(), "step": self.step,
                                 "elapsed_s": self.elapsed(), "log": self.log,
                                 **({"scaler": self.scaler.state_dict()} if self.amp else {})}
        record = self.cfg.to_record()
        record.update(steps_done=self.step, train_seconds=round(self.elapsed(), 1),
                      images_seen=self.step * self.cfg.batch * self.dist.world)
        return Checkpoint(model=self.model, mean=self.mean, std=self.std,
                          landmark_scheme=landmark_scheme_for(self.cfg.num_landmarks), config=record, state=state)

    def save(self, final: bool = False) -> None:
        if not self.dist.main:
            return
        save_checkpoint(self.checkpoint(), self.out / LAST)
        write_text_atomic(self.out / LOG, json.dumps(self.log, indent=1) + "\n")
        if final:
            save_checkpoint(self.checkpoint(half=True), self.out / FINAL, half=True)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> Path:
        from tqdm import tqdm

        cfg = self.cfg
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (cfg.progress and self.dist.main),
                   desc="train", dynamic_ncols=True)
        stage: Stage | None = None
        last_save = session_t0 = time.monotonic()
        session_step0 = self.step
        budget_s = 60.0 * cfg.max_minutes if cfg.max_minutes is not None else None
        running: dict[str, float] = {}
        train_mode(self.model)
        try:
            for batch in self.batches():
                progress = self.progress()
                if self.step >= self.total_steps or progress >= 1.0:
                    break
                new_stage = cfg.stage_at(progress)
                if new_stage is not stage:
                    stage = new_stage
                    running = {}
                    apply_freeze(self.model, stage)
                    if self.dist.main:
                        bar.write(f"stage '{stage.name}' from step {self.step}: weights {stage.weights.as_dict()}"
                                  + (f", frozen {', '.join(stage.freeze)}" if stage.freeze else ""))
                lr = learning_rate(cfg, self.step, progress)
                terms = self.train_step(batch, stage, lr)
                self.step += 1
                for k, v in terms.items():  # running mean over the epoch, shown on the bar
                    running[k] = running.get(k, v) * 0.9 + v * 0.1
                bar.set_postfix({"stage": stage.name, "lr": f"{lr:.1e}", **{k: f"{v:.3f}" for k, v in running.items()}})
                bar.total = expected_end_step(self.total_steps, self.step, self.elapsed(), budget_s,
                                              self.step - session_step0, time.monotonic() - session_t0)
                bar.update(1)
                if self.step % self.steps_per_epoch == 0:
                    self._end_epoch(stage, running, bar)
                if time.monotonic() - last_save > 60.0 * cfg.save_minutes:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt as e:
            why = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
            bar.write(f"{why}: saving the last checkpoint")
            self.save()
            raise
        finally:
            bar.close()
        if stage is not None and self.step % self.steps_per_epoch != 0:
            self._end_epoch(stage, running, None)
        self.save(final=True)
        return self.out / FINAL

    def _end_epoch(self, stage: Stage, running: dict[str, float], bar) -> None:
        if not self.dist.main:
            return
        entry = {"step": self.step, "epoch": self.step / self.steps_per_epoch, "stage": stage.name,
                 "elapsed_s": round(self.elapsed(), 1), **{f"train_{k}": v for k, v in running.items()},
                 **self.validate(stage)}
        self.log.append(entry)
        text = " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in entry.items())
        (bar.write if bar is not None else print)(text)
        self.save()


def train(cfg: TrainConfig) -> Path:
    """Train with ``cfg``; returns the path of the final fp16 checkpoint."""
    return Trainer(cfg).run()
