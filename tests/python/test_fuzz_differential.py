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

Programs of the effects class (random draws, lists and prints passed to helpers, in-place
writes, ``out=``, views and aliases; issue 13; see ``fuzzgen``) run in a batch of their own,
``test_random_effects_programs``: ``TANGENT_FUZZ_EFFECTS_PROGRAMS`` programs (default 100)
of seed ``TANGENT_FUZZ_EFFECTS_SEED``; ``TANGENT_FUZZ_EFFECTS=1`` mixes them into the main
batch too. Their acceptance is counted apart, per batch of about 25 programs (the engine may
refuse them, at most ``1 - EFFECTS_MINIMUM_ACCEPTANCE`` of a batch: helpers that change and
rebind an argument, changes seen through a list or a view made elsewhere); the others keep
``MINIMUM_ACCEPTANCE``. Minimized failures of that class are kept in
``tests/fixtures/fuzz_regressions_effects/`` (``test_effects_regression``; a clean refusal
passes there, a wrong value or effect fails).
"""

import glob
import os

import fuzzgen
import pytest

PROGRAMS = int(os.environ.get("TANGENT_FUZZ_PROGRAMS", "200"))
SEED = os.environ.get("TANGENT_FUZZ_SEED", "20260101")
EFFECTS = os.environ.get("TANGENT_FUZZ_EFFECTS", "0") == "1"
CHUNKS = max(1, min(8, PROGRAMS // 25))
EFFECTS_PROGRAMS = int(os.environ.get("TANGENT_FUZZ_EFFECTS_PROGRAMS", "100"))
EFFECTS_SEED = os.environ.get("TANGENT_FUZZ_EFFECTS_SEED", "20261207")
EFFECTS_CHUNKS = max(1, min(4, EFFECTS_PROGRAMS // 25))
MINIMUM_ACCEPTANCE = 0.9
EFFECTS_MINIMUM_ACCEPTANCE = float(os.environ.get("TANGENT_FUZZ_EFFECTS_MINIMUM_ACCEPTANCE", "0.6"))

REGRESSIONS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "fuzz_regressions")
REGRESSIONS_EFFECTS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "fuzz_regressions_effects")


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TANGENT_GENERATED_DIR", str(tmp_path / "generated"))
    return str(tmp_path)


def _report(failures, workdir):
    parts = []
    for program, outcome in failures[:3]:
        minimized = fuzzgen.minimize(program, outcome.kind, workdir, seconds=float(os.environ.get("TANGENT_FUZZ_MINIMIZE_SECONDS", "60")))
        flag, where = (" --effects", "fuzz_regressions_effects") if program.effects else ("", "fuzz_regressions")
        parts.append(
            f"--- program {program.label}: {outcome.kind}\n{outcome.message}\n--- minimized "
            f"(save with: python tests/python/fuzzgen.py{flag} --seed {program.label.rsplit(':', 1)[0]} --only {program.label.rsplit(':', 1)[1]} "
            f"--save tests/fixtures/{where})\n{minimized.describe()}"
        )
    return "\n".join(parts)


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_random_programs(chunk, workdir):
    indices = range(chunk, PROGRAMS, CHUNKS)
    stats = fuzzgen.run(SEED, indices, workdir, effects=EFFECTS)
    print(stats.summary())
    if stats.failures:
        pytest.fail(f"{stats.failed} of {stats.programs} programs failed (seed {SEED}):\n{_report(stats.failures, workdir)}", pytrace=False)
    # The generator must mostly write programs that run and that Tangent accepts, or this test
    # checks nothing. Programs of the effects class are counted apart: the engine may refuse
    # them, which must not hide refusals of the others.
    assert stats.invalid <= 0.05 * stats.programs, f"the generator wrote too many invalid programs:\n{stats.summary()}"
    assert stats.acceptance >= MINIMUM_ACCEPTANCE, f"the engine rejected too many programs:\n{stats.summary()}"
    if stats.effects is not None:
        assert stats.effects_acceptance >= EFFECTS_MINIMUM_ACCEPTANCE, f"the engine rejected too many programs of the effects class:\n{stats.summary()}"
    assert stats.checks >= 5 * stats.ok


@pytest.mark.parametrize("chunk", range(EFFECTS_CHUNKS))
def test_random_effects_programs(chunk, workdir):
    """A batch with programs of the effects class: each derivative call must have the values
    and the effects of one call of `f` (draws, appends, prints, writes into arguments), or the
    engine refuses the program cleanly."""
    indices = range(chunk, EFFECTS_PROGRAMS, EFFECTS_CHUNKS)
    stats = fuzzgen.run(EFFECTS_SEED, indices, workdir, effects=True)
    print(stats.summary())
    if stats.failures:
        pytest.fail(f"{stats.failed} of {stats.programs} programs failed (seed {EFFECTS_SEED}, --effects):\n{_report(stats.failures, workdir)}", pytrace=False)
    assert stats.invalid <= 0.05 * stats.programs, f"the generator wrote too many invalid programs:\n{stats.summary()}"
    assert stats.effects is not None and stats.effects_acceptance >= EFFECTS_MINIMUM_ACCEPTANCE, f"the engine rejected too many programs of the effects class:\n{stats.summary()}"
    assert stats.acceptance >= MINIMUM_ACCEPTANCE, f"the engine rejected too many programs without effects:\n{stats.summary()}"


def test_generator_is_deterministic():
    a, b = fuzzgen.generate("x", 3), fuzzgen.generate("x", 3)
    assert a.source == b.source and fuzzgen.encode_args(a.args) == fuzzgen.encode_args(b.args)
    assert fuzzgen.generate("x", 4).source != a.source
    a, b = fuzzgen.generate("x", 3, effects=True), fuzzgen.generate("x", 3, effects=True)
    assert a.source == b.source and fuzzgen.encode_args(a.args) == fuzzgen.encode_args(b.args)


def test_effects_class_is_apart():
    """With `effects=True`, most programs are of the effects class; the others are exactly the
    default programs (which never have effects)."""
    klass = []
    for i in range(40):
        plain, mixed = fuzzgen.generate("y", i), fuzzgen.generate("y", i, effects=True)
        assert not plain.effects
        if not mixed.effects:
            assert mixed.source == plain.source and fuzzgen.encode_args(mixed.args) == fuzzgen.encode_args(plain.args)
        klass.append(mixed.effects)
    assert 0.5 * len(klass) <= sum(klass) < len(klass)


def test_effects_programs_run(workdir):
    """Programs of the effects class are valid Python and NumPy that run, deterministically
    given fresh arguments, and have the constructs of the class."""
    import re

    programs = [p for p in (fuzzgen.generate("z", i, effects=True) for i in range(120)) if p.effects]
    invalid = [(p.label, fuzzgen.run_primal(p, workdir)) for p in programs]
    invalid = [(label, o) for label, o in invalid if o.status != "ok"]
    assert len(invalid) <= 0.03 * len(programs), invalid[:5]
    text = "\n".join(p.source for p in programs)
    for construct in [r"def h\d\(.*\brs\b", r"log\.append\(", r"print\(", r"out=", r"np\.copyto\(", r"\.fill\(", r"\bw\d+ = \w+\[", r"\bw\d+ = \w+\.T\b",
                      r"\bw\d+ = \w+\.reshape\(-1\)", r"\bb\d+ = \w+$", r"for row\d+ in \w+:", r"def h\d\(.*\bout\b", r"^\s+rs\.\w+\(.*\)$", r"np\.tanh\(\w+, \w+\)"]:
        assert re.search(construct, text, re.MULTILINE), construct


_PLANTED = """import numpy as np


