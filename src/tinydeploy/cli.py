"""The command line: a thin shell over compiler stages. Errors become one line on stderr."""
from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path

import click
import numpy as np

from . import targets
from .errors import TinydeployError
from .files import check_distinct, write_file_atomic

INT64_MAX = 2**63 - 1
TARGET = click.option("--target", "-t", type=click.Choice(targets.names()), default=targets.DEFAULT, show_default=True)
TARGET_CONFIG = click.option("--target-config", "target_config", type=click.Path(dir_okay=False),
                             help="Target description (TOML/JSON), parsed by the target, e.g. rv32 sram_bytes, clock_hz.")
DIALECT = click.option("--dialect", type=click.Choice(["onnx", "deeploy"]), default="onnx", show_default=True,
                       help="deeploy: read Deeploy's files leniently (ops newer than the file's opset, Pad's "
                            "attribute pads at opset >= 11; docs/deeploy_dialect.md).")
INTEGER_ONLY = click.option("--integer-only", is_flag=True,
                            help="Refuse a node left in float (named in the error) instead of warning.")


def _warn_float(rep: dict) -> None:
    """One line on stderr when a quantized graph keeps float nodes (REPORT.json's float_nodes)."""
    from .passes.float_nodes import summary
    if rep.get("float_nodes"):
        click.echo(f"warning: {summary(rep['float_nodes'])}", err=True)


def _edge(fn):
    """Catch everything at the edge: one line on stderr, exit 1 (traceback only with --debug)."""
    @functools.wraps(fn)
    def wrapper(*args, debug=False, **kw):
        try:
            return fn(*args, **kw)
        except TinydeployError as e:
            if debug:
                traceback.print_exc()
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # noqa: BLE001 - the edge
            if debug:
                traceback.print_exc()
            click.echo(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                       f"(rerun with --debug for the traceback)", err=True)
            sys.exit(2)
    return click.option("--debug", is_flag=True, help="Show tracebacks.")(wrapper)


def parse_shapes(items: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for item in items:
        name, _, dims = item.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
            if not name or any(d <= 0 for d in shape):
                raise ValueError
        except ValueError:
            raise TinydeployError(f"--shape {item!r}: expected NAME=DxDxD with positive sizes, e.g. x=1x3x32x32") from None
        if max(shape) > INT64_MAX:  # shapes are int64 downstream (numpy, ONNX)
            raise TinydeployError(f"--shape {item!r}: size {max(shape)} is beyond the int64 limit {INT64_MAX}")
        shapes[name] = shape
    return shapes


@click.group()
@click.version_option(package_name="tinydeploy")
def main():
    """tinydeploy: quantized ONNX and llama2.c models to self-contained C for microcontrollers."""


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@TARGET
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), required=True, help="C project directory.")
@click.option("--report", type=click.Path(dir_okay=False), help="Write REPORT.json here.")
@click.option("--shape", multiple=True, help="Static input shape, NAME=1x3x32x32 (repeatable).")
@TARGET_CONFIG
@click.option("--exact-memory", is_flag=True, help="Prove the memory plan with CP-SAT (time-limited).")
@INTEGER_ONLY
@DIALECT
@_edge
def compile(model, target, out_dir, report, shape, exact_memory, target_config, integer_only, dialect):
    """Compile MODEL to a C project in OUT_DIR."""
    from .driver import compile_to_dir
    check_distinct({"MODEL": model, "--target-config": target_config}, {"-o": out_dir, "--report": report})
    rep = compile_to_dir(Path(model), target, Path(out_dir), parse_shapes(shape), exact_memory, target_config,
                         integer_only, report=report, dialect=dialect)
    _warn_float(rep)
    if report:
        write_file_atomic(Path(report), json.dumps(rep, indent=2))
    level = next(iter(rep["memory_lower_bound"]))
    click.echo(f"wrote {out_dir}: arena {rep['memory'][level]:,} bytes incl. scratch {rep['memory']['scratch']:,} "
               f"(lower bound {rep['memory_lower_bound'][level]:,})", err=True)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@TARGET
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False), required=True, help="IN.npz")
@click.option("--outputs", "outputs_path", type=click.Path(dir_okay=False), required=True, help="OUT.npz")
@click.option("--report", type=click.Path(dir_okay=False), help="Write REPORT.json here.")
@click.option("--shape", multiple=True, help="Static input shape, NAME=1x3x32x32 (repeatable).")
@TARGET_CONFIG
@INTEGER_ONLY
@DIALECT
@_edge
def run(model, target, inputs_path, outputs_path, report, shape, target_config, integer_only, dialect):
    """Compile MODEL, run it on TARGET with IN.npz, write OUT.npz."""
    from .driver import run_model
    check_distinct({"MODEL": model, "--inputs": inputs_path, "--target-config": target_config},
                   {"--outputs": outputs_path, "--report": report})
    outs, rep = run_model(Path(model), target, Path(inputs_path), parse_shapes(shape), target_config, integer_only,
                          dialect)
    _warn_float(rep)
    import io
    buf = io.BytesIO()
    np.savez(buf, **outs)
    write_file_atomic(Path(outputs_path), buf.getvalue())
    if report:
        write_file_atomic(Path(report), json.dumps(rep, indent=2))
    cyc = f", {rep['cycles']:,} cycles" if rep.get("cycles") is not None else ""
    click.echo(f"wrote {outputs_path}{cyc}", err=True)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@TARGET
