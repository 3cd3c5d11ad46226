"""Benchmark the llama server against llama-cpp-python in-process, and under 4 concurrent clients.

    .venv/bin/python scripts/bench_llama.py [--model models/smollm2-135m-instruct-q4_1.gguf]
        [--threads 2] [--max-tokens 128] [--rounds 3] [--clients 4] [--waves 3] [--client-tokens 64]

1. Throughput: the same prompts, greedy, same max_tokens, through four paths in the same run:
   `Llama.create_chat_completion` in this process, whole and streamed, and the server, whole and
   streamed (openai SDK): each server path compares with its in-process twin. Greedy decoding
   to max_tokens gives the same number of tokens on every path, so tokens/s compare like for like.
   (The text itself can differ after a near-tie: llama.cpp reuses the cached prefix of the previous
   prompt, and a different split of the evaluation rounds the logits differently.) Runs alternate
   between paths so that a change in machine load hits all of them alike.
2. Concurrency: `--clients` streams at once, `--waves` times. Every stream must end with its
   finish_reason and the full token count (nothing interrupted); latency percentiles per request.

Prints markdown tables. The server runs as a child process with the same model and threads.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# As the server does (local_servers/llama/__init__.py), before llama_cpp loads; the server inherits it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx  # noqa: E402
import openai  # noqa: E402
from llama_cpp import Llama  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "List 100 medications, one per line.",
    "Write a long story about a hospital.",
    "Count from 1 to 300, separated by commas.",
    "Explain in detail how to take a patient's blood pressure.",
]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LOCAL_QWEN_MODEL_PATH": args.model, "LOCAL_QWEN_THREADS": str(args.threads),
           "LOCAL_QWEN_CONTEXT": "4096", "LOCAL_QWEN_MAX_QUEUE": str(args.clients),
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "local_servers.llama", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def throughput(args: argparse.Namespace, llm: Llama, client: openai.OpenAI) -> dict[str, list[float]]:
    params = {"max_tokens": args.max_tokens, "temperature": 0.0, "top_p": 1.0}

    def in_process(messages: list[dict[str, str]]) -> tuple[int | None, str]:
        answer = llm.create_chat_completion(messages, **params)
        return answer["usage"]["completion_tokens"], answer["choices"][0]["message"]["content"]

    def in_process_stream(messages: list[dict[str, str]]) -> tuple[int | None, str]:
        chunks = llm.create_chat_completion(messages, stream=True, **params)
        text = "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)
        return None, text  # llama-cpp-python streams no usage: counted like the whole answer

    def server(messages: list[dict[str, str]]) -> tuple[int | None, str]:
        answer = client.chat.completions.create(model="qwen-local", messages=messages, **params)
        return answer.usage.completion_tokens, answer.choices[0].message.content

    def server_stream(messages: list[dict[str, str]]) -> tuple[int | None, str]:
        stream = client.chat.completions.create(model="qwen-local", messages=messages, stream=True,
                                                stream_options={"include_usage": True}, **params)
        text, tokens = "", 0
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        return tokens, text

    paths = {"llama-cpp-python in-process": in_process, "server": server,
             "llama-cpp-python in-process, streamed": in_process_stream, "server, streamed": server_stream}
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(args.rounds):
        for i, prompt in enumerate(PROMPTS):
            messages = [{"role": "user", "content": prompt}]
            names = list(paths)
            order = names if (round_ + i) % 2 == 0 else names[::-1]  # alternate who goes first
            runs: dict[str, tuple[int | None, float]] = {}
            for name in order:
                began = time.perf_counter()
                tokens, _ = paths[name](messages)
                runs[name] = (tokens, time.perf_counter() - began)
            whole_tokens = runs["llama-cpp-python in-process"][0]
            for name, (tokens, seconds) in runs.items():
                rates[name].append((tokens or whole_tokens) / seconds)
            if len({tokens for tokens, _ in runs.values() if tokens is not None}) != 1:
                print(f"note: paths made different token counts for {prompt!r}", file=sys.stderr)
    return rates


async def concurrency(args: argparse.Namespace, base_url: str) -> tuple[list[float], list[float], int, int]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=600)
    latencies, first_tokens = [], []
    complete = interrupted = 0

    async def one(prompt: str) -> None:
        nonlocal complete, interrupted
        began = time.perf_counter()
        first = None
        stream = await client.chat.completions.create(
            model="qwen-local", messages=[{"role": "user", "content": prompt}], max_tokens=args.client_tokens,
            temperature=0, stream=True, stream_options={"include_usage": True},
        )
        finish, tokens = None, 0
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content and first is None:
                first = time.perf_counter() - began
            if chunk.choices and chunk.choices[0].finish_reason:
                finish = chunk.choices[0].finish_reason
            if chunk.usage:
                tokens = chunk.usage.completion_tokens
        latencies.append(time.perf_counter() - began)
        first_tokens.append(first or 0.0)
        # Whole: it said why it ended, and ended at max_tokens unless the model itself stopped.
        if finish == "length" and tokens >= args.client_tokens or finish == "stop" and tokens > 0:
            complete += 1
        else:
            interrupted += 1

    async with client:
        for _ in range(args.waves):
            await asyncio.gather(*(one(PROMPTS[c % len(PROMPTS)]) for c in range(args.clients)))
    return latencies, first_tokens, complete, interrupted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/smollm2-135m-instruct-q4_1.gguf")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--waves", type=int, default=3)
    parser.add_argument("--client-tokens", type=int, default=64, help="max_tokens of each concurrent client")
    parser.add_argument("--port", type=int, default=4092)
    args = parser.parse_args()

    load_before = os.getloadavg()
    server = start_server(args, args.port)
    try:
        base_url = f"http://127.0.0.1:{args.port}/v1"
        # Set up as the server sets up its model (local_servers/llama/executors/llama.py).
        llm = Llama(args.model, n_ctx=4096, n_threads=args.threads, n_threads_batch=args.threads,
                    verbose=False)
        client = openai.OpenAI(base_url=base_url, api_key="local", max_retries=0, timeout=600)
        rates = throughput(args, llm, client)
        del llm
        latencies, first_tokens, complete, interrupted = asyncio.run(concurrency(args, base_url))
    finally:
        server.terminate()
        server.wait(30)
    load_after = os.getloadavg()

    print(f"\nModel `{Path(args.model).name}`, {args.threads} threads, greedy, max_tokens {args.max_tokens}, "
          f"{len(PROMPTS)} prompts x {args.rounds} rounds, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}. "
          "Load average before/after: "
          f"{load_before[0]:.2f} / {load_after[0]:.2f} ({os.cpu_count()} CPUs).\n")
    baselines = {"server": "llama-cpp-python in-process",
                 "server, streamed": "llama-cpp-python in-process, streamed"}
    print("| path | median tokens/s | min | max | vs in-process (same mode) |")
    print("|---|---|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        twin = rates.get(baselines.get(name, ""))
        share = f"{100 * median / statistics.median(twin):.1f}%" if twin else ""
        print(f"| {name} | {median:.1f} | {min(values):.1f} | {max(values):.1f} | {share} |")

    print(f"\n{args.clients} concurrent streaming clients x {args.waves} waves, "
          f"max_tokens {args.client_tokens} (one inference at a time: the others wait their turn):\n")
    print("| requests | complete | interrupted | latency p50 (s) | latency p99 (s) | first token p50 (s) "
          "| first token p99 (s) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {len(latencies)} | {complete} | {interrupted} | {percentile(latencies, 50):.2f} | "
          f"{percentile(latencies, 99):.2f} | {percentile(first_tokens, 50):.2f} | "
          f"{percentile(first_tokens, 99):.2f} |")


if __name__ == "__main__":
    main()
