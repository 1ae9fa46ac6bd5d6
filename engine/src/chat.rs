//! Chat templates: the model's own `tokenizer.chat_template` (Jinja), rendered with minijinja and
//! Python-compatible string methods, as `transformers` renders it: blocks trimmed and
//! left-stripped (`trim_blocks`, `lstrip_blocks`), `raise_exception` and `tojson` available, and
//! no `strftime_now`, so a template that would print today's date (Llama 3.2's) takes its own
//! fixed fallback: a rendered prompt depends on the messages alone. Tested on Qwen 2.5, Qwen 3,
//! Llama 3.1/3.2 and Gemma 3's published templates against Jinja2
//! (`tests/golden/chat_templates.json`, `scripts/gen/golden-templates.py`).

use minijinja::{Environment, ErrorKind};

use crate::error::{EngineError, Result};

/// One chat message (the transcript format's own type).
pub use sworn_attest::Message;

/// Instructions a template may run before it is stopped: a hostile template in a model file must
/// not hang the server.
const TEMPLATE_FUEL: u64 = 50_000_000;

/// Gemma 3's chat template, as Google publishes it with the model (text-only messages): GGUF
/// conversions of Gemma 3 often carry none. The system message, which Gemma has no role for,
/// is put at the start of the first user turn, as the template does; roles must alternate.
pub const GEMMA3_TEMPLATE: &str = "{{ bos_token }}\
{%- if messages[0]['role'] == 'system' -%}\
{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\
{%- set loop_messages = messages[1:] -%}\
{%- else -%}\
{%- set first_user_prefix = \"\" -%}\
{%- set loop_messages = messages -%}\
{%- endif -%}\
{%- for message in loop_messages -%}\
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\
{{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\
{%- endif -%}\
{%- if (message['role'] == 'assistant') -%}{%- set role = \"model\" -%}\
{%- else -%}{%- set role = message['role'] -%}{%- endif -%}\
{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\
{{ message['content'] | trim }}\
{{ '<end_of_turn>\\n' }}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}";

/// The chat template a model uses: the file's `tokenizer.chat_template`, else sworn's copy of
/// the architecture's published one (Gemma 3), else none. The model commitment hashes this text
/// (`docs/transcript.md` §1), so a transcript commits to the template that rendered it.
pub fn template_source<R: std::io::Read + std::io::Seek>(
    f: &crate::gguf::GgufFile<R>,
) -> Result<Option<&str>> {
    if let Some(t) = f.meta_str("tokenizer.chat_template")? {
        return Ok(Some(t));
    }
    Ok(match f.meta_str("general.architecture")? {
        Some("gemma3") => Some(GEMMA3_TEMPLATE),
        _ => None,
    })
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    source_mentions_tools: bool,
    tool_call_style: Option<ToolCallStyle>,
}

/// The conventions chat templates give models for writing a tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallStyle {
    /// `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>` (Hermes; Qwen 2.5 and 3).
    Hermes,
    /// A bare `{"name": …, "parameters": {…}}` object (Llama 3.1 and 3.2).
    LlamaJson,
}

impl ChatTemplate {
    /// Compiles `source`; `bos`/`eos` are the token spellings templates may refer to.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| EngineError::Template(e.to_string()))?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_fuel(Some(TEMPLATE_FUEL));
        // Python's `json.dumps` spacing, as `transformers` renders `tojson` (minijinja's own is
        // compact and escapes HTML): tool lists and tool-call arguments are rendered this way.
        env.add_filter("tojson", python_tojson);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| EngineError::Template(e.to_string()))?;
        Ok(ChatTemplate {
            env,
            bos: bos.into(),
            eos: eos.into(),
            source_mentions_tools: source.contains("tools"),
            tool_call_style: if !source.contains("tools") {
                None
            } else if source.contains("<tool_call>") {
                Some(ToolCallStyle::Hermes)
            } else if source.contains("\"parameters\"") {
                Some(ToolCallStyle::LlamaJson)
            } else {
                None
            },
        })
    }

    /// Whether the template renders a `tools` list (Qwen 2.5/3, Llama 3.1/3.2 do).
    pub fn supports_tools(&self) -> bool {
        self.source_mentions_tools
    }

    /// How the model writes a tool call, as its template tells it to: `None` when the template
    /// renders no tools or sworn does not recognise its convention.
    pub fn tool_call_style(&self) -> Option<ToolCallStyle> {
        self.tool_call_style
    }

    /// Renders `messages`, ending with the assistant's turn opened when `add_generation_prompt`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        self.render_with_tools(messages, None, add_generation_prompt)
    }

    /// Renders `messages` with `tools` (OpenAI's `tools` array) offered, as `transformers`'
    /// `apply_chat_template(messages, tools=...)` does: messages in Hugging Face's shape (an
    /// assistant's `tool_calls` as `{"id", "type": "function", "function": {"name",
    /// "arguments"}}` with the arguments as a JSON object, a tool message's `tool_call_id`).
    pub fn render_with_tools(
        &self,
        messages: &[Message],
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        let tmpl = self
            .env
            .get_template("chat")
            .map_err(|e| EngineError::Template(e.to_string()))?;
        let msgs: Vec<serde_json::Value> = messages.iter().map(hf_message).collect();
        let tools = tools.map(|t| minijinja::value::Value::from(minijinja::value::Serde(t)));
        tmpl.render(minijinja::context! {
            messages => minijinja::value::Value::from(minijinja::value::Serde(&msgs)),
            tools => tools,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
        })
        .map_err(|e| EngineError::Template(e.to_string()))
    }
}

