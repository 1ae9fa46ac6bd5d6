#!/usr/bin/env python3
"""Golden dequantization vectors for every GGUF block type sworn reads, from an independent
implementation: the `gguf` Python package of llama.cpp (pinned below), whose `dequantize` is
written in numpy apart from ggml's C code.

For each type: a few blocks of seeded random bytes (scale fields set to finite f16 values, so
that no NaN or infinity hides a wrong bit), and the f32 values `gguf.quants.dequantize` gives.
`engine/src/quant/` tests decode the same bytes with sworn's block readers and compare.

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf==0.19.0 numpy==2.4.6
    /tmp/gguf-venv/bin/python scripts/gen/golden-quants.py > tests/golden/quants.json
"""

import json
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of the f16 scale fields in each type's block (ggml's block_* structs).
F16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
BLOCKS = 4


def main() -> None:
    rng = np.random.default_rng(20261129)
    out = {"generator": "gguf==0.19.0 gguf.quants.dequantize", "types": []}
    for qtype in [*F16_FIELDS, T.BF16]:
        block, size = GGML_QUANT_SIZES[qtype]
        blocks = 64 if qtype == T.BF16 else BLOCKS
        raw = bytearray(rng.integers(0, 256, size=blocks * size, dtype=np.uint8).tobytes())
        for b in range(blocks):
            for off in F16_FIELDS.get(qtype, []):
                v = np.float16(rng.normal(0.0, 0.02) if off else rng.uniform(1e-3, 0.05))
                raw[b * size + off : b * size + off + 2] = v.tobytes()
        if qtype == T.BF16:
            # Finite values only: the top halves of normally distributed f32s.
            vals = rng.normal(0.0, 3.0, size=blocks).astype(np.float32)
            raw = bytearray((vals.view(np.uint32) >> 16).astype(np.uint16).tobytes())
        data = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(1, -1)
        values = dequantize(data, qtype).astype(np.float32).reshape(-1)
        out["types"].append(
            {
                "type": qtype.name,
                "code": int(qtype),
                "block_elements": block,
                "block_bytes": size,
                "bytes": bytes(raw).hex(),
                "values_f32_bits": [int(x) for x in values.view(np.uint32)],
            }
        )
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
