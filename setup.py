"""Builds the Cython extension; all metadata lives in pyproject.toml."""

import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

link_args: list[str] = []
if sys.platform == "win32":
    compile_args = ["/O2", "/fp:precise"]
else:
    # No -ffast-math, and no FMA contraction: the metrics must match the pure-Python
    # reference bit for bit (METRICS.md §6).
    compile_args = ["-O3", "-ffp-contract=off", "-fno-fast-math"]
    if os.environ.get("METRICCORE_NATIVE") == "1":
        compile_args.append("-march=native")

# METRICCORE_SANITIZE=1: build with AddressSanitizer and UndefinedBehaviorSanitizer (GCC or
# Clang), stopping at the first report. The interpreter must then be run with the ASan
# runtime preloaded; .ci/sanitize does all of it.
if os.environ.get("METRICCORE_SANITIZE", "") not in ("", "0"):
    if sys.platform == "win32":
        raise SystemExit("METRICCORE_SANITIZE=1 needs GCC or Clang")
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                "-fno-omit-frame-pointer"]
    compile_args = [a for a in compile_args if not a.startswith(("-O", "-march"))]
    compile_args += ["-O1", "-g"] + sanitize
    link_args += sanitize

extensions = [
    Extension(
        "metriccore._kernels",
        ["src/metriccore/_kernels.pyx"],
        include_dirs=[numpy.get_include(), "src/metriccore"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        include_path=["src"],
    ),
)
