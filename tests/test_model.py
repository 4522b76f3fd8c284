import pytest
import torch

from mnn_edge.model import MNN, LandmarkDecoder, PoseModel, init_weights
from mnn_edge.model.cli import main as info_main
from mnn_edge.model.summary import count, stage_table


def test_paper_parameter_counts():
    full = MNN(68)
    assert count(full).keras == 4_900_948
    assert count(PoseModel.from_full(full)).keras == 2_048_710


def test_stage_table_sums_to_total():
    rows = stage_table(MNN(68))
    assert rows[-1].name == "total"
    assert sum(r.keras for r in rows[:-1]) == rows[-1].keras == 4_900_948
    assert sum(r.trainable for r in rows[:-1]) == rows[-1].trainable


@pytest.mark.parametrize("num_landmarks", [29, 98])
def test_other_landmark_counts_change_only_the_two_landmark_heads(num_landmarks):
    # fc_lnd and fc_vis are 1x1 64->L convs with bias: 65 parameters per landmark each.
    assert count(MNN(num_landmarks)).keras == 4_900_948 + 2 * 65 * (num_landmarks - 68)


def test_pose_model_shares_weights_with_full_model():
    full = MNN(68)
    pose = PoseModel.from_full(full)
    assert pose.fc_pose.weight is full.fc_pose.weight
    assert pose.encoder is full.encoder
    names = [name for name, _ in pose.named_parameters()]
    assert not any(n.startswith(("decoder", "fc_lnd", "fc_vis", "fc_pose_proj")) for n in names)


def test_forward_shapes_and_units():
    model = MNN(5).eval()
    init_weights(model)
    with torch.inference_mode():
        out = model(torch.zeros(2, 3, 256, 256))
    assert out["pose"].shape == (2, 6) and out["pose_proj"].shape == (2, 6)
    assert out["heatmap_logits"].shape == (2, 5, 256, 256)
    assert out["visibility_logits"].shape == (2, 5)
    # an untrained model sits near the frontal face centred in the crop, at the default scale
    assert torch.all(out["pose"][:, :3].abs() < 30)
    assert torch.allclose(out["pose"][:, 3:5], torch.full((2, 2), 127.5), atol=20)


def test_convs_have_no_bias_except_heads():
    for name, m in MNN(68).named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert (m.bias is not None) == name.startswith("fc_"), name


def test_soft_argmax_decodes_a_peak_to_its_pixel():
    logits = torch.full((1, 2, 256, 256), -1e4)
    logits[0, 0, 40, 200] = 0.0  # row 40 = y, column 200 = x
    logits[0, 1, 128, 3] = 0.0
    coords, prob = LandmarkDecoder()(logits)
    assert torch.allclose(coords[0], torch.tensor([[200.0, 40.0], [3.0, 128.0]]))
    assert torch.allclose(prob.sum(-1), torch.ones(1, 2))


def test_mnn_info_prints_both_counts(capsys):
    assert info_main([]) == 0
    out = capsys.readouterr().out
    assert "4,900,948" in out and "2,048,710" in out


def test_rejects_nonpositive_or_huge_landmark_counts():
    from mnn_edge.errors import MnnEdgeError

    for n in (0, -3, 513):
        with pytest.raises(MnnEdgeError, match=f"between 1 and 512, got {n}"):
            MNN(n)
