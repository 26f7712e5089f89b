from tests.controlplane.controllers.harness import client, namespace, server

__all__ = ["client", "namespace", "server"]
