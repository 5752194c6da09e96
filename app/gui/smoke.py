"""`--smoke-test`: the real window, offscreen, one message, one JSON line on stdout.

Installers and CI use it to prove that a build loads llama.cpp and streams a reply through
the same path a user's click takes. The model goes through the one opening path
(`app.core.chat.open_model`) first, so a file in the old MoE layout is converted (keeping
the original) instead of failing with llama.cpp's bare "Failed to load model".
"""

from __future__ import annotations

import json
import os
import sys

SMOKE_TIMEOUT_S = 300


def _fail(message: str) -> int:
    print(f"smoke test failed: {message}", file=sys.stderr)
    return 1


def run_smoke_test(args) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, QTimer

    from app.core.chat.context import AppContext
    from app.gui.launch import make_application, open_main_window, remote_engine

    app = make_application()
    ctx = AppContext.create()
    ctx.settings.max_tokens = args.max_tokens
    engine = remote_engine(args.remote, args.api_key) if args.remote else None
    window = open_main_window(ctx, engine)
    window.show()
    outcome: dict = {}
    loop = QEventLoop()
    # Only GUI-thread signals here: a lambda connected to a worker signal would run on the
    # worker's thread and touch widgets from there.
    window.model_loaded.connect(lambda info: outcome.update(info=info) or _send(window, args))
    window.model_failed.connect(lambda msg: outcome.update(error=msg) or loop.quit())
    window.controller.reply_finished.connect(lambda st: outcome.update(stats=st) or loop.quit())
    window.controller.error.connect(lambda msg: outcome.update(error=msg) or loop.quit())
    # what a user would have seen in a message box (a GPU that failed, and the CPU used)
    window.models.error.connect(lambda msg: outcome.setdefault("shown", []).append(msg))
    QTimer.singleShot(
        SMOKE_TIMEOUT_S * 1000, lambda: outcome.update(error="timed out") or loop.quit()
    )
    if args.remote:
        window.models.connect_server()
        loop.exec()
    elif (path := _prepare(args.model, outcome)) and window.models.load(str(path)):
        loop.exec()
    else:
        outcome.setdefault("error", f"{args.model} is not a usable GGUF file")
    return _report(window, ctx, outcome, app)


def _prepare(model: str, outcome: dict):
    """The file to load, converted first when needed; None (the reason in `outcome`)."""
    from app.core.chat.open_model import OpenError, prepare_model

    try:
        ready = prepare_model(model, keep_original=lambda _check: True)
    except OpenError as exc:
        outcome["error"] = str(exc)
        return None
    if ready.conversion is not None:
        print(ready.summary(), file=sys.stderr)
    return ready.path


def _send(window, args) -> None:
    window.composer.setPlainText(args.prompt)
    window.composer.submit()


def _report(window, ctx, outcome: dict, app) -> int:
    reply = window.chat_model.messages()[-1].text if window.chat_model.rowCount() else ""
    window.close()
    ctx.close()
    app.processEvents()
    if "error" in outcome:
        return _fail(outcome["error"])
    from app.core.engine.devices import layers_text

    stats, info = outcome["stats"], outcome["info"]
    print(
        json.dumps(
            {
                "model": info.name,
                "tokens": stats.tokens,
                "ttft_s": round(stats.ttft_s, 4),
                "tokens_per_s": round(stats.tokens_per_s, 2),
                "reply": reply,
                "runs_on": layers_text(info.n_gpu_layers, info.effective),
                "shown": outcome.get("shown", []),
            }
        )
    )
    return 0 if stats.tokens > 0 else _fail("the model wrote nothing")
