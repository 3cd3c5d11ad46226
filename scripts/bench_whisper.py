"""Benchmark the whisper server: its real-time factor against faster-whisper in-process, then concurrency.

    .venv/bin/python scripts/bench_whisper.py [--rounds 3] [--clients 4] [--requests 3]

1. Overhead: every fixture in tests/fixtures/audio is transcribed by faster-whisper in this process
   and by the server (one request at a time), alternating, `--rounds` times, with the same settings
   (whisper-base, CPU int8, 2 threads, beam 5, VAD, the manifest's language). Real-time factor =
   processing seconds / audio seconds; the overhead compares per clip the fastest of the rounds.
2. Concurrency: `--clients` clients each send `--requests` requests at once; every one must succeed.

Prints markdown tables. Settings come from LOCAL_WHISPER_* like the server's own.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faster_whisper import WhisperModel, decode_audio  # noqa: E402

from local_servers.whisper.config import Settings  # noqa: E402
from tests.support.proc import ServerProcess, free_port  # noqa: E402

AUDIO = ROOT / "tests" / "fixtures" / "audio"


class Clip:
    def __init__(self, name: str, language: str | None) -> None:
        self.name, self.language = name, language
        self.data = (AUDIO / name).read_bytes()
        self.duration = len(decode_audio(io.BytesIO(self.data))) / 16000


def in_process(model: WhisperModel, clip: Clip, settings: Settings) -> float:
    """Seconds to decode and transcribe the clip the way the server does, minus HTTP."""
    started = time.perf_counter()
    audio = decode_audio(io.BytesIO(clip.data))
    segments, _ = model.transcribe(
        audio, language=clip.language, beam_size=settings.beam_size, vad_filter=settings.vad
    )
    list(segments)  # segments are lazy: the work happens here
    return time.perf_counter() - started


def via_server(http: httpx.Client, clip: Clip) -> float:
    started = time.perf_counter()
    fields = {"model": "whisper-local", **({"language": clip.language} if clip.language else {})}
    response = http.post("/v1/audio/transcriptions", files={"file": (clip.name, clip.data)}, data=fields)
    response.raise_for_status()
    return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with few samples the high ones are the slowest requests seen."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def overhead_table(clips: list[Clip], local: dict[str, list[float]], served: dict[str, list[float]]) -> str:
    rows = ["| clip | audio s | in-process s | server s | overhead |", "|---|---:|---:|---:|---:|"]
    for clip in clips:
        a, b = min(local[clip.name]), min(served[clip.name])
        rows.append(f"| {clip.name} | {clip.duration:.1f} | {a:.2f} | {b:.2f} | {100 * (b / a - 1):+.1f}% |")
    audio = sum(c.duration for c in clips)
    best_local = sum(min(local[c.name]) for c in clips)
    best_served = sum(min(served[c.name]) for c in clips)
    rows.append(
        f"| **total (fastest of each clip)** | {audio:.1f} | {best_local:.2f} | {best_served:.2f} "
        f"| **{100 * (best_served / best_local - 1):+.1f}%** |"
    )
    rounds = len(next(iter(local.values())))
    all_local, all_served = sum(map(sum, local.values())), sum(map(sum, served.values()))
    rows.append(
        f"| real-time factor, all {rounds} rounds | | {all_local / (audio * rounds):.3f} "
        f"| {all_served / (audio * rounds):.3f} | {100 * (all_served / all_local - 1):+.1f}% |"
    )
    return "\n".join(rows)


def concurrency(base_url: str, clips: list[Clip], clients: int, requests: int) -> str:
    latencies: list[float] = []
    failures: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=600) as http:
            for i in range(requests):
                clip = clips[(index + i) % len(clips)]  # staggered: clients send different clips
                try:
                    latencies.append(via_server(http, clip))
                except httpx.HTTPError as exc:
                    failures.append(f"{clip.name}: {exc!r}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    audio = sum(clips[(c + i) % len(clips)].duration for c in range(clients) for i in range(requests))
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = percentile(latencies, 99) if latencies else float("nan")
    return "\n".join(
        [
            "| clients | requests | succeeded | failed | p50 latency s | p99 latency s | wall s "
            "| audio s per wall s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {clients} | {clients * requests} | {len(latencies)} | {len(failures)} "
            f"| {p50:.2f} | {p99:.2f} | {wall:.1f} | {audio / wall:.2f} |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3, help="requests per concurrent client")
    parser.add_argument("--clips", nargs="*", help="fixture names (default: all in the manifest)")
    args = parser.parse_args(argv)

    manifest = json.loads((AUDIO / "manifest.json").read_text())["clips"]
    clips = [Clip(name, manifest[name]["language"]) for name in (args.clips or manifest)]
    settings = Settings()
    print(
        f"model {settings.model_path}, device {settings.device}, compute {settings.effective_compute_type}, "
        f"threads {settings.threads}, beam {settings.beam_size}, vad {settings.vad}",
        file=sys.stderr,
    )

    model = WhisperModel(
        str(settings.model_path),
        device=settings.device,
        compute_type=settings.effective_compute_type,
        cpu_threads=settings.threads,
    )
    port = free_port()
    server = ServerProcess(
        ["-m", "local_servers.whisper", "--port", str(port), "--log-level", "warning"],
        port,
        log_name="bench-whisper",
    ).wait_ready()
    try:
        local: dict[str, list[float]] = {c.name: [] for c in clips}
        served: dict[str, list[float]] = {c.name: [] for c in clips}
        with httpx.Client(base_url=server.base_url, timeout=600) as http:
            via_server(http, clips[0])  # warm-up, both sides
            in_process(model, clips[0], settings)
            for r in range(args.rounds):
                for clip in clips:
                    local[clip.name].append(in_process(model, clip, settings))
                    served[clip.name].append(via_server(http, clip))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        del model  # free its memory and threads before the server gets the machine to itself
        print("### Server against faster-whisper in-process\n")
        print(overhead_table(clips, local, served))
        print(f"\n### {args.clients} concurrent clients\n")
        print(concurrency(server.base_url, clips, args.clients, args.requests))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