/// A message in the shape chat templates expect.
fn hf_message(m: &Message) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut v = json!({"role": m.role, "content": m.content});
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let args = serde_json::from_str::<Value>(&c.arguments)
                    .unwrap_or_else(|_| Value::String(c.arguments.clone()));
                json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": args}})
            })
            .collect();
        v["tool_calls"] = Value::Array(calls);
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

/// `tojson` as Python's `json.dumps(x, ensure_ascii=False, indent=indent)`.
fn python_tojson(
    v: minijinja::value::Value,
    kwargs: minijinja::value::Kwargs,
) -> Result<minijinja::value::Value, minijinja::Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let j = serde_json::to_value(&v)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = String::new();
    write_python_json(&j, indent, 0, &mut out);
    Ok(minijinja::value::Value::from_safe_string(out))
}

fn write_python_json(v: &serde_json::Value, indent: Option<usize>, depth: usize, out: &mut String) {
    use serde_json::Value;
    let newline = |out: &mut String, d: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * d));
        }
    };
    let sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, depth + 1);
                write_python_json(x, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                newline(out, depth + 1);
                write_python_str(k, out);
                out.push_str(": ");
                write_python_json(x, indent, depth + 1, out);
            }
            newline(out, depth);
            out.push('}');
        }
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
        Value::String(s) => write_python_str(s, out),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
    }
}

fn write_python_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gemma 3's template: one BOS, the system message at the start of the first user turn,
    /// `model` for the assistant's role, contents trimmed.
    #[test]
    fn the_documented_gemma3_template_is_the_one_used() {
        // docs/chat-templates/gemma3.jinja is the template's text for a second implementation
        // (the model commitment hashes these bytes): it must not drift from the code's.
        let doc = include_str!("../../docs/chat-templates/gemma3.jinja");
        assert_eq!(doc, GEMMA3_TEMPLATE);
    }

    #[test]
    fn renders_gemma3s_template() {
        let t = ChatTemplate::new(GEMMA3_TEMPLATE, "<bos>", "<eos>").unwrap();
        let msgs = [
            Message::new("system", "Be brief."),
            Message::new("user", " Hi! "),
            Message::new("assistant", "Hello."),
            Message::new("user", "Bye"),
        ];
        assert_eq!(
            t.render(&msgs, true).unwrap(),
            "<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\n\
             Hello.<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        // Roles must alternate, as Google's template requires.
        let bad = [Message::new("user", "a"), Message::new("user", "b")];
        assert!(t.render(&bad, true).is_err());
    }

    #[test]
    fn renders_a_chatml_template() {
        let src = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'].strip() }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        let out = t.render(&[Message::new("user", " hi ")], true).unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    /// Blocks are trimmed and left-stripped as `transformers` configures Jinja2 (the expected
    /// string is Jinja2's rendering under those settings).
    #[test]
    fn blocks_are_trimmed_and_left_stripped() {
        let src = "{% for m in messages %}\n    {% if m %}\n<{{ m['content'] }}>\n    {% endif %}\n{% endfor %}\nend";
        let t = ChatTemplate::new(src, "", "").unwrap();
        let msgs = [Message::new("user", "a"), Message::new("user", "b")];
        assert_eq!(t.render(&msgs, false).unwrap(), "<a>\n<b>\nend");
    }

    #[test]
    fn hostile_templates_fail_cleanly() {
        assert!(ChatTemplate::new("{% for x in %}", "", "").is_err());
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        assert!(t
            .render(&[], false)
            .unwrap_err()
            .to_string()
            .contains("no system role"));
        let t = ChatTemplate::new(
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert!(
            t.render(&[], false).is_err(),
            "fuel must stop a runaway template"
        );
    }
}
