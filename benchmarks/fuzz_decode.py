"""Fuzzes the service's image path (a script, not part of the suite): random and mutated image bytes
through `serving.core.inference.image_pixels` (decode, checks, bilinear resize) for a time budget.

Seeds are small valid images in every format the service reads (JPEG, PNG in several modes, GIF,
BMP, WebP, TIFF, and one with an EXIF orientation); each input is random bytes or a seed with
bytes flipped, cut, inserted, duplicated or its header rewritten (1 to 6 mutations). Anything but
a 4xx refusal (`InvalidInput`, `PayloadTooLarge`) or a correct array is a crash: its input is
written to ``--crash-dir`` and the script exits 1. A hang shows as an input that took longer than
``--slow-seconds``, reported the same way.

    python benchmarks/fuzz_decode.py [--minutes 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serving.core.errors import InvalidInput, PayloadTooLarge  # noqa: E402
from serving.core.inference import image_pixels  # noqa: E402
from serving.core.repository import ServedModel  # noqa: E402
from serving.core.settings import Settings  # noqa: E402


def seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for fmt, mode, size in (
        ("JPEG", "RGB", (40, 30)),
        ("JPEG", "L", (17, 9)),
        ("JPEG", "CMYK", (8, 8)),
        ("PNG", "RGBA", (12, 10)),
        ("PNG", "P", (9, 9)),
        ("PNG", "I;16", (7, 5)),
        ("GIF", "P", (11, 6)),
        ("BMP", "RGB", (5, 13)),
        ("WEBP", "RGB", (16, 16)),
        ("TIFF", "RGB", (6, 6)),
    ):
        picture = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).convert(mode)
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        out.append(buffer.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (10, 4), "red").save(buffer, "JPEG", exif=exif)
    out.append(buffer.getvalue())
    return out


def mutate(rng: np.random.Generator, corpus: list[bytes]) -> bytes:
    if rng.random() < 0.1:
        return rng.bytes(int(rng.integers(0, 512)))
    data = bytearray(corpus[int(rng.integers(len(corpus)))])
    for _ in range(int(rng.integers(1, 7))):
        if not data:
            break
        position = int(rng.integers(len(data)))
        kind = rng.integers(5)
        if kind == 0:
            data[position] ^= 1 << int(rng.integers(8))
        elif kind == 1:
            del data[position:]
        elif kind == 2:
            data[position:position] = rng.bytes(int(rng.integers(1, 32)))
        elif kind == 3:
            end = min(len(data), position + int(rng.integers(1, 64)))
            data[position:position] = data[position:end]
        else:
            offset = int(rng.integers(min(48, len(data))))
            data[offset : offset + 4] = rng.bytes(4)
    return bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow-seconds", type=float, default=5)
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # Pillow warns about every corrupt TIFF tag and EXIF block.

    settings = Settings()  # The service's own limits (40 Mpx images, 2-pixel sides).
    model = ServedModel("fuzz", 1, None, {"input_size": [32, 32]}, ["a"], ["a"], "none", run=lambda x: x)
    corpus, rng = seeds(), np.random.default_rng(args.seed)
    outcomes: Counter = Counter()
    slowest, stop_at, start = 0.0, time.monotonic() + 60 * args.minutes, time.monotonic()
    while time.monotonic() < stop_at:
        data = mutate(rng, corpus)
        began = time.monotonic()
        try:
            pixels = image_pixels([data], model, settings)
            assert pixels.shape == (1, 32, 32, 3) and np.isfinite(pixels).all(), "a wrong array"
            outcomes["decoded"] += 1
            if len(corpus) < 200 and rng.random() < 0.01:
                corpus.append(data)  # A mutant that still decodes: a new seed.
        except (InvalidInput, PayloadTooLarge) as error:
            outcomes[f"refused {error.http_status}"] += 1
        except Exception as error:  # noqa: BLE001 - a crash is what this script looks for
            args.crash_dir.mkdir(parents=True, exist_ok=True)
            path = args.crash_dir / f"crash-{sum(outcomes.values())}.bin"
            path.write_bytes(data)
            print(f"CRASH after {sum(outcomes.values())} inputs: {type(error).__name__}: {error}; input saved to {path}")
            return 1
        took = time.monotonic() - began
        slowest = max(slowest, took)
        if took > args.slow_seconds:
            args.crash_dir.mkdir(parents=True, exist_ok=True)
            path = args.crash_dir / f"slow-{sum(outcomes.values())}.bin"
            path.write_bytes(data)
            print(f"SLOW input ({took:.1f} s) saved to {path}")
            return 1
    total = sum(outcomes.values())
    print(
        f"{total} inputs in {time.monotonic() - start:.0f} s ({total / (time.monotonic() - start):.0f}/s), seed {args.seed}: "
        + ", ".join(f"{key} {value}" for key, value in sorted(outcomes.items()))
        + f"; slowest input {1000 * slowest:.1f} ms; no crash"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
