"""Tests of the container runtimes: Podman (real), the fake, and their shared contract."""
