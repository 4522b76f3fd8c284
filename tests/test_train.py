"""mnn-train: every loss term falls on synthetic faces; config merging; checkpoints and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mnn_edge.checkpoint import load_checkpoint
from mnn_edge.errors import MnnEdgeError
from mnn_edge.fileio import read_toml
from mnn_edge.train.cli import main as train_main
from mnn_edge.train.config import PRESETS, build_config, parse_stages
from mnn_edge.train.loop import FINAL, LAST, Trainer, TrainNet, apply_freeze, learning_rate

REPO = Path(__file__).resolve().parents[1]


def test_full_model_every_loss_term_falls(synthetic_dir, tmp_path):
    # 8 synthetic faces, the full model, all four losses: a few AdamW steps on one fixed batch (two
    # faces keep it affordable on 2 CPU cores) must lower every term. lr 1e-4: at 1e-3 Adam's
    # first steps overshoot L_ED on a batch of two (it rose after step 2 with NHWC kernels).
    cfg = build_config({}, dict(data=synthetic_dir, limit=8, out=tmp_path, batch=2, lr=1e-4, warmup_steps=0,
                                augment=False, schedule="all", progress=False, device="cpu"))
    trainer = Trainer(cfg)
    assert len(trainer.dataset) == 8
    stage = cfg.schedule[0]
    apply_freeze(trainer.model, stage)
    batch = next(iter(trainer.batches()))
    history = [trainer.train_step(batch, stage, cfg.lr) for _ in range(5)]
    first, last = history[0], history[-1]
    assert set(first) == {"loss", "ed", "ae", "ce_h", "ce_v"}
    for term in ("ed", "ae", "ce_h", "ce_v"):
        assert last[term] < first[term], (term, [h[term] for h in history])


def test_mirror_term_reads_the_flipped_crop_and_falls(synthetic_dir, tmp_path):
    # The mirror term's second reading is the pose of the horizontally flipped crop through the
    # same encoder; a few steps on that term alone must bring the two readings together.
    cfg = build_config({}, dict(data=synthetic_dir, limit=8, out=tmp_path, batch=2, lr=1e-4, warmup_steps=0,
                                augment=False, progress=False, device="cpu"))
    stage = parse_stages([{"name": "m", "until": 1.0, "weights": dict(ed=0, ae=0, ce_h=0, ce_v=0, mirror=1.0)}])[0]
    trainer = Trainer(cfg)
    batch = next(iter(trainer.batches()))
    net = TrainNet(trainer.model).eval()
    with torch.no_grad():
        out = net(batch["image"], decoder=False, mirror=True)
        alone = net(batch["image"].flip(-1), decoder=False)["pose"]
    torch.testing.assert_close(out["pose_mirror"], alone)
    apply_freeze(trainer.model, stage)  # back to train mode: the steps below train as mnn-train does
    history = [trainer.train_step(batch, stage, cfg.lr)["mirror"] for _ in range(4)]
    assert history[-1] < history[0], history


def test_cli_checkpoint_and_resume(synthetic_dir, tmp_path):
    # The pose-only stage skips the decoder, so these steps are cheap; the run must stop at its step
    # plan, write both checkpoints with config + normalisation, and resume where it stopped.
    out = tmp_path / "run"
    base = ["--data", str(synthetic_dir), "--limit", "4", "--out", str(out), "--batch", "2", "--epoch-steps", "1",
            "--schedule", "cpu-starter", "--no-progress", "--device", "cpu"]
    assert train_main(base + ["--epochs", "1"]) == 0
    last = load_checkpoint(out / LAST)
    assert last.state["step"] == 1 and "optimizer" in last.state
    assert last.config["schedule"][0]["name"] == "pose" and last.config["batch"] == 2
    final = load_checkpoint(out / FINAL)
    assert final.landmark_scheme == "ibug68" and final.model.num_landmarks == 68
    assert next(iter(torch.load(out / FINAL, weights_only=True)["weights"].values())).dtype == torch.float16
    with pytest.raises(MnnEdgeError, match="already exists"):
        train_main(base + ["--epochs", "1"])
    assert train_main(base + ["--epochs", "2", "--resume", str(out / LAST)]) == 0
    resumed = load_checkpoint(out / LAST)
    assert resumed.state["step"] == 2 and len(resumed.state["log"]) == 2


def test_cli_init_starts_a_new_run_from_weights(synthetic_dir, tmp_path):
    # Fine-tuning: the new run starts from the given (fp16) weights but with its own step count,
    # optimizer and clock; with lr ~0 its weights stay those of the source checkpoint.
    src, out = tmp_path / "src", tmp_path / "ft"
    base = ["--data", str(synthetic_dir), "--limit", "4", "--batch", "2", "--epoch-steps", "1", "--epochs", "1",
            "--schedule", "cpu-starter", "--no-progress", "--device", "cpu"]
    assert train_main(base + ["--out", str(src), "--seed", "3"]) == 0
    assert train_main(base + ["--out", str(out), "--init", str(src / FINAL), "--lr", "1e-12"]) == 0
    tuned, source = load_checkpoint(out / LAST), load_checkpoint(src / FINAL)
    assert tuned.state["step"] == 1 and len(tuned.state["log"]) == 1 and tuned.config["init"] == str(src / FINAL)
    def weights(ck):  # every learned tensor (BatchNorm running statistics do move in a step)
        return torch.cat([p.detach().flatten() for p in ck.model.parameters()])

    assert (weights(tuned) - weights(source)).abs().max() < 1e-3
    # Without --init the same run starts from its own seed's weights, far from the source's.
    assert train_main(base + ["--out", str(tmp_path / "scratch"), "--lr", "1e-12"]) == 0
    assert (weights(load_checkpoint(tmp_path / "scratch" / LAST)) - weights(source)).abs().max() > 0.01
    with pytest.raises(MnnEdgeError, match="exclude each other"):
        train_main(base + ["--out", str(tmp_path / "x"), "--init", str(src / FINAL), "--resume", str(src / LAST)])


def test_config_file_flags_override_and_errors(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('data = "/x"\nbatch = 4\nlr = 0.01\n[augment]\nrotation_deg = 5.0\nscale_range = [0.8, 1.2]\n'
                    '[[schedule]]\nname = "a"\nuntil = 0.3\nweights = { ed = 0.0, ae = 1.0, ce_h = 0.0, ce_v = 0.0 }\n'
                    '[[schedule]]\nname = "b"\nuntil = 1.0\n')
    cfg = build_config(read_toml(toml, "config file"), {"batch": 16, "lr": None})
    assert cfg.batch == 16 and cfg.lr == 0.01 and cfg.data == Path("/x")
    assert cfg.augment.rotation_deg == 5.0 and cfg.augment.scale_range == (0.8, 1.2)
    assert [s.name for s in cfg.schedule] == ["a", "b"]
    assert cfg.stage_at(0.1).name == "a" and cfg.stage_at(0.5).name == "b" and cfg.stage_at(1.5).name == "b"
    assert not cfg.stage_at(0.1).weights.needs_decoder
    with pytest.raises(MnnEdgeError, match="unknown training option"):
        build_config({"data": "/x", "bacth": 3}, {})
    with pytest.raises(MnnEdgeError, match="batch must be >= 2"):
        build_config({"data": "/x", "batch": 1}, {})
    with pytest.raises(MnnEdgeError, match="no training data"):
        build_config({}, {})
    with pytest.raises(MnnEdgeError, match="unknown schedule preset"):
        parse_stages("nope")
    (tmp_path / "bad.toml").write_text("data = \n")
    with pytest.raises(MnnEdgeError, match="not valid TOML"):
        read_toml(tmp_path / "bad.toml", "config file")


def test_paper_preset_is_landmarks_first_then_all():
    first, second = PRESETS["paper"]
    assert first.weights.as_dict() == {"ed": 0.0, "ae": 0.0, "ce_h": 1.0, "ce_v": 0.0, "lnd": 0.0, "mirror": 0.0}
    assert second.weights.trains_every_head and second.weights.lnd == 0 and second.weights.mirror == 0
    assert second.until == 1.0


def test_learning_rate_warms_up_then_follows_the_cosine():
    cfg = build_config({}, dict(data="/x", lr=1e-3, warmup_steps=10, min_lr_frac=0.1))
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 50, 0.0) == pytest.approx(1e-3)
    assert learning_rate(cfg, 50, 0.5) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert learning_rate(cfg, 50, 1.0) == pytest.approx(1e-4)


def test_a_frozen_encoder_keeps_its_outputs_while_the_decoder_learns(synthetic_dir, tmp_path):
    # configs/starter_landmarks.toml: encoder and pose heads frozen (batch norms too), so the pose
    # outputs after training steps are exactly those before; the landmark heads change.
    cfg = build_config({}, dict(data=synthetic_dir, limit=4, out=tmp_path, batch=2, lr=1e-3, warmup_steps=0,
                                augment=False, progress=False, device="cpu"))
    trainer = Trainer(cfg)
    stage = parse_stages([{"name": "landmarks", "until": 1.0, "freeze": ["encoder.", "fc_pose.", "fc_pose_proj."],
                           "weights": {"ed": 0.0, "ae": 0.0, "ce_h": 1.0, "ce_v": 0.5, "lnd": 10.0}}])[0]
    apply_freeze(trainer.model, stage)
    batch = next(iter(trainer.batches()))
    model = trainer.model
    x = batch["image"][:1]

    def outputs():
        model.eval()
        with torch.no_grad():
            out = model(x)
        apply_freeze(model, stage)  # back to training mode, frozen batch norms in eval
        return out

    before = outputs()
    terms = [trainer.train_step(batch, stage, cfg.lr) for _ in range(2)]
    after = outputs()
    assert set(terms[0]) == {"loss", "ce_h", "ce_v", "lnd"}
    assert torch.equal(before["pose"], after["pose"]) and torch.equal(before["pose_proj"], after["pose_proj"])
    assert not torch.equal(before["heatmap_logits"], after["heatmap_logits"])
    assert all(not m.training for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_landmark_config_parses():
    cfg = build_config(read_toml(REPO / "configs" / "starter_landmarks.toml", "config file"), {})
    (stage,) = cfg.schedule
    assert stage.weights.lnd > 0 and stage.weights.ed == 0 and "encoder." in stage.freeze


def test_starter_config_parses():
    cfg = build_config(read_toml(REPO / "configs" / "starter.toml", "config file"), {})
    assert cfg.max_minutes and cfg.schedule[-1].weights.needs_decoder


def test_config_values_of_the_wrong_type_are_all_named_before_any_work():
    with pytest.raises(MnnEdgeError) as e:
        build_config({"data": "d", "lr": "fast", "batch": "8", "out": 5, "amp": "yes"}, {})
    lines = str(e.value).splitlines()
    assert lines[0] == "the training config has 4 value(s) of the wrong type:"
    assert lines[1:] == ["  lr must be a number, got 'fast' (str)",
                         "  batch must be a whole number, got '8' (str)",
                         "  out must be a string in quotes, got 5 (int)",
                         "  amp must be true or false, got 'yes' (str)"]
    for bad, message in (({"data": ["a"]}, "data must be a string in quotes"),
                         ({"data": "d", "batch": 2.5}, "batch must be a whole number, got 2.5"),
                         ({"data": "d", "augment": {"scale_range": "big"}}, "scale_range must be two numbers"),
                         ({"data": "d", "schedule": {"a": 1}}, "schedule must be a preset name"),
                         ({"data": "d", "schedule": [1]}, "schedule stage 0: a table expected"),
                         ({"data": "d", "sources": "x"}, "sources must be"),
                         # [[sources]] tables are typed too (were TypeError/ValueError tracebacks)
                         ({"sources": [{"data": 5}]}, r"sources\[0\]\.data must be a string in quotes, got 5"),
                         ({"sources": [{"data": "d", "weight": "x"}]}, r"sources\[0\]\.weight must be a number"),
                         ({"sources": [{"data": "d", "limit": "7"}]}, r"sources\[0\]\.limit must be a whole number"),
                         ({"data": "d", "augment": {"flip_prob": "yes"}}, r"augment\.flip_prob must be a number")):
        with pytest.raises(MnnEdgeError, match=message):
            build_config(bad, {})
    assert build_config({"data": "d", "lr": 1, "max_minutes": None}, {}).lr == 1  # an int is a number
