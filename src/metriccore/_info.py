"""What ``python -m metriccore info`` reports: version, build, Arrow interface, threads."""

from __future__ import annotations

import os
import platform
import sys
import sysconfig
from importlib import metadata
from typing import Any

from ._version import __version__

__all__ = ["build_info", "format_info"]

# Producers whose objects metriccore reads through the Arrow PyCapsule interface.
_PRODUCERS = ("pyarrow", "polars", "duckdb", "pandas")


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _build_facts() -> dict[str, Any]:
    try:
        from . import _build_info as b
    except ImportError:  # an extension built by other means than setup.py
        return {"available": False}
    return {
        "available": True,
        "compiler": b.COMPILER,
        "compiler_type": b.COMPILER_TYPE,
        "compiler_command": list(b.COMPILER_COMMAND),
        "extra_compile_args": list(b.EXTRA_COMPILE_ARGS),
        "define_macros": list(b.DEFINE_MACROS),
        "cython": b.CYTHON_VERSION,
        "numpy_build": b.NUMPY_BUILD_VERSION,
        "freethreading_compatible": b.FREETHREADING_COMPATIBLE,
        "python": b.BUILD_PYTHON,
        "platform": b.BUILD_PLATFORM,
    }


def _engine_facts() -> dict[str, Any]:
    try:
        from . import _kernels
    except ImportError as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"available": True, "path": _kernels.__file__,
            "chunk_rows": int(_kernels.CHUNK_ROWS)}


def _thread_facts() -> dict[str, Any]:
    env = os.environ.get("METRICCORE_NUM_THREADS")
    facts: dict[str, Any] = {"cpu_count": os.cpu_count(), "METRICCORE_NUM_THREADS": env}
    try:
        from ._checks import resolve_threads

        facts["default"] = resolve_threads(None)
        facts["source"] = ("METRICCORE_NUM_THREADS" if env and env.strip()
                           else "os.cpu_count()")
    except (ImportError, ValueError) as exc:
        facts["default"] = None
        facts["error"] = str(exc)
    return facts


def _arrow_facts() -> dict[str, Any]:
    pyarrow: dict[str, Any] = {"version": _package_version("pyarrow")}
    try:
        import pyarrow as pa

        pyarrow["exports_c_stream"] = hasattr(pa.Table, "__arrow_c_stream__")
        pyarrow["exports_c_array"] = hasattr(pa.RecordBatch, "__arrow_c_array__")
    except ImportError:
        pass
    return {
        "c_data_interface": True,
        "c_stream_interface": True,
        "pycapsule_protocols": ["__arrow_c_stream__", "__arrow_c_array__"],
        "links_libarrow": False,
        "pyarrow": pyarrow,
        "producers": {name: _package_version(name) for name in _PRODUCERS},
    }


def _python_facts() -> dict[str, Any]:
    gil = getattr(sys, "_is_gil_enabled", None)
    return {
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "free_threaded_build": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gil_enabled": True if gil is None else bool(gil()),
    }


def build_info() -> dict[str, Any]:
    """Everything ``python -m metriccore info`` prints, as a JSON-compatible dict."""
    return {
        "version": __version__,
        "package_path": os.path.dirname(os.path.abspath(__file__)),
        "python": _python_facts(),
        "engine": _engine_facts(),
        "build": _build_facts(),
        "arrow": _arrow_facts(),
        "threads": _thread_facts(),
    }


def _yes(flag: object) -> str:
    return "yes" if flag else "no"


def format_info(info: dict[str, Any]) -> str:
    """The plain-text report of :func:`build_info`."""
    py, eng, build, arrow, threads = (info["python"], info["engine"], info["build"],
                                      info["arrow"], info["threads"])
    lines = [f"metriccore {info['version']}",
             f"  package            {info['package_path']}"]
    if eng["available"]:
        lines.append(f"  engine             {eng['path']}")
    else:
        lines.append(f"  engine             NOT AVAILABLE ({eng['error']})")
    lines.append(f"  python             {py['implementation']} {py['version']}"
                 f" (free-threaded build: {_yes(py['free_threaded_build'])},"
                 f" GIL enabled: {_yes(py['gil_enabled'])})")
    lines.append("build")
    if build["available"]:
        lines += [
            f"  compiler           {build['compiler']} [{build['compiler_type']}]",
            f"  flags              {' '.join(build['extra_compile_args'])}",
            f"  compiler command   {' '.join(build['compiler_command'])}",
            f"  macros             {' '.join(build['define_macros'])}",
            f"  built with         Cython {build['cython']}, NumPy {build['numpy_build']},"
            f" {build['python']} ({build['platform']})",
            f"  free-threading     freethreading_compatible="
            f"{_yes(build['freethreading_compatible'])}",
        ]
    else:
        lines.append("  unknown (the extension was not built by metriccore's setup.py)")
    pa_info = arrow["pyarrow"]
    producers = ", ".join(f"{name} {version}" for name, version in arrow["producers"].items()
                          if version is not None) or "none installed"
    lines += [
        "arrow",
        f"  C data interface   {_yes(arrow['c_data_interface'])}"
        f"   C stream interface {_yes(arrow['c_stream_interface'])}"
        f"   (read in place, libarrow not linked: {_yes(not arrow['links_libarrow'])})",
        f"  protocols          {', '.join(arrow['pycapsule_protocols'])}",
        f"  pyarrow            {pa_info['version'] or 'not installed'}"
        + (f" (Table.__arrow_c_stream__: {_yes(pa_info.get('exports_c_stream'))},"
           f" RecordBatch.__arrow_c_array__: {_yes(pa_info.get('exports_c_array'))})"
           if "exports_c_stream" in pa_info else ""),
        f"  producers          {producers}",
        "threads",
    ]
    if threads["default"] is None:
        lines.append(f"  default            error: {threads['error']}")
    else:
        lines.append(f"  default            {threads['default']} (from {threads['source']};"
                     f" cpu_count {threads['cpu_count']})")
    return "\n".join(lines)
