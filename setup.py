"""Copy the top-level templates/, firmware/ and boards/ into the wheel as tinytrain/data/*.

The repository keeps them at the top level (the project's map); an installed tinytrain
finds them inside its own package (see tinytrain/resources.py).
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("templates", "firmware", "boards")


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "tinytrain" / "data"
        for name in DATA_DIRS:
            target = dest / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(root / name, target,
                            ignore=shutil.ignore_patterns("__pycache__", ".pio", "*.o", "*.elf"))


setup(cmdclass={"build_py": BuildPyWithData})
