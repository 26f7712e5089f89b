"""What the benchmarks share: percentiles and the machine line (``stats``), a real
``bramble server`` in a subprocess (``server``), /proc readings and CPU pinning
(``procfs``), load-generator processes (``workers``) and the apiserver load itself
(``objects``, ``writers``, ``readers``, ``watchers``), and py-spy profiles (``profile``).

Nothing here is imported by bramble itself; benchmarks are programs, not tests.
"""
