"""Progress while evaluating and fitting: lines appear before the work is done."""

import io

import synaray
from synaray.utils import progress as progress_module

from .conftest import make_data, make_program


async def program_and_data(jitter_s=0.0):
    xs, ys = make_data(24)
    return await make_program(seed=1, jitter_s=jitter_s, latency_seed=0), xs, ys


class Recorder(io.StringIO):
    def isatty(self):
        return False


async def test_evaluate_reports_samples_as_they_finish(monkeypatch):
    program, xs, ys = await program_and_data(jitter_s=0.01)
    stream = Recorder()
    updates = []
    real_update = progress_module.Progress.update

    def spy(self, n=1, **kwargs):
        updates.append(n)
        return real_update(self, n, **kwargs)

    monkeypatch.setattr(progress_module.Progress, "update", spy)
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    logs = await program.evaluate(xs, ys, engine=synaray.engines.LocalEngine(max_concurrency=2))
    # one update per finished sample, not one at the end
    assert updates == [1] * len(xs)
    assert f"{len(xs)}/{len(xs)}" in stream.getvalue()
    assert logs["lm_calls"] == len(xs)


async def test_evaluate_keeps_an_engine_objects_concurrency():
    program, xs, ys = await program_and_data()
    engine = synaray.engines.LocalEngine(max_concurrency=3)
    await program.evaluate(xs, ys, batch_size=50, engine=engine, verbose=False)
    assert engine.max_concurrency == 3


async def test_fit_progress_bar_counts_samples_within_generations():
    program, xs, ys = await program_and_data()
    seen = []

    class Spy(synaray.callbacks.Callback):
        def on_results(self, results):
            seen.extend(r.example_id for r in results)

        def on_batch_end(self, step, logs=None):
            seen.append(("end", step))

    bar = synaray.callbacks.ProgressBar(interval_s=0)
    await program.fit(xs, ys, epochs=1, batch_size=6, validation_split=0.25,
                      callbacks=[Spy(), bar], verbose=False)
    ends = [i for i, s in enumerate(seen) if isinstance(s, tuple)]
    assert ends and ends[0] > 0  # results arrive before the generation ends
    assert bar._samples == sum(1 for s in seen if not isinstance(s, tuple))
    assert "samples=" in bar.bar.line()


def test_log_lines_show_rate_and_eta_and_end_without_a_duplicate():
    stream = Recorder()
    bar = progress_module.Progress(4, desc="evaluate p", interval_s=0.0, stream=stream)
    bar.update(1, lm_calls=2)
    bar.update(3, lm_calls=6, failures=1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2  # one per update; close() adds nothing new
    assert lines[0].startswith("evaluate p  1/4  samples") and "eta " in lines[0]
    assert "4/4" in lines[1] and "lm_calls=8" in lines[1] and "failures=1" in lines[1]
    assert "eta" not in lines[1]
