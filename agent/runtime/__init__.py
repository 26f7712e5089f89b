"""Container runtimes behind one protocol (interface.py): Podman (podman.py), and an
in-memory fake (fake.py) that serves hollow nodes in scale tests."""
