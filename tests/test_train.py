import math
import os

import pytest
import torch
from torch import nn

from lmcourse.checkpoint import load_checkpoint, save_checkpoint
from lmcourse.files import atomic_path
from lmcourse.train import History, autocast_dtype, clock_cosine_schedule, cosine_schedule, count_parameters, train


def regression_batches(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.tensor([[2.0], [-3.0]])
    out = []
    for _ in range(n):
        x = torch.randn(16, 2, generator=g)
        out.append((x, x @ w + 0.5))
    return out


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def test_training_reduces_the_loss_and_records_history():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    steps=200, loss_fn=mse, progress=False)
    assert len(history.step) == len(history.loss) == len(history.seconds) == len(history.lr) == 200
    assert history.loss[-1] < 0.01 * history.loss[0]
    assert history.seconds == sorted(history.seconds)


def test_evaluation_runs_every_n_steps_and_at_the_end():
    model = nn.Linear(2, 1)
    calls = []

    def evaluate(m):
        assert not m.training and not torch.is_grad_enabled()
        calls.append(1)
        return 1.0 / len(calls)

    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.01), steps=25,
                    loss_fn=mse, evaluate=evaluate, eval_every=10, progress=False)
    assert history.eval_step == [9, 19, 24]
    assert history.best_eval_loss == pytest.approx(1 / 3)
    assert model.training


def test_gradient_clipping_bounds_each_update():
    model = nn.Linear(2, 1)
    before = torch.cat([p.detach().flatten() for p in model.parameters()]).clone()
    train(model, regression_batches(1), optimizer=torch.optim.SGD(model.parameters(), lr=1.0), steps=1,
          loss_fn=lambda m, b: 1000 * mse(m, b), grad_clip=0.01, progress=False)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm().item() == pytest.approx(0.01, rel=1e-4)


def test_learning_rate_schedule_is_applied_each_step():
    model = nn.Linear(2, 1)
    schedule = cosine_schedule(max_lr=0.1, total_steps=20, warmup_steps=5)
    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=1.0), steps=20,
                    loss_fn=mse, lr_schedule=schedule, progress=False)
    assert history.lr == [schedule(s) for s in range(20)]


def test_cosine_schedule_warms_up_then_decays_to_min_lr():
    lr = cosine_schedule(1.0, total_steps=110, warmup_steps=10, min_lr=0.1)
    assert lr(0) == pytest.approx(0.1) and lr(9) == pytest.approx(1.0)
    assert lr(60) == pytest.approx(0.55) and lr(110) == pytest.approx(0.1)


def test_cosine_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_schedule(1.0, total_steps=10, warmup_steps=20)


def test_default_loss_takes_the_last_item_of_a_tuple():
    class TupleModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x, y):
            out = self.lin(x)
            return out, nn.functional.mse_loss(out, y)

    model = TupleModel()
    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=50,
                    progress=False)
    assert history.loss[-1] < history.loss[0]


def test_a_generator_of_batches_that_runs_out_stops_training_early():
    model = nn.Linear(2, 1)
    history = train(model, iter(regression_batches(5)), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    steps=10, loss_fn=mse, progress=False)
    assert len(history.step) == 5


def test_a_list_of_batches_is_cycled_epoch_after_epoch():
    model = nn.Linear(2, 1)
    history = train(model, regression_batches(3), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    steps=10, loss_fn=mse, progress=False)
    assert len(history.step) == 10


def test_diverging_loss_raises_a_clear_error():
    model = nn.Linear(2, 1)
    with pytest.raises(FloatingPointError, match="learning rate"):
        train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=5,
              loss_fn=lambda m, b: mse(m, b) * float("inf"), progress=False)


def loss_turning_nan_at_call(n):
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = mse(model, batch)
        return loss * math.nan if len(calls) == n else loss

    return loss_fn


def test_nan_training_loss_stops_before_the_weights_or_a_checkpoint_change(tmp_path):
    model, twin = nn.Linear(2, 1), nn.Linear(2, 1)
    twin.load_state_dict(model.state_dict())
    with pytest.raises(FloatingPointError, match=r"training loss became nan at step 3;.*learning rate.*fp16"):
        train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=10,
              loss_fn=loss_turning_nan_at_call(4), evaluate=lambda m: 0.5, eval_every=2,
              checkpoint_path=tmp_path / "run.pt", progress=False)
    train(twin, regression_batches(), optimizer=torch.optim.SGD(twin.parameters(), lr=0.1), steps=3, loss_fn=mse,
          progress=False)  # the three finite steps alone
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))
    assert load_checkpoint(tmp_path / "run.pt", nn.Linear(2, 1)) == {"step": 1, "eval_loss": 0.5}


