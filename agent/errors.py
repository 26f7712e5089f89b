"""The agent's errors a person must act on.

``AgentError``: a start-up problem (no credentials, a port taken, no Podman); its message
says what to do. Everything else the agent meets while running is handled where it
happens (a pod's status, a node condition, a log line) and never ends the agent.
"""


class AgentError(Exception):
    """A start-up problem a person must fix; the message says how."""
