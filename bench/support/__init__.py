"""What the benchmarks share: percentiles and the machine line (``stats``), a real
``bramble server`` in a subprocess (``server``), /proc readings and CPU pinning
(``procfs``), load-generator processes (``workers``) and the apiserver load itself
(``objects``, ``writers``, ``readers``, ``watchers``), py-spy profiles (``profile``), and
for the controllers' benchmark: hollow nodes (``hollow``), a namespace's rollout as a watch
sees it (``rollout``), real-node failover (``failover``), CPU per process (``cpu``), the
apiserver's requests from its /metrics (``apimetrics``) and a phase's table (``phase``).

Nothing here is imported by bramble itself; benchmarks are programs, not tests.
"""

from api import gctune

# The load generators measure latencies: their own collector's pauses (up to 150 ms were
# seen) would be counted as the server's. They collect as rarely as bramble does.
gctune.tune()
