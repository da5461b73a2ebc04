"""Builds the Cython extension; all metadata lives in pyproject.toml."""

import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

if sys.platform == "win32":
    compile_args = ["/O2", "/fp:precise"]
else:
    # No -ffast-math, and no FMA contraction: the metrics must match the pure-Python
    # reference bit for bit (METRICS.md §6).
    compile_args = ["-O3", "-ffp-contract=off", "-fno-fast-math"]
    if os.environ.get("METRICCORE_NATIVE") == "1":
        compile_args.append("-march=native")

extensions = [
    Extension(
        f"metriccore.{name}",
        [f"src/metriccore/{name}.pyx"],
        include_dirs=[numpy.get_include(), "src/metriccore"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
    )
    # _kernels: officer metrics (METRICS.md §1-§4); _derive: loan derivation (§5)
    for name in ("_kernels", "_derive")
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3"},
        include_path=["src"],
    ),
)
