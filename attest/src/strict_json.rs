//! JSON reading for everything sworn verifies: like `serde_json`, except that an object with the
//! same key twice is refused.
//!
//! `serde_json` keeps the last of two equal keys. A signed transcript carrying
//! `"text":"AAA","text":"BBB"` would then verify over `BBB` while a reader that keeps the first
//! key (many do) shows `AAA`, text that was never signed. So every JSON document sworn checks
//! (transcripts, anchored bundles, anchor proofs, verdicts) goes through [`parse`] or
//! [`from_str`], which refuse it (`docs/transcript.md` §5).

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::{Map, Number, Value};

/// How a duplicate key's error begins (see [`is_duplicate_key`]).
const DUPLICATE: &str = "duplicate key";

/// Whether `e` is this reader's refusal of a key given twice (rather than text that is not
/// JSON, or not the shape asked for).
pub fn is_duplicate_key(e: &serde_json::Error) -> bool {
    e.is_data() && e.to_string().starts_with(DUPLICATE)
}

/// Parses `text` into a [`Value`], refusing duplicate keys in any object, at any depth.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = StrictValue.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Parses `text` as a `T`, refusing duplicate keys (see [`parse`]).
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(parse(text)?)
}

/// A seed that builds a [`Value`] the way `serde_json` does, but checks each object's keys.
#[derive(Clone, Copy)]
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "{DUPLICATE} {key:?} in an object (refused: readers disagree on which one \
                     counts)"
                )));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for bad in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"b":{"c":"x","c":"y"}}"#,
            r#"[{"k":[{"z":null,"z":null}]}]"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(is_duplicate_key(&e), "{bad}: {e}");
        }
        // Equal keys in different objects are fine.
        assert!(parse(r#"{"a":{"a":1},"b":{"a":2}}"#).is_ok());
    }

    #[test]
    fn values_read_as_serde_json_reads_them() {
        let text = r#"{"u":18446744073709551615,"i":-3,"f":0.7,"s":"\u00e9","n":null,"t":true,"l":[1,2.5]}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        for bad in ["{} x", "{"] {
            let e = parse(bad).unwrap_err();
            assert!(!is_duplicate_key(&e), "{bad}: {e}");
        }
    }
}
