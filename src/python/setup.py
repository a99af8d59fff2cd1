"""Builds the wand package from the repository's CMake build (target wand_python) and packages
build/python/wand: the Python files and the _wand extension. WAND_BUILD names another build
directory (default: the repository's build/)."""
import os
import pathlib
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("WAND_BUILD", ROOT / "build")).resolve()


class BuildWithCMake(build_py):
    def run(self):
        if not (BUILD / "CMakeCache.txt").exists():
            subprocess.check_call(["cmake", "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja",
                                   "-DCMAKE_BUILD_TYPE=RelWithDebInfo"])
        subprocess.check_call(["cmake", "--build", str(BUILD), "--target", "wand_python"])
        out = pathlib.Path(self.build_lib) / "wand"
        out.mkdir(parents=True, exist_ok=True)
        for f in (BUILD / "python" / "wand").iterdir():
            if f.suffix in (".py", ".so"):
                shutil.copy2(f, out / f.name)


class BinaryDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel: the package holds a compiled extension
        return True


setup(packages=[], cmdclass={"build_py": BuildWithCMake}, distclass=BinaryDistribution)
