"""cluster: N RV32IMC[F] cores sharing an L1 scratchpad, an L2 behind a DMA, a hardware barrier;
run on one unicorn engine per core with modelled cycles (README.md).

Public API: `from tinydeploy.targets.cluster.runner import build, simulate, ClusterConfig`.
"""
