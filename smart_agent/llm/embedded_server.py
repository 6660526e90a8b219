"""The embedded model's own process: llama.cpp's HTTP server (xllamacpp) on loopback until SIGTERM.

Started by `local_server.local_model_server` as `python -m smart_agent.llm.embedded_server`. The API
key arrives on stdin, never on the command line (any local user can read that). Once the model
answers, the server's address is the one line written to stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m smart_agent.llm.embedded_server")
    parser.add_argument("--model", required=True, help="the GGUF file")
    parser.add_argument("--alias", required=True, help="the model's name in requests")
    parser.add_argument("--context", type=int, required=True, help="tokens of context per slot")
    parser.add_argument("--slots", type=int, required=True, help="requests answered at once")
    parser.add_argument("--threads", type=int, required=True, help="compute threads")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM; 1 when the model cannot be loaded."""
    args = _arguments(argv)
    api_key = sys.stdin.readline().strip()
    if not api_key:
        print("embedded_server: no API key on stdin", file=sys.stderr)
        return 2
    # Blocked before the server's threads start, so they inherit the mask: SIGTERM reaches only
    # sigwait() below (llama.cpp installs its own handlers, which would end its loop but not this
    # process), and SIGINT, which a terminal's Ctrl+C sends the whole process group, not at all:
    # the app stops its replies first, then ends this process.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.api_keys = [api_key]
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; no race with another program taking it first
    # llama.cpp splits n_ctx evenly across the slots (kv_unified off): each gets --context.
    params.n_parallel = args.slots
    params.n_ctx = args.context * args.slots
    params.fit_params = False  # exactly the context asked for, or an error: the app budgets for it
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    # llama-cpp-python's default, which llama.cpp's server leaves off: without it SmolLM2-135M ran on
    # to the token limit in 3 replies of 52, with it in none (issue 24).
    params.sampling.penalty_repeat = 1.1
    params.offline = True  # nothing is downloaded at run time
    params.ui = False
    params.endpoint_slots = False
    params.cache_ram_mib = 256  # prompts kept for idle slots: bounded (llama.cpp's default is 8 GiB)
    params.verbosity = 2  # warnings and errors: its log is read only when it fails to start
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:  # a bad model file: llama.cpp logged why just before
        print(f"embedded_server: {exc}", file=sys.stderr)
        return 1
    print(server.listening_address, flush=True)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything printed later goes to the log
    signal.sigwait({signal.SIGTERM})
    # Nothing to save: exiting at once cannot hang the way joining the server's threads might.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
