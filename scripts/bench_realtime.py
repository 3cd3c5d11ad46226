"""Benchmark realtime transcription: latency from the end of speech to the final text, and to the first partial.

    .venv/bin/python scripts/bench_realtime.py [--rounds 3] [--pace 1.0] [--clips en_dictation_3_sentences.wav ...]
                                               [--gateway http://127.0.0.1:4000/v1 --key sk-...]

Without --gateway it starts a whisper server (whisper-base, CPU, LOCAL_WHISPER_* settings) and a
gateway serving `stt-realtime` from it only (no cloud keys), as `make serve` would. Each clip of
tests/fixtures/audio (16 kHz, resampled to 24 kHz) is streamed through the official openai SDK
(`client.realtime.connect`) in 100 ms chunks, each sent when it would have been captured by a
microphone (`--pace 1`: real time; 0: as fast as possible). Measured per utterance:

- final latency: `...completed` received minus the moment its speech ended (the last sample of the
  utterance above -50 dBFS, in the clip); the VAD's silence wait is part of it;
- first partial: first `...delta` of the utterance minus the moment its speech began;
- word error rate of the session's completed transcripts against the clip's reference text (after
  whisper-normalizer: its English normalizer for English, the basic one otherwise), so a faster
  setting that costs accuracy shows it.

Prints markdown: each session, then per clip nearest-rank p50 / p95 over all its utterances and rounds.
`--env NAME=value` passes settings to the servers it starts (LOCAL_WHISPER_*, REALTIME_*...).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import statistics
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIO = ROOT / "tests" / "fixtures" / "audio"
CHUNK_MS = 100


# --- audio -------------------------------------------------------------------------------------------

def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, f"{path}: expected mono 16-bit PCM"
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def pcm_at(path: Path, rate: int = 24000) -> bytes:
    """The clip as PCM16 at `rate` (linear interpolation: the fixtures have nothing above 8 kHz)."""
    samples, source = read_wav(path)
    if source != rate:
        t_out = np.arange(int(len(samples) * rate / source)) / rate
        samples = np.interp(t_out, np.arange(len(samples)) / source, samples.astype(np.float64))
    return np.round(samples).astype("<i2").tobytes()


def speech_spans(path: Path, min_gap_s: float = 0.3, level: int = 100) -> list[tuple[float, float]]:
    """(start, end) seconds of each utterance: samples above `level` (-50 dBFS), split at gaps > min_gap_s."""
    samples, rate = read_wav(path)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > level)
    if len(loud) == 0:
        return []
    gaps = np.flatnonzero(np.diff(loud) > min_gap_s * rate)
    starts = [loud[0], *loud[gaps + 1]]
    ends = [*loud[gaps], loud[-1]]
    return [(s / rate, (e + 1) / rate) for s, e in zip(starts, ends)]


# --- one streamed session ----------------------------------------------------------------------------

@dataclass
class Run:
    """What one streamed session saw: every server event with the time it arrived (seconds from t0)."""

    t0: float = 0.0
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    sent_s: float = 0.0  # when the last chunk was sent

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for _, e in self.events if e["type"] == kind]

    def at(self, event: dict[str, Any]) -> float:
        return next(t for t, e in self.events if e is event)

    @property
    def completed(self) -> list[dict[str, Any]]:
        return self.of("conversation.item.input_audio_transcription.completed")

    @property
    def committed_ids(self) -> list[str]:
        return [e["item_id"] for e in self.of("input_audio_buffer.committed")]

    def transcripts(self) -> list[str]:
        """Completed transcripts in commit order."""
        by_item = {e["item_id"]: e["transcript"] for e in self.completed}
        return [by_item[i] for i in self.committed_ids if i in by_item]

    def partial_text(self, item_id: str) -> str:
        return "".join(e["delta"] for e in self.of("conversation.item.input_audio_transcription.delta")
                       if e["item_id"] == item_id)


async def stream(connection: Any, pcm: bytes, rate: int = 24000, pace: float = 1.0, expect: int | None = None,
                 tail_s: float = 1.5, timeout: float = 120.0, run: Run | None = None) -> Run:
    """Send `pcm` in 100 ms chunks (each when a microphone would have delivered it, `pace` x real time;
    0: at once), then `tail_s` of silence, and collect events until `expect` items are completed (or
    failed), or `timeout`."""
    run = run or Run()
    chunk = rate * 2 * CHUNK_MS // 1000
    audio = pcm + bytes(int(rate * tail_s) * 2)
    done = asyncio.Event()

    async def receive() -> None:
        finished = 0
        async for event in connection:
            data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
            run.events.append((time.perf_counter() - run.t0, data))
            if data["type"].startswith("conversation.item.input_audio_transcription.") and \
                    data["type"] != "conversation.item.input_audio_transcription.delta":
                finished += 1
                if expect is not None and finished >= expect:
                    done.set()
                    return

    receiver = asyncio.create_task(receive())
    run.t0 = run.t0 or time.perf_counter()
    try:
        for index, offset in enumerate(range(0, len(audio), chunk)):
            if pace:
                delay = run.t0 + (index + 1) * CHUNK_MS / 1000 / pace - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await connection.input_audio_buffer.append(audio=base64.b64encode(audio[offset:offset + chunk]).decode())
        run.sent_s = time.perf_counter() - run.t0
        if expect is not None:
            await asyncio.wait_for(asyncio.shield(done.wait()), timeout)
        else:
            await asyncio.sleep(0.5)
    finally:
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
    return run


def transcription_session(language: str | None = None, rate: int = 24000, model: str = "stt-realtime",
                          **turn_detection: Any) -> dict[str, Any]:
    """The `session` of a GA session.update for a transcription session."""
    td = {"type": "server_vad", **turn_detection}
    return {"type": "transcription",
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": rate},
                                "transcription": {"model": model, **({"language": language} if language else {})},
                                "turn_detection": td}}}


async def stream_clip(api_base: str, key: str, clip: str, language: str | None, pace: float,
                      expect: int, silence_ms: int | None = None) -> Run:
    import openai

    client = openai.AsyncOpenAI(base_url=api_base, api_key=key, max_retries=0)
    async with client.realtime.connect(model="stt-realtime") as connection:
        extra = {"silence_duration_ms": silence_ms} if silence_ms else {}
        await connection.session.update(session=transcription_session(language, **extra))  # type: ignore[arg-type]
        while (await connection.recv()).type != "session.updated":
            pass
        return await stream(connection, pcm_at(AUDIO / clip), pace=pace, expect=expect)


# --- measurements ------------------------------------------------------------------------------------

def word_error_rate(language: str | None, reference: str, transcripts: list[str]) -> float:
    import jiwer
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalize = EnglishTextNormalizer() if language == "en" else BasicTextNormalizer()
    return jiwer.wer(normalize(reference), normalize(" ".join(transcripts)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] if ordered else float("nan")


def measure(run: Run, spans: list[tuple[float, float]], pace: float) -> dict[str, list[float]]:
    """Latencies in seconds, utterance i matched to span i: `final` (end of speech -> completed),
    `stopped` (end of speech -> speech_stopped: the VAD's silence wait), `partial` (start of speech ->
    first delta)."""
    out: dict[str, list[float]] = {"final": [], "stopped": [], "partial": []}
    scale = 1 / pace if pace else 0.0
    completed = {e["item_id"]: run.at(e) for e in run.completed}
    stopped = {e["item_id"]: run.at(e) for e in run.of("input_audio_buffer.speech_stopped")}
    deltas: dict[str, float] = {}
    for t, e in run.events:
        if e["type"] == "conversation.item.input_audio_transcription.delta":
            deltas.setdefault(e["item_id"], t)
    for item_id, (start, end) in zip(run.committed_ids, spans):
        if item_id in completed:
            out["final"].append(completed[item_id] - end * scale)
        if item_id in stopped:
            out["stopped"].append(stopped[item_id] - end * scale)
        if item_id in deltas:
            out["partial"].append(deltas[item_id] - start * scale)
    return out


def start_servers(env: dict[str, str]) -> tuple[list[Any], str, str]:
    from tests.support.gateway import MASTER_KEY
    from tests.support.proc import ServerProcess, free_port

    whisper_port, gateway_port = free_port(), free_port()
    whisper = ServerProcess(["-m", "local_servers.whisper", "--port", str(whisper_port)], whisper_port,
                            {"LOCAL_WHISPER_MODEL": "models/whisper-base", **env}, log_name="bench-whisper")
    whisper.wait_ready("/health", timeout=180)
    ledger = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-realtime-{gateway_port}.sqlite"
    gateway = ServerProcess(
        ["-m", "gateway", "serve"], gateway_port,
        {"LITELLM_MASTER_KEY": MASTER_KEY, "GATEWAY_PORT": str(gateway_port), "GROQ_API_KEY": "", "OPENAI_API_KEY": "",
         "OPENROUTER_API_KEY": "", "LOCAL_WHISPER_API_BASE": f"{whisper.base_url}/v1",
         "MODELGATE_LEDGER_URL": f"sqlite:///{ledger}",
         "MODELGATE_FLAGS_FILE": str(ledger.with_suffix(".flags.yaml")), **env}, log_name="bench-gateway")
    gateway.wait_ready("/health", timeout=120)
    return [gateway, whisper], gateway.base_url + "/v1", MASTER_KEY


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_realtime.py", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pace", type=float, default=1.0, help="1: real time, 0: as fast as possible")
    parser.add_argument("--clips", nargs="+", default=["en_dictation_3_sentences.wav", "fa_dictation_2_sentences.wav"])
    parser.add_argument("--silence-ms", type=int, default=None, help="turn_detection.silence_duration_ms to send")
    parser.add_argument("--gateway", help="a running gateway's base URL (…/v1); default: start one")
    parser.add_argument("--key", default=os.environ.get("LITELLM_MASTER_KEY", ""))
    parser.add_argument("--env", nargs="*", default=[], help="NAME=value settings for the servers it starts")
    args = parser.parse_args(argv)

    manifest = json.loads((AUDIO / "manifest.json").read_text())["clips"]
    servers: list[Any] = []
    if args.gateway:
        api_base, key = args.gateway, args.key
    else:
        servers, api_base, key = start_servers(dict(item.split("=", 1) for item in args.env))
    # Warm-up, not measured: the first session loads the partial model, LiteLLM warms its paths.
    asyncio.run(stream_clip(api_base, key, "en_orders.wav", "en", 0, 1, args.silence_ms))
    totals: dict[str, dict[str, list[float]]] = {clip: {"final": [], "stopped": [], "partial": []}
                                                 for clip in args.clips}
    failed = {clip: 0 for clip in args.clips}
    errors: dict[str, list[float]] = {clip: [] for clip in args.clips}
    texts: dict[str, list[str]] = {}
    rows = ["| clip | round | completed | end of speech -> completed s | -> speech_stopped s | first partial s | WER |",
            "|---|---:|---:|---|---|---|---:|"]
    try:
        for round_ in range(1, args.rounds + 1):
            for clip in args.clips:
                spans = speech_spans(AUDIO / clip)
                run = asyncio.run(stream_clip(api_base, key, clip, manifest[clip]["language"], args.pace,
                                              len(spans), args.silence_ms))
                got = measure(run, spans, args.pace)
                for name, values in got.items():
                    totals[clip][name] += values
                failed[clip] += len(spans) - len(run.completed)
                texts[clip] = run.transcripts()
                errors[clip].append(word_error_rate(manifest[clip]["language"], manifest[clip]["text"], texts[clip]))
                cells = [", ".join(f"{x:.2f}" for x in got[name]) or "-" for name in ("final", "stopped", "partial")]
                rows.append(f"| {clip} | {round_} | {len(run.completed)}/{len(spans)} | {' | '.join(cells)} "
                            f"| {errors[clip][-1]:.3f} |")
                print(rows[-1], file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
    print("\n".join(rows))
    print()
    print("| clip | measure | n | p50 s | p95 s | mean s |")
    print("|---|---|---:|---:|---:|---:|")
    for clip in args.clips:
        for name, label in (("final", "end of speech -> completed"), ("stopped", "end of speech -> speech_stopped"),
                            ("partial", "start of speech -> first delta")):
            values = totals[clip][name]
            mean = statistics.fmean(values) if values else float("nan")
            print(f"| {clip} | {label} | {len(values)} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} "
                  f"| {mean:.2f} |")
        if errors[clip]:
            print(f"| {clip} | word error rate (mean of rounds) | {len(errors[clip])} | | | "
                  f"{statistics.fmean(errors[clip]):.3f} |")
        if failed[clip]:
            print(f"| {clip} | utterances without a completed transcript | {failed[clip]} | | | |")
    print()
    for clip, transcripts in texts.items():
        print(f"- {clip}, last round: " + " / ".join(transcripts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