def test_nan_evaluation_loss_stops_training_before_its_checkpoint(tmp_path):
    losses = iter([0.5, math.nan, 0.25])
    model = nn.Linear(2, 1)
    with pytest.raises(FloatingPointError, match=r"evaluation loss became nan at step 3;.*learning rate"):
        train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=10,
              loss_fn=mse, evaluate=lambda m: next(losses), eval_every=2, checkpoint_path=tmp_path / "run.pt",
              progress=False)
    assert load_checkpoint(tmp_path / "run.pt", nn.Linear(2, 1)) == {"step": 1, "eval_loss": 0.5}


@pytest.mark.parametrize("kwargs, match", [({"steps": 0}, "steps"), ({"eval_every": 0}, "eval_every"),
                                           ({"grad_clip": -1.0}, "grad_clip"), ({"time_limit": 0}, "time_limit"), ({"mixed_precision": "fp8"}, "mixed_precision")])
def test_bad_training_arguments_are_rejected(kwargs, match):
    model = nn.Linear(2, 1)
    args = {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1), "steps": 1, "loss_fn": mse, "progress": False} | kwargs
    with pytest.raises(ValueError, match=match):
        train(model, regression_batches(), **args)


def test_mixed_precision_on_a_cpu_only_when_bf16_is_asked_for():
    assert autocast_dtype(torch.device("cpu"), "auto") is None
    assert autocast_dtype(torch.device("cpu"), "bf16") == torch.bfloat16  # asked for: honoured on a CPU
    assert autocast_dtype(torch.device("cpu"), "fp16") is None


def test_checkpoint_round_trip_restores_model_optimizer_and_metadata(tmp_path):
    model = nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    train(model, [(torch.randn(4, 3), torch.randn(4, 2))], optimizer=opt, steps=3, loss_fn=mse, progress=False)
    path = save_checkpoint(tmp_path / "ck.pt", model, opt, step=3, config={"width": 3})
    fresh, fresh_opt = nn.Linear(3, 2), torch.optim.AdamW(nn.Linear(3, 2).parameters(), lr=1e-3)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    meta = load_checkpoint(path, fresh, fresh_opt)
    assert meta == {"step": 3, "config": {"width": 3}}
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_training_saves_a_checkpoint_at_each_evaluation(tmp_path):
    model = nn.Linear(2, 1)
    train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), steps=10, loss_fn=mse,
          evaluate=lambda m: 0.5, eval_every=5, checkpoint_path=tmp_path / "run.pt", progress=False)
    assert load_checkpoint(tmp_path / "run.pt", nn.Linear(2, 1)) == {"step": 9, "eval_loss": 0.5}


def test_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt", nn.Linear(2, 1))


def test_corrupt_checkpoint_is_a_value_error(tmp_path):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path, nn.Linear(2, 1))


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": nn.Linear(2, 1)}, path)  # a pickled module, not plain weights
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(path, nn.Linear(2, 1))


def test_checkpoint_for_another_architecture_says_so(tmp_path):
    path = save_checkpoint(tmp_path / "ck.pt", nn.Linear(3, 2))
    with pytest.raises(ValueError, match="does not fit this model"):
        load_checkpoint(path, nn.Linear(4, 2))


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "ck.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["ck.pt"]


def test_count_parameters_counts_trainable_ones():
    model = nn.Linear(3, 2)
    assert count_parameters(model) == 8
    model.bias.requires_grad_(False)
    assert count_parameters(model) == 6


def test_history_best_eval_loss_is_nan_without_evaluation():
    assert math.isnan(History().best_eval_loss)


def test_time_limit_stops_training_early_and_still_evaluates():
    model = nn.Linear(2, 1)

    def slow_loss(m, batch):
        import time

        time.sleep(0.02)
        return mse(m, batch)

    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.01), steps=10_000,
                    loss_fn=slow_loss, evaluate=lambda m: 1.0, time_limit=0.2, progress=False)
    assert 3 <= len(history.step) < 100
    assert history.eval_step == [history.step[-1]]


def test_clock_cosine_schedule_warms_up_by_steps_then_decays_by_the_clock(monkeypatch):
    import lmcourse.train as train_module

    now = [100.0]
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: now[0])
    lr_at = clock_cosine_schedule(1.0, seconds=10.0, warmup_steps=2, min_lr=0.1)
    assert lr_at(0) == pytest.approx(0.5) and lr_at(1) == pytest.approx(1.0)  # warm-up counts steps
    now[0] = 100.0                                                            # the clock starts at the first call
    assert lr_at(2) == pytest.approx(1.0)
    now[0] = 105.0                                                            # half the budget: half way down
    assert lr_at(3) == pytest.approx(0.1 + 0.5 * 0.9)
    now[0] = 130.0                                                            # past the budget: the floor
    assert lr_at(4) == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs, name", [({"max_lr": 0.0}, "max_lr"), ({"seconds": 0.0}, "seconds"),
                                          ({"warmup_steps": -1}, "warmup_steps"), ({"min_lr": 2.0}, "min_lr")])
