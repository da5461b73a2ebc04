"""``python -m metriccore info``: version, build facts, Arrow support, default threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import metriccore
from metriccore import _version


@pytest.fixture(scope="module")
def main():
    pytest.importorskip("metriccore._kernels")  # metriccore (and its CLI) import the engine
    from metriccore.__main__ import main

    return main


def test_version_has_one_source(main):
    assert metriccore.__version__ == _version.__version__
    parts = metriccore.__version__.split(".")
    assert len(parts) >= 3
    assert all(p.isdigit() for p in parts[:3])


def test_installed_metadata_matches_version(main):
    from importlib import metadata

    try:
        dist = metadata.distribution("metriccore")
    except metadata.PackageNotFoundError:
        pytest.skip("metriccore is not installed (run from the source tree)")
    installed = os.path.realpath(str(dist.locate_file("metriccore/__init__.py")))
    if installed != os.path.realpath(metriccore.__file__):
        pytest.skip("the imported metriccore is not the installed distribution")
    assert dist.version == metriccore.__version__


def test_info_json(main, capsys, monkeypatch):
    monkeypatch.setenv("METRICCORE_NUM_THREADS", "3")
    assert main(["info", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["version"] == metriccore.__version__
    assert facts["engine"]["available"] is True
    assert facts["arrow"]["c_data_interface"]
    assert facts["arrow"]["c_stream_interface"]
    assert facts["arrow"]["pycapsule_protocols"] == ["__arrow_c_stream__", "__arrow_c_array__"]
    assert facts["threads"]["default"] == 3
    assert facts["threads"]["source"] == "METRICCORE_NUM_THREADS"
    build = facts["build"]
    if build["available"]:  # written by setup.py; absent for an extension built otherwise
        assert build["compiler"]
        assert build["cython"]
        assert build["numpy_build"]
        assert isinstance(build["freethreading_compatible"], bool)
        if sys.platform != "win32":
            assert "-ffp-contract=off" in build["extra_compile_args"]
            assert "-ffast-math" not in build["extra_compile_args"]


def test_info_text(main, capsys, monkeypatch):
    monkeypatch.delenv("METRICCORE_NUM_THREADS", raising=False)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"metriccore {metriccore.__version__}\n")
    for label in ("compiler", "flags", "C data interface", "C stream interface", "default"):
        assert label in out
    assert f"default            {os.cpu_count() or 1} (from os.cpu_count()" in out


def test_info_bad_thread_variable(main, capsys, monkeypatch):
    monkeypatch.setenv("METRICCORE_NUM_THREADS", "zero")
    assert main(["info"]) == 0
    assert "METRICCORE_NUM_THREADS must be a positive integer" in capsys.readouterr().out


def test_python_dash_m(main):
    done = subprocess.run([sys.executable, "-m", "metriccore", "info"], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"metriccore {metriccore.__version__}")
