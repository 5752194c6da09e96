"""Drive a chat past the context limit on a built runtime, with layers on its GPU device, and
print what the context shift did against a full read of every prompt, as one JSON line.

Run by a runtime's own Python, not by pytest (see runtime_probe.py for why); started by
tests/packaging/test_runtime_context_shift.py. The chat, the two contexts and the checks of
a turn are tests/engine/shift_drive.py's, the ones the CPU-only tests use.

    python shift_probe.py MODEL [--gpu-layers N] [--turns N] [--n-ctx N] [--no-flash-attn]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--gpu-layers", type=int, default=0)
    parser.add_argument("--turns", type=int, default=14)
    parser.add_argument("--n-ctx", type=int, default=1024)
    parser.add_argument("--no-flash-attn", action="store_true")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    from tests.engine.shift_drive import (
        CARD,
        USER,
        DrivenChat,
        drive_turn,
        parting_gap,
        shift_child,
    )
    from tests.packaging.runtime_probe import collect_llama_log

    logged = collect_llama_log()
    flash = not args.no_flash_attn
    shifting = shift_child(args.model, flash, n_ctx=args.n_ctx, n_gpu_layers=args.gpu_layers)
    fresh = shift_child(args.model, flash, n_ctx=args.n_ctx, n_gpu_layers=args.gpu_layers)
    chat = DrivenChat(shifting, CARD)
    turns = []
    for i in range(args.turns):
        prompt, stats, a, b, got, want = drive_turn(shifting, fresh, chat, f"({i}) {USER}")
        parted = got != want
        turns.append(
            {
                "same_top": int(a.argmax()) == int(b.argmax()),
                "logit_gap": float(np.abs(a - b).max()),
                "shifted_tokens": stats.shifted_tokens,
                "evaluated_tokens": stats.evaluated_tokens,
                "prompt_tokens": stats.prompt_tokens,
                "full_read_reason": stats.full_read_reason,
                "parting_gap": parting_gap(fresh, prompt, got, want) if parted else None,
            }
        )
    lines = "".join(logged).splitlines()
    return {
        "turns": turns,
        "offloaded": sorted({line.strip() for line in lines if "offloaded" in line}),
        "devices": sorted({line.strip() for line in lines if "using device" in line}),
    }


if __name__ == "__main__":
    print(json.dumps(run(_parse(sys.argv[1:]))))
