"""Packaging is in pyproject.toml; this adds the one package setuptools cannot find on disk.

``conformance.data.cases`` is the shipped suite: pyproject.toml maps it onto the top-level ``cases/`` folder
(``[tool.setuptools.package-dir]``), so the wheel and the sdist carry the cases as ``conformance/data/cases``.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["conformance*"]), "conformance.data.cases"])
