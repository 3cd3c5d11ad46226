"""The clinical app's four model use cases, written as app code against the gateway's aliases.

The app never names a provider: migrating from Groq is a YAML edit or a flag flip on the gateway.
Run against `make serve`:

    MODELGATE_BASE_URL=http://127.0.0.1:4000/v1 LITELLM_MASTER_KEY=... python examples/clinical_app.py
"""

from __future__ import annotations

import io
import json
import os
import sys
import wave
from pathlib import Path

import litellm

BASE_URL = os.environ.get("MODELGATE_BASE_URL", "http://127.0.0.1:4000/v1")
API_KEY = os.environ.get("LITELLM_MASTER_KEY", "")
# "openai/<alias>": LiteLLM's OpenAI-compatible client pointed at the gateway, with an alias as model.
GATEWAY = {"api_base": BASE_URL, "api_key": API_KEY}


def transcribe(path: Path, language: str = "fa") -> str:
    """Use case 1: transcribe a recorded consultation (alias `stt`)."""
    with path.open("rb") as audio:
        result = litellm.transcription(model="openai/stt", file=audio, language=language, **GATEWAY)
    return result.text


def analyse_case(case: str) -> dict:
    """Use case 2: clinical case analysis as JSON (alias `analysis`)."""
    response = litellm.completion(
        model="openai/analysis",
        messages=[
            {"role": "system", "content": "You are a clinical assistant. Reply with a JSON object with keys "
                                          "\"summary\" (string) and \"differentials\" (list of strings)."},
            {"role": "user", "content": case},
        ],
        response_format={"type": "json_object"},
        max_tokens=200,
        temperature=0,
        **GATEWAY,
    )
    return json.loads(response.choices[0].message.content)


def expand_pubmed_query(query: str) -> str:
    """Use case 3: PubMed query expansion (alias `fast`)."""
    response = litellm.completion(
        model="openai/fast",
        messages=[
            {"role": "system", "content": "Rewrite the user's query as a PubMed search with MeSH terms."},
            {"role": "user", "content": query},
        ],
        max_tokens=60,
        temperature=0,
        **GATEWAY,
    )
    return response.choices[0].message.content


def transcribe_in_chunks(path: Path, chunk_s: float = 4.0, language: str | None = None) -> list[str]:
    """Use case 4 as the app does it today: cut the recording into chunks, transcribe each as it
    arrives (alias `stt-realtime`). The gateway's /v1/realtime WebSocket is the streaming successor."""
    texts = []
    with wave.open(str(path), "rb") as source:
        frames_per_chunk = int(source.getframerate() * chunk_s)
        params = source.getparams()
        while frames := source.readframes(frames_per_chunk):
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as chunk:
                chunk.setparams(params)
                chunk.writeframes(frames)
            extra = {"language": language} if language else {}
            result = litellm.transcription(model="openai/stt-realtime", file=("chunk.wav", buffer.getvalue()),
                                           **extra, **GATEWAY)
            texts.append(result.text.strip())
    return texts


def main() -> int:
    audio = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "tests/fixtures/audio/fa_chest_pain.wav"
    print("1. transcript:", transcribe(audio))
    print("2. analysis:", analyse_case("52-year-old man, chest pain radiating to the left arm for two hours."))
    print("3. pubmed:", expand_pubmed_query("chest pain troponin elderly"))
    print("4. chunks:", transcribe_in_chunks(audio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