@click.option("--shape", multiple=True, help="Static input shape, NAME=1x3x32x32 (repeatable).")
@click.option("--exact-memory", is_flag=True, help="Prove the memory plan with CP-SAT (time-limited).")
@INTEGER_ONLY
@DIALECT
@_edge
def inspect(model, target, shape, exact_memory, integer_only, dialect):
    """Print the lowered graph, the memory plan, per-layer MACs and the nodes left in float."""
    from .compiler import compile_onnx
    from .inspect import describe
    tgt = targets.get(target)
    c = compile_onnx(Path(model), parse_shapes(shape), exact=exact_memory, kernels=tgt.kernels,
                     const_limit=tgt.constant_limit(), integer_only=integer_only, dialect=dialect)
    click.echo(describe(c, tgt.homes(c)))


@main.command()
@click.option("--model", "checkpoint", type=click.Path(dir_okay=False),
              help="llama2.c Q8_0 checkpoint (default: bundled stories260K), or an ONNX decoder with past/present (.onnx).")
@click.option("--target", "-t", type=click.Choice(targets.names(programs=True)), default=targets.DEFAULT,
              show_default=True)
@click.option("--tokenizer", type=click.Path(dir_okay=False),
              help="llama2.c tokenizer (default: tok<vocab>.bin or tokenizer.bin beside the model, else bundled).")
@TARGET_CONFIG
@click.option("--prompt", default="", help="Text to start from (default: BOS only).")
@click.option("--steps", default=256, show_default=True, help="New tokens to generate.")
@click.option("--temperature", default=0.0, show_default=True, help="Finite, >= 0; 0 is greedy.")
@click.option("--top-p", default=0.9, show_default=True, help="Nucleus sampling mass in 0..1; 0 or 1: off.")
@click.option("--seed", default=0, show_default=True)
@click.option("--context", type=click.IntRange(min=2), help="KV-cache positions (default: the checkpoint's seq_len; "
              "an ONNX decoder's max_position_embeddings in config.json beside it, else 512).")
@click.option("--report", type=click.Path(dir_okay=False), help="Write REPORT.json here.")
@_edge
def generate(checkpoint, tokenizer, target, target_config, prompt, steps, temperature, top_p, seed, context, report):
    """Generate text with a llama2.c model or an ONNX decoder compiled to C, running the whole loop on TARGET."""
    from .driver import generate as run_generate
    from .models import default_checkpoint_path, default_tokenizer_path
    ck = Path(checkpoint) if checkpoint else default_checkpoint_path()
    tokenizers = {f"tokenizer {p}": p for p in [default_tokenizer_path(), *ck.parent.glob("tok*.bin"), tokenizer] if p}
    check_distinct({"--model": ck, **tokenizers, "--target-config": target_config}, {"--report": report})
    text, rep = run_generate(checkpoint, target, prompt, steps, temperature, top_p, seed, target_config,
                             tokenizer=tokenizer, context=context)
    click.echo(text, nl=False)
    if report:
        write_file_atomic(Path(report), json.dumps(rep, indent=2))
    click.echo(summary(rep), err=True)


def summary(rep: dict) -> str:
    """generate's summary line: tokens/s, and cycles per token where a simulator counts them."""
    c, tps = rep["cycles_per_token"], rep["tokens_per_second"]
    if c is None:
        return f"{rep['tokens']} tokens, {tps if tps is not None else '-'} tokens/s ({rep['target']}, decode)"
    level = next(iter(rep["memory_lower_bound"]))
    used = rep["memory"].get(f"{level}_total")
    return (f"{rep['tokens']} tokens on {rep.get('march', rep['target'])}: prefill {c['prefill']:,.0f} cycles/prompt "
            f"token, decode {c['decode'] or 0:,.0f} cycles/token ({tps} tokens/s at {rep['clock_hz'] / 1e6:.0f} MHz)"
            + (f", {level} {used:,} B" if used is not None else ""))


@main.command("export-llama")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="MODEL.onnx")
@_edge
def export_llama(checkpoint, output):
    """Write a llama2.c CHECKPOINT as a float32 ONNX decoder with a KV cache (optimum's
    text-generation-with-past layout: input_ids, attention_mask, position_ids, past_key_values.* ->
    logits, present.*)."""
    from .models.llama.export_onnx import export_llama as export
    check_distinct({"CHECKPOINT": checkpoint}, {"-o": output})
    data = export(Path(checkpoint))
    write_file_atomic(Path(output), data)
    click.echo(f"wrote {output}: {len(data):,} bytes", err=True)


if __name__ == "__main__":
    main()
