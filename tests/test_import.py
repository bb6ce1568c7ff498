import subprocess
import sys

CODE = """
import sys, time
start = time.perf_counter()
import synaray
elapsed = time.perf_counter() - start
print(elapsed, 'ray' in sys.modules, 'litellm' in sys.modules)
"""


def test_import_is_fast_and_loads_neither_ray_nor_litellm():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    elapsed, has_ray, has_litellm = out.stdout.split()
    assert float(elapsed) < 0.5
    assert has_ray == "False" and has_litellm == "False"


def test_building_a_program_loads_neither_ray_nor_litellm():
    code = (
        "import sys, synaray\n"
        "class Q(synaray.DataModel):\n    q: str\n"
        "lm = synaray.LanguageModel(model='openai/x')\n"
        "p = synaray.Sequential([synaray.Input(data_model=Q), "
        "synaray.Generator(data_model=Q, language_model=lm)])\n"
        "print('ray' in sys.modules, 'litellm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_ray_engine_is_importable_from_synaray_and_engines_but_loaded_lazily():
    code = (
        "import sys, synaray, synaray.engines\n"
        "print('ray' in sys.modules, 'RayEngine' in dir(synaray.engines))\n"
        "from synaray.engines import LocalEngine, RayEngine\n"
        "from synaray.engines.ray.engine import RayEngine as Real\n"
        "print(RayEngine is Real, synaray.RayEngine is Real, synaray.LocalEngine is LocalEngine,"
        " 'ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True", "True", "True"]


def test_taking_a_run_lease_does_not_load_ray(tmp_path):
    """A local run takes its lease without Ray (the owner's cluster is read only when Ray is
    already loaded)."""
    code = ("import sys; from synaray.runs.storage import RunStorage; "
            "from synaray.runs.lease import RunLease; "
            f"lease = RunLease.acquire(RunStorage({str(tmp_path)!r}, 'r')); "
            "print('ray' in sys.modules, lease.record()['owner']['cluster']); lease.release()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "None"]
