"""Writes runtime/kernels/td_fast_mm_asm.h: the RISC-V inline-asm blocks of td_fast_matmul.h.

    python -m tinydeploy.targets.rv32.kernel_asm          # regenerate (tests check it is current)

One asm statement computes a whole 20-accumulator block of td_mm_fast: its first k step (each
accumulator starts from its bias), the other K - 1 steps (NR single steps, then NL passes of NU
steps), then requantization, clamping and the int8 stores. Register use, exactly the 28 registers
clang can allocate with -fomit-frame-pointer: 20 accumulators, s0..s3 held (4 inputs of a 4 x 5 block
or 4 weights of a 5 x 4 block), s4 streamed, s5 the product, pa and pw. Everything else (the loop end,
the requantization table qn, the output py) is a memory operand; after the loop pa and pw are
reused for qn and py, and s0..s4 for m, rnd, sh, lo, hi. Offsets are immediates: multiples of K
and N ("i" operands: literals once td_mm_fast is inlined), td_u the step inside a pass.
"""
from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "runtime" / "kernels" / "td_fast_mm_asm.h"
WIDTH = 100


def _cont(lines: list[str]) -> str:
    return "\n".join(ln.ljust(WIDTH) + "\\" if i < len(lines) - 1 else ln for i, ln in enumerate(lines))


def _off(k: int) -> str:
    return f"%[o{k}]" if k else "0"


def _mac(x: str, b: str, acc: str, base: str | None = None) -> str:
    return f'"mul %[s5], %[{x}], %[{b}]\\n add %[{acc}], %[{base or acc}], %[s5]\\n"'


def _step(rows: int, cols: int, first: bool) -> list[str]:
    """One k step. 4 x 5: inputs held in s0..s3, weight columns streamed through s4; 5 x 4: weights
    held, input rows streamed. The first step adds each product to the bias instead: biases are
    loaded into the accumulators of the last row (4 x 5) or last row (5 x 4) before they are needed,
    the table pointer itself parked in the accumulator written last."""
    u = "" if first else "td_u+"
    held_x = rows == 4
    park = f"c{rows - 1}{cols - 1}"
    out = [f'"lw %[{park}], %[qn]\\n"'] if first else []
    if held_x:
        out += [f'"lb %[s{i}], {u}{_off(i)}(%[pa])\\n"' for i in range(4)]
        for j in range(cols):
            bias = f"c3{j}"
            out.append(f'"lb %[s4], {u}{_off(j)}(%[pw])\\n' + (f' lw %[{bias}], {16 * j}(%[{park}])\\n"' if first else '"'))
            out += [_mac(f"s{i}", "s4", f"c{i}{j}", bias if first else None) for i in range(4)]
    else:
        out += [f'"lb %[s{j}], {u}{_off(j)}(%[pw])\\n"' for j in range(4)]
        if first:
            out.append('"' + " ".join(f"lw %[c4{j}], {16 * j}(%[{park}])\\n" for j in range(4)) + '"')
        for i in range(rows):
            out.append(f'"lb %[s4], {u}{_off(i)}(%[pa])\\n"')
            out += [_mac("s4", f"s{j}", f"c{i}{j}", f"c4{j}" if first else None) for j in range(4)]
    if first:
        out.append('"addi %[pa], %[pa], 1\\n addi %[pw], %[pw], 1\\n"')
    return out


def _requant(rows: int, cols: int) -> list[str]:
    """y = clamp((mulh(acc, m) + rnd) >> sh, lo, hi), stored at py + i N + j."""
    out = ['"lw %[pa], %[qn]\\n lw %[pw], %[py]\\n li %[s3], %[lo]\\n li %[s4], %[hi]\\n"']
    for j in range(cols):
        out.append(f'"lw %[s0], {16 * j + 4}(%[pa])\\n lw %[s1], {16 * j + 8}(%[pa])\\n'
                   f' lw %[s2], {16 * j + 12}(%[pa])\\n"')
        for i in range(rows):
            o = f"{j}" if i == 0 else f"{i}*%[n]+{j}"
            out.append(f'"mulh %[s5], %[c{i}{j}], %[s0]\\n add %[s5], %[s5], %[s1]\\n sra %[s5], %[s5], %[s2]\\n'
                       f' bge %[s5], %[s3], 3f\\n mv %[s5], %[s3]\\n3: bge %[s4], %[s5], 4f\\n mv %[s5], %[s4]\\n'
                       f'4: sb %[s5], {o}(%[pw])\\n"')
    return out