def f(x, y, rs, log):
    e = rs.randn(3)
    log.append(float(e[0]))
    print("f", 1)
    y *= 2.0
    return np.sum(np.sin(x) * e) + np.sum(y * x)
"""


def _planted_effects(workdir):
    import numpy as np

    program = fuzzgen.Program(_PLANTED, [np.array([0.3, -0.2, 0.5]), np.array([1.0, 2.0, -1.0]), fuzzgen.RandomStateArg(5), fuzzgen.ListArg()], "planted", [0, 1], effects=True)
    outcome = fuzzgen.Outcome("ok")
    f, value, effects = fuzzgen._primal(program, workdir, outcome)
    assert outcome.status == "ok", outcome
    return program, f, effects


def test_effects_fresh_arguments_for_finite_differences(workdir):
    """Every evaluation of finite differences gets a new random state with the same seed and
    copies of the arrays the program changes in place."""
    import numpy as np

    program, f, _ = _planted_effects(workdir)
    x, y = program.args[0], program.args[1]
    e = np.random.RandomState(5).randn(3)
    assert np.allclose(fuzzgen._fd(f, program.args, 0, 1e-6), np.cos(x) * e + 2.0 * y, atol=1e-7)
    assert np.allclose(fuzzgen._fd(f, program.args, 1, 1e-6), 2.0 * x, atol=1e-7)


@pytest.mark.parametrize("extra, kind", [(None, None), ("draw", "effects-draws"), ("append", "effects-list"), ("print", "effects-stdout"), ("write", "effects-args"), ("nothing", "effects-draws")])
def test_effects_of_a_derivative_call_are_compared(workdir, extra, kind):
    """A derivative call must have the effects of one call of `f`: a planted derivative with
    one draw, append, print or in-place write too many (or none: "nothing") is caught."""
    import numpy as np

    program, f, effects = _planted_effects(workdir)

    def df(x, y, rs, log):
        if extra != "nothing":
            f(x.copy(), y, rs, log)  # the effects of the primal
        if extra == "draw":
            rs.randn()
        elif extra == "append":
            log.append(0.0)
        elif extra == "print":
            print("again")
        elif extra == "write":
            y += 1.0
        return np.zeros(3)

    with fuzzgen._capture_stdout(True):
        fuzzgen._run(df, fuzzgen._copy_args(program.args), "planted gradient", effects)
    kinds = [k for k, _ in effects.differences]
    if kind is None:
        assert kinds == []
    else:
        assert kind in kinds, effects.differences


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


def _effects_regressions():
    return sorted(glob.glob(os.path.join(REGRESSIONS_EFFECTS, "*.py")))


@pytest.mark.parametrize("path", _effects_regressions(), ids=lambda p: os.path.basename(p)[:-3])
def test_effects_fixture_is_valid(path, workdir):
    """The fixtures of `test_effects_regression` are valid programs of the effects class (this
    one is not expected to fail)."""
    program = fuzzgen.program_from_file(path)
    assert program.effects
    outcome = fuzzgen.run_primal(program, workdir)
    assert outcome.status == "ok", f"{os.path.basename(path)}: {outcome}"


@pytest.mark.parametrize("path", _effects_regressions(), ids=lambda p: os.path.basename(p)[:-3])
def test_effects_regression(path, workdir):
    """Minimized programs of the effects class on which the fuzzer found a wrong value or a
    derivative call with other effects than one call of `f`: the engine must give the right
    values and effects, or refuse the program cleanly (a `TangentError`: a pass here)."""
    _check_effects_fixture(path, workdir)


def _check_effects_fixture(path, workdir):
    """A clean refusal (a `TangentError`) passes; a wrong value, a derivative call with other
    effects, a crash or an invalid fixture fails."""
    program = fuzzgen.program_from_file(path)
    outcome = fuzzgen.check(program, workdir, hvp=True)
    assert outcome.status in ("ok", "rejected"), f"{os.path.basename(path)}: {outcome}"
    return outcome


@pytest.mark.parametrize("status, kind, passes", [("ok", "", True), ("rejected", "", True), ("failed", "grad-vs-fd", False), ("failed", "effects-draws", False), ("invalid", "program-raised", False)])
def test_effects_fixture_verdicts(workdir, monkeypatch, status, kind, passes):
    """How `test_effects_regression` judges an outcome (engine-independent)."""
    path = os.path.join(workdir, "planted.py")
    with open(path, "w") as f:
        f.write(f"{fuzzgen.EFFECTS_MARK}\n# fuzz-args: [0.5]\nimport numpy as np\n\n\ndef f(x):\n    return x * 2.0\n")
    monkeypatch.setattr(fuzzgen, "check", lambda program, workdir, **kw: fuzzgen.Outcome(status, kind, "planted"))
    if passes:
        assert _check_effects_fixture(path, workdir).status == status
    else:
        with pytest.raises(AssertionError):
            _check_effects_fixture(path, workdir)