def test_clock_cosine_schedule_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        clock_cosine_schedule(**{"max_lr": 1.0, "seconds": 5.0, **kwargs})


def sleeping_evaluation(seconds):
    """An evaluation that takes `seconds` of wall-clock time and always scores 1.0."""
    import time

    def evaluate(model):
        time.sleep(seconds)
        return 1.0

    return evaluate


def test_history_keeps_the_time_spent_evaluating_apart_from_training():
    model = nn.Linear(2, 1)
    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.01), steps=6,
                    loss_fn=mse, evaluate=sleeping_evaluation(0.05), eval_every=2, progress=False)
    assert len(history.eval_time) == len(history.eval_seconds) == 3
    assert all(b - a >= 0.05 for a, b in zip([0.0] + history.eval_time, history.eval_time))  # each one counted
    trained = history.eval_train_seconds
    assert all(t < s for t, s in zip(trained, history.eval_seconds)) and trained[-1] < history.seconds[-1]
    assert trained == sorted(trained)


def test_a_time_limit_right_after_an_evaluation_does_not_evaluate_that_step_twice():
    model = nn.Linear(2, 1)
    history = train(model, regression_batches(), optimizer=torch.optim.SGD(model.parameters(), lr=0.01), steps=100,
                    loss_fn=mse, evaluate=sleeping_evaluation(0.15), eval_every=1, time_limit=0.2, progress=False)
    # every step is evaluated; the limit strikes after the evaluation of the step that crosses it
    assert len(history.step) < 100 and history.eval_step == history.step


def tiny_gpt_run(seed=0, **options):
    """A tiny GPT (initialised from torch seed 0) trained by train_gpt on a periodic stream: (History, whether the
    model's own weights moved)."""
    from lmcourse.gpt import GPT, GPTConfig
    from lmcourse.train import train_gpt
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16))
    ids = torch.tensor([0, 3, 1, 4, 1, 5, 9, 2, 6, 5] * 40)  # a period of 10: learnable from 8 tokens of context
    held_out = torch.tensor([[1, 4, 1, 5, 9, 2, 6, 5, 0]])
    settings = dict(block_size=8, batch_size=8, lr=1e-2, warmup_steps=3, seed=seed, progress=False,
                    evaluate=lambda m: m(held_out[:, :-1], held_out[:, 1:])[1], eval_every=10)
    settings.update(options)
    before = model.wte.weight.detach().clone()
    history = train_gpt(model, ids, **settings)
    return history, not torch.equal(before, model.wte.weight)


def test_train_gpt_lowers_the_loss_and_the_same_seed_gives_the_same_history():
    history, trained = tiny_gpt_run(steps=30)
    assert len(history.step) == 30 and history.eval_step == [9, 19, 29]
    assert sum(history.loss[-5:]) < 0.5 * sum(history.loss[:5])            # from about ln 11 to well below it
    assert history.eval_loss == sorted(history.eval_loss, reverse=True) and history.eval_loss[-1] < 0.5 * math.log(11)
    assert history.lr[0] == pytest.approx(1e-2 / 3) and history.lr[-1] == pytest.approx(1e-3, rel=0.05)  # warm-up, decay to lr / 10
    assert trained                                                           # the model passed in, not a copy
    again, _ = tiny_gpt_run(steps=30)
    assert (again.loss, again.lr, again.eval_loss) == (history.loss, history.lr, history.eval_loss)
    other_seed, _ = tiny_gpt_run(seed=1, steps=30)
    assert other_seed.loss[1:] != history.loss[1:]                          # the seed picks the windows


def test_train_gpt_on_a_longer_schedule_is_the_start_of_the_longer_run():
    short, _ = tiny_gpt_run(steps=10, schedule_steps=20, evaluate=None)
    full, _ = tiny_gpt_run(steps=20, evaluate=None)
    assert (short.loss, short.lr) == (full.loss[:10], full.lr[:10])


def test_train_gpt_on_the_clock_stops_at_the_budget_with_its_decay_on_the_clock():
    history, _ = tiny_gpt_run(seconds=0.5, evaluate=None)
    assert history.seconds[-1] >= 0.5 and history.seconds[-2] < 0.5         # stopped by the clock, not a step count
    assert history.lr[0] == pytest.approx(1e-2 / 3) and history.lr[-1] < 0.5e-2  # warm-up by steps, decay by seconds
