"""The scheduler's plugins, one module each, each declaring its ``NAME``, the reason
strings it rejects nodes with, and ``new(args, handle)`` for the registry.

Filters (in the default order): NodeUnschedulable, NodeName, TaintToleration,
HardwareHealth, NodeArchitecture, NodeAffinity, NodePorts, NodeResourcesFit,
PodTopologySpread, InterPodAffinity. Scores: TaintToleration, HardwareHealth,
NodeAffinity, NodeResourcesFit (LeastAllocated), PodTopologySpread, InterPodAffinity,
NodeResourcesBalancedAllocation, ImageLocality. PreEnqueue: SchedulingGates,
NodeArchitecture. PostFilter: DefaultPreemption (``controlplane.scheduler.preemption``).
"""
