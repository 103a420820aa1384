//! MongoDB Extended JSON v2, both ways: plain JSON to canonical Extended JSON (what a client
//! sends) and Extended JSON (canonical or relaxed) to plain JSON (what a server reads).
//!
//! Both official clients send user-supplied documents as canonical Extended JSON
//! (`{"$numberInt":"42"}`, `{"$oid":"..."}`): a client builds them with [`to_canonical`];
//! a server reads a body with [`to_plain`] and then works with ordinary JSON.

use serde_json::{Map, Number, Value, json};

/// Convert plain JSON to canonical Extended JSON v2, the form realm-web (bson `EJSON.serialize`
/// with `relaxed: false`) and realm-core put on the wire for user-supplied documents
/// (custom-function login payloads, `reset/call` arguments).
///
/// - integers in the 32-bit range → `{"$numberInt": "<n>"}`; other integers →
///   `{"$numberLong": "<n>"}` (beyond `i64`: `{"$numberDouble"}`);
/// - other numbers → `{"$numberDouble": "<x>"}`;
/// - strings, booleans and null are unchanged; arrays and objects are converted
///   recursively, except objects that already are Extended JSON (a key starting with `$`),
///   which are kept as they are.
///
/// ```
/// use serde_json::json;
/// use latchkey_protocol::ejson::to_canonical;
/// assert_eq!(
///     to_canonical(json!(["arg1", {"a": 1, "big": 5_000_000_000i64, "x": 1.5, "id": {"$oid": "65f0c0ffee0000000000abcd"}}])),
///     json!(["arg1", {"a": {"$numberInt": "1"}, "big": {"$numberLong": "5000000000"},
///                     "x": {"$numberDouble": "1.5"}, "id": {"$oid": "65f0c0ffee0000000000abcd"}}])
/// );
/// ```
pub fn to_canonical(value: Value) -> Value {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                if i32::try_from(i).is_ok() {
                    json!({ "$numberInt": i.to_string() })
                } else {
                    json!({ "$numberLong": i.to_string() })
                }
            } else if let Some(f) = n.as_f64() {
                json!({ "$numberDouble": format!("{f:?}") })
            } else {
                Value::Number(n)
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(to_canonical).collect()),
        Value::Object(map) if map.keys().any(|k| k.starts_with('$')) => Value::Object(map),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, to_canonical(v)))
                .collect::<Map<String, Value>>(),
        ),
        other => other,
    }
}

/// Convert Extended JSON wrappers to plain JSON values, recursively.
///
/// - `$numberInt`, `$numberLong` → integer; `$numberDouble` → number
///   (`NaN`/`Infinity` stay strings, which JSON cannot represent);
/// - `$numberDecimal` → its string;
/// - `$oid` → 24-hex string;
/// - `$date` → milliseconds since the epoch (from canonical `{"$numberLong"}`) or
///   the relaxed ISO-8601 string as is;
/// - `$binary` → its base64 string; `$symbol` → string;
/// - anything else is kept, with its children converted.
///
/// ```
/// use serde_json::json;
/// let canonical = json!({"age": {"$numberInt": "42"}, "id": {"$oid": "65f0c0ffee0000000000abcd"},
///                        "big": {"$numberLong": "9007199254740993"}, "x": [{"$numberDouble": "1.5"}]});
/// assert_eq!(latchkey_protocol::ejson::to_plain(canonical),
///            json!({"age": 42, "id": "65f0c0ffee0000000000abcd", "big": 9007199254740993i64, "x": [1.5]}));
/// ```
pub fn to_plain(value: Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(to_plain).collect()),
        Value::Object(map) => convert_object(map),
        other => other,
    }
}

fn convert_object(map: Map<String, Value>) -> Value {
    if map.len() == 1 {
        let (key, inner) = map.iter().next().expect("len is 1");
        if let Some(v) = convert_wrapper(key, inner) {
            return v;
        }
    }
    Value::Object(map.into_iter().map(|(k, v)| (k, to_plain(v))).collect())
}

fn convert_wrapper(key: &str, inner: &Value) -> Option<Value> {
    match (key, inner) {
        ("$numberInt", Value::String(s)) | ("$numberLong", Value::String(s)) => {
            s.parse::<i64>().ok().map(Value::from)
        }
        ("$numberDouble", Value::String(s)) => match s.parse::<f64>() {
            Ok(f) if f.is_finite() => Number::from_f64(f).map(Value::Number),
            _ => Some(Value::String(s.clone())),
        },
        ("$numberDecimal", Value::String(s)) | ("$symbol", Value::String(s)) => {
            Some(Value::String(s.clone()))
        }
        ("$oid", Value::String(s)) if s.parse::<crate::ObjectId>().is_ok() => {
            Some(Value::String(s.to_ascii_lowercase()))
        }
        ("$date", Value::String(s)) => Some(Value::String(s.clone())),
        ("$date", Value::Object(_)) => match to_plain(inner.clone()) {
            Value::Number(n) => Some(Value::Number(n)),
            _ => None,
        },
        ("$binary", Value::Object(b)) => b.get("base64").cloned(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_wrapped_and_round_trip_through_to_plain() {
        let plain = json!({"n": -2147483648i64, "m": 2147483648i64, "u": u64::MAX, "f": 1.0,
                           "s": "1", "b": true, "z": null, "nested": [[1]]});
        let c = to_canonical(plain.clone());
        assert_eq!(c["n"], json!({"$numberInt": "-2147483648"}));
        assert_eq!(c["m"], json!({"$numberLong": "2147483648"}));
        assert_eq!(c["f"], json!({"$numberDouble": "1.0"}));
        assert_eq!(c["s"], json!("1"));
        assert_eq!(c["nested"], json!([[{"$numberInt": "1"}]]));
        let back = to_plain(c);
        assert_eq!(back["n"], plain["n"]);
        assert_eq!(back["m"], plain["m"]);
        assert_eq!(back["f"], plain["f"]);
        assert_eq!(back["nested"], plain["nested"]);
    }

    #[test]
    fn relaxed_json_is_unchanged() {
        let v = json!({"username": "ilovemongodb", "n": 3, "nested": {"a": [1, "b", null, true]}});
        assert_eq!(to_plain(v.clone()), v);
    }

    #[test]
    fn dates_and_specials() {
        assert_eq!(
            to_plain(json!({"$date": {"$numberLong": "1700000000000"}})),
            json!(1700000000000i64)
        );
        assert_eq!(
            to_plain(json!({"$date": "2024-01-01T00:00:00Z"})),
            json!("2024-01-01T00:00:00Z")
        );
        assert_eq!(to_plain(json!({"$numberDouble": "NaN"})), json!("NaN"));
        assert_eq!(to_plain(json!({"$numberDecimal": "1.10"})), json!("1.10"));
        assert_eq!(
            to_plain(json!({"$binary": {"base64": "AAE=", "subType": "00"}})),
            json!("AAE=")
        );
    }

    #[test]
    fn malformed_wrappers_are_kept() {
        let v = json!({"$numberInt": "forty"});
        assert_eq!(to_plain(v.clone()), v);
        let v = json!({"$oid": "nothex"});
        assert_eq!(to_plain(v.clone()), v);
        let v = json!({"$numberInt": "1", "other": 2});
        assert_eq!(to_plain(v), json!({"$numberInt": "1", "other": 2}));
    }
}
