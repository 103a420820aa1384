//! Plain JSON to canonical MongoDB Extended JSON, as the official clients send bodies.

use serde_json::{Map, Value, json};

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
/// use latchkey_session::ejson::to_canonical;
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
        let back = latchkey_protocol::ejson::to_plain(c);
        assert_eq!(back["n"], plain["n"]);
        assert_eq!(back["m"], plain["m"]);
        assert_eq!(back["f"], plain["f"]);
        assert_eq!(back["nested"], plain["nested"]);
    }
}
