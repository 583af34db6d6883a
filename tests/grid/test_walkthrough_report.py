"""The walkthrough's Step and its renderings: the differences, the JSON and the Markdown."""

from pipeline import params
from pipeline.grid.walkthrough_report import Step, report, to_json

WALKTHROUGH = params.WalkthroughParams(seed=42, lr=0.01)


def hand_step(loss: params.LossName = "mse", kwargs: dict[str, float] | None = None) -> Step:
    """A Step with round numbers: gradients off by 0.25 at most, the step by 0.5."""
    return Step(
        loss=loss,
        kwargs=kwargs or {},
        initial={"linear.weight": [0.5], "linear.bias": [0.25]},
        inputs=[1.0, 2.0],
        targets=[2.0, 4.0],
        outputs=[0.75, 1.25],
        value=4.5,
        grad={"linear.weight": [-1.0], "linear.bias": [-2.0], "inputs": [3.0, 4.0]},
        closed_form={"linear.weight": [-1.0], "linear.bias": [-1.75], "inputs": [3.0, 4.125]},
        after={"linear.weight": [0.5], "linear.bias": [0.5]},
        after_closed_form={"linear.weight": [1.0], "linear.bias": [0.5]},
        graph="digraph {}",
    )


def test_diffs_are_the_largest_elementwise_differences() -> None:
    """grad_diff and step_diff are the largest |ours - closed form| over every element."""
    step = hand_step()

    assert step.grad_diff() == 0.25
    assert step.step_diff() == 0.5


def test_to_json_holds_the_tutorial_then_each_loss() -> None:
    """to_json gives seed, lr, the tutorial's inputs and check, and one check per loss."""
    losses = {"mse": hand_step(), "huber": hand_step("huber", {"delta": 1.0})}

    got = to_json(hand_step(), losses, WALKTHROUGH)

    assert got["seed"] == 42 and got["lr"] == 0.01
    assert got["inputs"] == [1.0, 2.0] and got["max_abs_diff"] == 0.25
    assert got["max_abs_step_diff"] == 0.5
    assert isinstance(got["losses"], dict) and list(got["losses"]) == ["mse", "huber"]
    assert got["losses"]["huber"]["kwargs"] == {"delta": 1.0}


def test_report_has_a_row_per_element_and_a_section_per_loss() -> None:
    """report lists every gradient element beside its closed form and titles each loss's
    section with its settings."""
    losses = {"mse": hand_step(), "huber": hand_step("huber", {"delta": 1.5})}

    got = report(hand_step(), losses, WALKTHROUGH)

    assert got.startswith("# Walkthrough: the tutorial's step, replayed\n")
    assert "`torch.manual_seed(42)`" in got and "lr=0.01" in got
    for row in ("linear.bias[0]", "inputs[0]", "inputs[1]"):
        assert f"| {row} " in got
    assert "### mse\n" in got and "### huber (delta=1.5)\n" in got
    assert "Largest difference: 0.25." in got