def _block(rows: int, cols: int) -> str:
    tag = f"{rows}{cols}"
    parts = [_cont([f"#define TD_MM{tag}_FIRST"] + ["    " + ln for ln in _step(rows, cols, True)]),
             _cont([f"#define TD_MM{tag}_BODY"] + ["    " + ln for ln in _step(rows, cols, False)]),
             _cont([f"#define TD_MM{tag}_RQ"] + ["    " + ln for ln in _requant(rows, cols)])]
    accs = [f"c{i}{j}" for i in range(rows) for j in range(cols)]
    outs = [f'[{a}] "=&r"({a})' for a in accs]
    lines = [f"#define TD_MM{tag}_ASM(NR, NL, NU) do {{",
             f"        int32_t s0, s1, s2, s3, s4, s5, {', '.join(accs[:10])},",
             f"                {', '.join(accs[10:])};",
             "        const int8_t *end_ = pa + 1 + (NL) * (NU);",
             f"        __asm__ volatile(TD_MM{tag}_FIRST TD_MM_LOOP_TEXT(TD_MM{tag}_BODY) TD_MM{tag}_RQ"]
    lines += ["            " + (": " if k == 0 else "  ") + ", ".join(outs[k:k + 5]) + "," for k in range(0, 20, 5)]
    lines.append("              TD_MM_OUT : TD_MM_IN(NR, NL, NU)); } while (0)")
    return "\n".join(parts + [_cont(lines)])


def header() -> str:
    common = [
        _cont(["#define TD_MM_LOOP_TEXT(BODY)",
               '    ".set td_u, 0\\n.rept %[nr]\\n" BODY ".set td_u, td_u + 1\\n.endr\\n"',
               '    ".if %[nl]\\n1:\\n.set td_u, %[nr]\\n.rept %[nu]\\n" BODY ".set td_u, td_u + 1\\n.endr\\n"',
               '    "addi %[pa], %[pa], %[nu]\\n addi %[pw], %[pw], %[nu]\\n lw %[s5], %[end]\\n'
               ' bne %[pa], %[s5], 1b\\n.endif\\n"']),
        _cont(["#define TD_MM_OUT",
               '    [s0] "=&r"(s0), [s1] "=&r"(s1), [s2] "=&r"(s2), [s3] "=&r"(s3), [s4] "=&r"(s4), [s5] "=&r"(s5),',
               '    [pa] "+r"(pa), [pw] "+r"(pw)']),
        _cont(["#define TD_MM_IN(NR, NL, NU)",
               '    [end] "m"(end_), [qn] "m"(qn), [py] "m"(py), [nr] "i"(NR), [nl] "i"(NL), [nu] "i"(NU),',
               '    [o1] "i"(K), [o2] "i"(2 * K), [o3] "i"(3 * K), [o4] "i"(4 * K), [n] "i"(N), [lo] "i"(lo),',
               '    [hi] "i"(hi) : "memory"']),
    ]
    doc = __doc__.split("\n\n", 2)[2].strip()
    return ("/* GENERATED by python -m tinydeploy.targets.rv32.kernel_asm: do not edit.\n *\n"
            + "\n".join(" * " + ln if ln else " *" for ln in doc.splitlines()) + " */\n"
            "#ifndef TD_FAST_MM_ASM_H\n#define TD_FAST_MM_ASM_H\n"
            + "\n".join(common) + "\n" + _block(4, 5) + "\n" + _block(5, 4) + "\n#endif\n")


def main() -> int:
    OUT.write_text(header())
    print(f"wrote {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
