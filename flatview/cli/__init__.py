"""The ``flatview`` command line and its tools: scenario files, QEMU dump import,
replay, maps, stress and the demo.  Nothing in the library imports this package."""

from flatview.cli.main import main

__all__ = ["main"]
