"""Differential fuzzing: random programs of the supported subset (``fuzzgen.py``), each checked
against finite differences, forward against reverse mode, optimized against unoptimized code,
split against joint motion, Hessian-vector products against finite differences of the
gradient, and autograd when it is installed (see ``fuzzgen.check``).

Budget: ``TANGENT_FUZZ_PROGRAMS`` programs (default 200, about 40 CPU-seconds with a debug
build of the engine), split into chunks that pytest-xdist runs in parallel;
``TANGENT_FUZZ_SEED`` picks the seed (default fixed, so CI checks the same programs every time).
A failure is minimized (at most ``TANGENT_FUZZ_MINIMIZE_SECONDS``, default 60) and printed
with its arguments; keep it as a regression test by saving it to
``tests/fixtures/fuzz_regressions/`` (``python tests/python/fuzzgen.py --seed S --only I --save
tests/fixtures/fuzz_regressions``), where ``test_regression`` runs it. ``scripts/fuzz.sh``
runs the fuzzer for longer.
"""

import glob
import os

import fuzzgen
import pytest

PROGRAMS = int(os.environ.get("TANGENT_FUZZ_PROGRAMS", "200"))
SEED = os.environ.get("TANGENT_FUZZ_SEED", "20260101")
CHUNKS = max(1, min(8, PROGRAMS // 25))
MINIMUM_ACCEPTANCE = 0.9

REGRESSIONS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "fuzz_regressions")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TANGENT_GENERATED_DIR", str(tmp_path / "generated"))
    return str(tmp_path)


def _report(failures, workdir):
    parts = []
    for program, outcome in failures[:3]:
        minimized = fuzzgen.minimize(program, outcome.kind, workdir, seconds=float(os.environ.get("TANGENT_FUZZ_MINIMIZE_SECONDS", "60")))
        parts.append(
            f"--- program {program.label}: {outcome.kind}\n{outcome.message}\n--- minimized "
            f"(save with: python tests/python/fuzzgen.py --seed {SEED} --only {program.label.rsplit(':', 1)[1]} "
            f"--save tests/fixtures/fuzz_regressions)\n{minimized.describe()}"
        )
    return "\n".join(parts)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_programs(chunk, workdir):
    indices = range(chunk, PROGRAMS, CHUNKS)
    stats = fuzzgen.run(SEED, indices, workdir)
    print(stats.summary())
    if stats.failures:
        pytest.fail(f"{stats.failed} of {stats.programs} programs failed (seed {SEED}):\n{_report(stats.failures, workdir)}", pytrace=False)
    # The generator must mostly write programs that run and that Tangent accepts, or this test
    # checks nothing.
    assert stats.invalid <= 0.05 * stats.programs, f"the generator wrote too many invalid programs:\n{stats.summary()}"
    assert stats.acceptance >= MINIMUM_ACCEPTANCE, f"the engine rejected too many programs:\n{stats.summary()}"
    assert stats.checks >= 5 * stats.ok


def test_generator_is_deterministic():
    a, b = fuzzgen.generate("x", 3), fuzzgen.generate("x", 3)
    assert a.source == b.source and fuzzgen.encode_args(a.args) == fuzzgen.encode_args(b.args)
    assert fuzzgen.generate("x", 4).source != a.source


def test_minimizer_keeps_the_failure(workdir, monkeypatch):
    """A planted bug (finite differences made wrong for programs that use `np.sin(x)`) is found
    and minimized to a program that still shows it, without the statements it does not need."""
    import numpy as np

    program = fuzzgen.Program(
        "import numpy as np\n\n\ndef f(x, y):\n    a = x * 2.0\n    b = np.cos(y) + a\n    c = np.sin(x) * 1.5\n"
        "    for i in range(2):\n        b = b + np.tanh(a)\n    return np.sum(b) + np.sum(c)\n",
        [np.array([0.3, -0.2, 0.5]), np.array([0.1, 0.7, -0.4])],
        "planted",
        [0, 1],
    )
    original = fuzzgen._fd

    def planted_fd(f, args, p, eps):
        with open(f.__code__.co_filename) as source:
            planted = "np.sin(x)" in source.read()
        value = original(f, args, p, eps)
        return value + 0.1 if planted and p == 0 else value

    monkeypatch.setattr(fuzzgen, "_fd", planted_fd)
    outcome = fuzzgen.check(program, workdir, autograd=False)
    assert outcome.status == "failed" and outcome.kind == "grad-vs-fd", outcome
    small = fuzzgen.minimize(program, outcome.kind, workdir, seconds=60)
    assert "np.sin(x)" in small.source
    assert "tanh" not in small.source and "cos" not in small.source, small.source


def _regressions():
    return sorted(glob.glob(os.path.join(REGRESSIONS, "*.py")))


@pytest.mark.parametrize("path", _regressions(), ids=lambda p: os.path.basename(p)[:-3])
def test_regression(path, workdir):
    """Minimized programs on which a fuzzer once found a bug: every check passes."""
    program = fuzzgen.program_from_file(path)
    outcome = fuzzgen.check(program, workdir, hvp=True)
    assert outcome.status == "ok", f"{os.path.basename(path)}: {outcome}"
    assert outcome.checks > 0
