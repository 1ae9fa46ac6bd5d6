#!/usr/bin/env python3
"""Drives a running `sworn serve` with the official `openai` Python client (pinned in
scripts/test.sh) and prints one JSON object per call: the text the client saw, the transcript
id header, and the attestation, for tests/openai.rs to verify and replay.

    python3 tests/openai_client.py http://127.0.0.1:8080
"""
import json
import sys

from openai import OpenAI


def main() -> None:
    client = OpenAI(base_url=sys.argv[1] + "/v1", api_key="unused", max_retries=0, timeout=120)
    model = client.models.list().data[0].id
    out = []

    raw = client.completions.with_raw_response.create(model=model, prompt="The capital of Italy is", max_tokens=12, temperature=0, seed=1)
    resp = raw.parse()
    out.append({"kind": "completion", "text": resp.choices[0].text, "header": raw.headers.get("x-sworn-transcript-id"),
                "finish_reason": resp.choices[0].finish_reason, "attestation": resp.model_extra["sworn_attestation"]})

    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=16, temperature=0.7, seed=7)
    resp = raw.parse()
    out.append({"kind": "chat", "text": resp.choices[0].message.content, "header": raw.headers.get("x-sworn-transcript-id"),
                "finish_reason": resp.choices[0].finish_reason, "attestation": resp.model_extra["sworn_attestation"]})

    text, last = "", None
    for chunk in client.completions.create(model=model, prompt="Once upon a time", max_tokens=10, seed=3, stream=True):
        text += chunk.choices[0].text or ""
        last = chunk
    out.append({"kind": "completion-stream", "text": text, "finish_reason": last.choices[0].finish_reason,
                "attestation": last.model_extra["sworn_attestation"]})

    text, last = "", None
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Say hello."}],
                                                max_tokens=12, seed=9, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        last = chunk
    out.append({"kind": "chat-stream", "text": text, "finish_reason": last.choices[0].finish_reason,
                "attestation": last.model_extra["sworn_attestation"]})

    for o in out:
        print(json.dumps(o))


if __name__ == "__main__":
    main()
