"""A non-editable wheel carries templates/, firmware/ and boards/ and works from any folder."""
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp), str(ROOT)], check=True)
    wheel = next(tmp.glob("tinytrain-*.whl"))
    site = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True)
    return wheel, site


def test_wheel_carries_data_and_all_packages(installed):
    wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("tinytrain/data/templates/model.c.j2", "tinytrain/data/firmware/kernels/conv2d/conv2d_s8.c",
                     "tinytrain/data/firmware/include/tt_kernels.h", "tinytrain/data/boards/mps2-an386.json",
                     "tinytrain/frontends/__init__.py", "tinytrain/training/program.py",
                     "tinytrain/semantic/shapes.ttl", "tinytrain/semantic/gateway.py"):
        assert required in names, required


def test_installed_wheel_builds_from_another_folder(installed, tmp_path, tte_models):
    _, site = installed
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONNOUSERSITE="1")
    where = subprocess.run([sys.executable, "-c", "import tinytrain.resources as r; print(r.templates_dir())"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert str(site) in where, f"the installed copy was not the one imported: {where}"
    proc = subprocess.run([sys.executable, "-m", "tinytrain", "build", str(tte_models / "mcunet-5fps.json"),
                           "--board", "native", "-o", "out", "--no-compile"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "src" / "model.c").is_file()
    assert (tmp_path / "out" / "src" / "tt_kernels.h").is_file() or any((tmp_path / "out").rglob("tt_kernels.h"))
