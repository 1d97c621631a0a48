from .run.cli import entry

entry()
