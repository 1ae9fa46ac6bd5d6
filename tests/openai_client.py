#!/usr/bin/env python3
"""Drives a running `sworn serve` with the official `openai` Python client (pinned in
scripts/test.sh) and prints one JSON object per call: what the client saw (text, logprobs, a
parsed object, tool calls), the transcript id header, and the attestation, for tests/server.rs
to verify, replay and compare.

    python3 tests/openai_client.py http://127.0.0.1:8080 [basic|tools] [API_KEY]

`basic` (a real model): completions and chat, plain and streamed, with and without logprobs,
and structured output parsed into a pydantic model. `tools` (a model whose template renders
tools): a forced tool call, plain and streamed, the round trip with the tool's result, and
`tool_choice` auto with a strict tool.
"""
import json
import sys

from openai import OpenAI
from pydantic import BaseModel


class Cat(BaseModel):
    name: str
    age: int


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}},
                   "required": ["city"], "additionalProperties": False}}}


def chat_logprobs(lp):
    return [{"token": c.token, "logprob": c.logprob,
             "top": [[t.token, t.logprob] for t in c.top_logprobs]} for c in lp.content]


def tools(client, model):
    out = []
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, tools=[WEATHER], tool_choice="required", max_tokens=200, seed=1)
    resp = raw.parse()
    msg = resp.choices[0].message
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in msg.tool_calls]
    out.append({"kind": "tool-call", "finish_reason": resp.choices[0].finish_reason, "tool_calls": calls,
                "header": raw.headers.get("x-sworn-transcript-id"), "attestation": resp.model_extra["sworn_attestation"]})

    # The round trip: the call goes back with its result, and the model answers.
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]})
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": json.dumps({"temperature_c": 18})})
    resp = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER], max_tokens=8, seed=2)
    out.append({"kind": "tool-result", "text": resp.choices[0].message.content,
                "finish_reason": resp.choices[0].finish_reason, "attestation": resp.model_extra["sworn_attestation"]})

    # Streamed, a named tool.
    acc, last = {}, None
    for chunk in client.chat.completions.create(
            model=model, messages=messages[:1], tools=[WEATHER], max_tokens=200, seed=3, stream=True,
            tool_choice={"type": "function", "function": {"name": "get_weather"}}):
        for d in chunk.choices[0].delta.tool_calls or []:
            a = acc.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
            a["id"] = d.id or a["id"]
            a["name"] += d.function.name or ""
            a["arguments"] += d.function.arguments or ""
        last = chunk
    out.append({"kind": "tool-call-stream", "finish_reason": last.choices[0].finish_reason,
                "tool_calls": [acc[i] for i in sorted(acc)], "attestation": last.model_extra["sworn_attestation"]})

    # tool_choice auto with a strict tool: the model may answer or call, under a grammar.
    strict = {"type": "function", "function": dict(WEATHER["function"], strict=True)}
    resp = client.chat.completions.create(model=model, messages=messages[:1], tools=[strict], max_tokens=24, seed=4)
    msg = resp.choices[0].message
    out.append({"kind": "auto-strict", "finish_reason": resp.choices[0].finish_reason, "text": msg.content,
                "tool_calls": [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
                               for c in msg.tool_calls or []],
                "attestation": resp.model_extra["sworn_attestation"]})
    return out


def main() -> None:
    mode = sys.argv[2] if len(sys.argv) > 2 else "basic"
    key = sys.argv[3] if len(sys.argv) > 3 else "unused"
    client = OpenAI(base_url=sys.argv[1] + "/v1", api_key=key, max_retries=0, timeout=120)
    model = client.models.list().data[0].id
    if mode == "tools":
        for o in tools(client, model):
            print(json.dumps(o))
        return
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

    # Logprobs: chat and completions, plain and streamed.
    resp = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Name a fruit."}],
                                          max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
    out.append({"kind": "chat-logprobs", "text": resp.choices[0].message.content,
                "logprobs": chat_logprobs(resp.choices[0].logprobs), "attestation": resp.model_extra["sworn_attestation"]})

    text, lps, last = "", [], None
    for chunk in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Name a fruit."}],
                                                max_tokens=8, temperature=0.9, seed=4, logprobs=True,
                                                top_logprobs=2, stream=True):
        c = chunk.choices[0]
        text += c.delta.content or ""
        if c.logprobs and c.logprobs.content:
            lps += chat_logprobs(c.logprobs)
        last = chunk
    out.append({"kind": "chat-logprobs-stream", "text": text, "logprobs": lps,
                "attestation": last.model_extra["sworn_attestation"]})

    resp = client.completions.create(model=model, prompt="The capital of Italy is", max_tokens=6, temperature=0,
                                     logprobs=2)
    lp = resp.choices[0].logprobs
    out.append({"kind": "completion-logprobs", "text": resp.choices[0].text,
                "logprobs": [{"token": t, "logprob": l, "top": sorted(top.items(), key=lambda kv: -kv[1])}
                             for t, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs)],
                "attestation": resp.model_extra["sworn_attestation"]})

    text, lps, last = "", [], None
    for chunk in client.completions.create(model=model, prompt="Once upon a time", max_tokens=6, seed=5,
                                           logprobs=1, stream=True):
        c = chunk.choices[0]
        text += c.text or ""
        if c.logprobs and c.logprobs.tokens:
            lps += [{"token": t, "logprob": l, "top": list(top.items())}
                    for t, l, top in zip(c.logprobs.tokens, c.logprobs.token_logprobs, c.logprobs.top_logprobs)]
        last = chunk
    out.append({"kind": "completion-logprobs-stream", "text": text, "logprobs": lps,
                "attestation": last.model_extra["sworn_attestation"]})

    # Structured output, parsed by the client into a pydantic model.
    resp = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "Describe a cat as JSON with its name and age."}],
        response_format=Cat, max_tokens=40, temperature=0)
    parsed = resp.choices[0].message.parsed
    out.append({"kind": "parse", "text": resp.choices[0].message.content, "parsed": parsed.model_dump(),
                "parsed_type": type(parsed).__name__, "attestation": resp.model_extra["sworn_attestation"]})

    for o in out:
        print(json.dumps(o))


if __name__ == "__main__":
    main()
