"""The composition root: the ``bramble`` command. The only package that may import
several of the others (controlplane, agent, tui); each subcommand imports only what it
runs, so that ``bramble agent`` on a Pi never loads the control plane or the TUI."""

__version__ = "0.1.0"
