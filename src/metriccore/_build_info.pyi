# Stub for metriccore._build_info, the module setup.py writes at build time (not in git).
COMPILER: str
COMPILER_TYPE: str
COMPILER_COMMAND: list[str]
EXTRA_COMPILE_ARGS: list[str]
DEFINE_MACROS: list[str]
CYTHON_VERSION: str
NUMPY_BUILD_VERSION: str
FREETHREADING_COMPATIBLE: bool
BUILD_PYTHON: str
BUILD_PLATFORM: str
