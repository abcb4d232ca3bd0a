"""Only where the build writes its scratch files: everything else is in pyproject.toml.

setuptools builds in the source folder by default, so `pip install .` would leave `build/` and
`facial_keypoints.egg-info/` in the checkout; here both go to a temporary folder, removed when
the build step ends.
"""
import atexit
import shutil
import tempfile

from setuptools import setup
from setuptools.command.build import build
from setuptools.command.egg_info import egg_info

SCRATCH = tempfile.mkdtemp(prefix="facial-keypoints-build-")
atexit.register(shutil.rmtree, SCRATCH, ignore_errors=True)


class BuildOutside(build):
    def initialize_options(self):
        super().initialize_options()
        self.build_base = SCRATCH


class EggInfoOutside(egg_info):
    def initialize_options(self):
        super().initialize_options()
        self.egg_base = SCRATCH


setup(cmdclass={"build": BuildOutside, "egg_info": EggInfoOutside})
