"""The wheel carries the code and every shipped resource, and an installed copy runs on its own defaults.

One wheel is built per module run, from a COPY of the source tree (so the checkout is never touched):
``pip wheel --no-deps --no-build-isolation --no-index``, then ``pip install --no-deps --target SITE``.
Everything else (torch, Qt, ...) comes from the running environment. The installed copy is then run in
subprocesses from an unrelated working directory with ``PYTHONPATH=SITE``; each check first asserts that
the ``lssviewer`` it imported really is the one in SITE and not the checkout.

The built-in model (``resources/models/default``) and demo suite (``resources/demo/demo_suite.h5``) are
used when the checkout has them. When it does not (yet), the copy gets small stand-ins written with the
project's own writers: an untrained model of the real architecture and checkpoint format
(``gui_support.tiny_model_dir``) and a suite of random catalogs (``gui_support.toy_suite``). The stand-ins
exercise the same paths: binary files carried by the wheel, found through ``lssviewer.resources``, opened
by ``lssviewer.model.load_model(None)`` and ``lssviewer.io.load``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.egg-info", ".*")


def _source_version(src: Path) -> str:
    """The version string as written in lssviewer/_version.py (the one place it lives)."""
    text = (src / "lssviewer" / "_version.py").read_text()
    m = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
    assert m, "lssviewer/_version.py has no __version__ = '...' line"
    return m.group(1)


def _pip(*args: str, cwd: Path) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> SimpleNamespace:
    """Build the wheel from a copy of the tree (with stand-in resources if needed) and install it."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "lssviewer", src / "lssviewer", ignore=IGNORE)
    shutil.copytree(REPO / "resources", src / "resources", ignore=IGNORE)

    stand_ins = []
    model_dir = src / "resources" / "models" / "default"
    if not (model_dir / "model.json").is_file():
        from gui_support import tiny_model_dir

        if model_dir.exists():
            shutil.rmtree(model_dir)
        tiny_model_dir(model_dir, n_halos=200, default_steps=6)
        stand_ins.append("model")
    demo = src / "resources" / "demo" / "demo_suite.h5"
    if not demo.is_file():
        from gui_support import toy_suite

        demo.parent.mkdir(parents=True, exist_ok=True)
        toy_suite(demo, n_cosmologies=2, realisations=2, n_halos=200)
        stand_ins.append("demo")

    wheels = root / "wheels"
    _pip("wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(wheels),
         cwd=src)
    (wheel,) = wheels.glob("lssviewer-*.whl")
    site = root / "site"
    _pip("install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel), cwd=root)
    elsewhere = root / "elsewhere"  # neither the checkout nor the copy: nothing importable by accident
    elsewhere.mkdir()
    return SimpleNamespace(src=src, wheel=wheel, site=site, cwd=elsewhere, stand_ins=stand_ins,
                           version=_source_version(src))


def _env(inst: SimpleNamespace, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONPATH=str(inst.site), PYTHONNOUSERSITE="1", XDG_CONFIG_HOME=str(inst.cwd / "config"),
               **extra)
    return env


def _run(inst: SimpleNamespace, args: list[str], timeout: float = 180,
         **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=inst.cwd, env=_env(inst, **extra), capture_output=True, text=True,
                          timeout=timeout)


def _inside(path: str | Path, folder: Path) -> bool:
    return Path(path).resolve().is_relative_to(folder.resolve())


def test_wheel_holds_every_source_and_resource_file(installed):
    """Every module of every subpackage and every file under resources/ (binary ones included) is in the
    wheel, byte for byte; a subpackage missing from pyproject's explicit package list is named."""
    src = installed.src
    expected = {p.relative_to(src).as_posix(): p for p in (src / "lssviewer").rglob("*.py")}
    for p in (src / "resources").rglob("*"):
        if p.is_file():
            expected["lssviewer/_resources/" + p.relative_to(src / "resources").as_posix()] = p
    with zipfile.ZipFile(installed.wheel) as zf:
        names = {n for n in zf.namelist() if not n.split("/")[0].endswith(".dist-info")}
        missing = sorted(set(expected) - names)
        packages = sorted({".".join(Path(n).parent.parts) for n in missing if n.endswith(".py")})
        assert not missing, (f"the wheel lacks {len(missing)} file(s), e.g. {missing[:5]}; packages to add "
                             f"to [tool.setuptools] packages in pyproject.toml: {packages}")
        extra = sorted(names - set(expected))
        assert not extra, f"the wheel holds files that are not in the source tree: {extra[:5]}"
        for name, path in expected.items():
            assert hashlib.sha256(zf.read(name)).digest() == hashlib.sha256(path.read_bytes()).digest(), name
    suffixes = {Path(n).suffix for n in expected if n.startswith("lssviewer/_resources/")}
    assert {".h5", ".safetensors", ".json", ".png", ".svg"} <= suffixes  # the binary kinds are really there


def test_installed_copy_loads_the_shipped_model_and_demo_suite(installed):
    """From the installed copy: resources found inside it, load_model(None) opens the shipped model and
    samples a catalog of its declared size, the demo suite opens with the same catalogs as the source file."""
    from lssviewer.io import hdf5

    probe = textwrap.dedent("""
        import json, lssviewer
        from lssviewer import io, resources
        from lssviewer.model import load_model
        model = load_model(None, device="cpu")
        (cat,) = model.sample(0.3, 0.8, n=1, seed=1, steps=2)
        demo = io.load(resources.demo_suite_path())
        print(json.dumps({"package": lssviewer.__file__, "resources": str(resources.resources_dir()),
                          "model_path": str(model.path), "n_halos": model.n_halos, "sample_len": len(cat),
                          "sample_box": cat.box_size, "demo_path": str(resources.demo_suite_path()),
                          "demo": [[c.name, len(c), c.box_size] for c in demo]}))
    """)
    proc = _run(installed, [sys.executable, "-c", probe])
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("package", "resources", "model_path", "demo_path"):
        assert _inside(got[key], installed.site), f"{key} = {got[key]} is not inside the installed copy"
    meta = json.loads((installed.src / "resources" / "models" / "default" / "model.json").read_text())
    assert got["n_halos"] == meta["n_halos"]
    assert got["sample_len"] == meta["n_halos"] and got["sample_box"] == pytest.approx(meta["box_size"])
    source_demo = hdf5.read(installed.src / "resources" / "demo" / "demo_suite.h5")
    assert got["demo"] == [[c.name, len(c), pytest.approx(c.box_size)] for c in source_demo]


def test_installed_version_is_the_one_in_version_py(installed):
    """``lssviewer --version`` (the installed console script and ``python -m``), the wheel's file name and its
    metadata all carry the string written in lssviewer/_version.py."""
    v = installed.version
    assert installed.wheel.name.startswith(f"lssviewer-{v}-")
    with zipfile.ZipFile(installed.wheel) as zf:
        metadata = zf.read(f"lssviewer-{v}.dist-info/METADATA").decode()
    assert f"\nVersion: {v}\n" in metadata
    script = installed.site / "bin" / "lssviewer"
    for args in ([str(script), "--version"], [sys.executable, "-m", "lssviewer", "--version"]):
        proc = _run(installed, args, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == f"lssviewer {v}", args
    proc = _run(installed, [sys.executable, "-c", "import lssviewer; print(lssviewer.__file__)"], timeout=60)
    assert _inside(proc.stdout.strip(), installed.site)


@pytest.mark.gui
def test_installed_app_starts_on_the_builtin_model_and_demo_suite(installed):
    """The desktop app of the installed copy, launched as a user would (``lssviewer gui`` with no arguments,
    through packaging/lssviewer_app.py's smoke test): loads the shipped model, draws its first sample, opens
    the demo suite and renders a non-blank 3D view."""
    proc = _run(installed, [sys.executable, str(REPO / "packaging" / "lssviewer_app.py")], timeout=240,
                LSSVIEWER_SMOKE_TEST="1", LSSVIEWER_SMOKE_REQUIRE="model,demo", LSSVIEWER_SMOKE_TIMEOUT="180")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("lssviewer smoke test:")]
    assert proc.returncode == 0 and lines and " OK " in lines[-1], (proc.stdout[-3000:], proc.stderr[-3000:])
    package = lines[-1].rsplit("; package ", 1)[1]
    assert _inside(package, installed.site)
    meta = json.loads((installed.src / "resources" / "models" / "default" / "model.json").read_text())
    assert f"model sample of {meta['n_halos']} halos" in lines[-1]
    assert "demo suite open" in lines[-1]
