"""rv32: one RV32IMC[F] core MCU with one SRAM, run in an instruction-exact simulator.

Public API: `from tinydeploy.targets.rv32.runner import build, simulate, Rv32Config`.
"""
