//! Setting values with Python semantics (what Cura's formulas compute with).

use std::fmt;

/// A setting value as Cura's formulas see it (Python types).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// Python `int`.
    Int(i64),
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(String),
    /// Python `list` (also used for tuples: the formulas never mutate).
    List(Vec<Value>),
    /// A builtin function passed as a value (`map(abs, xs)`).
    Builtin(String),
}

impl Value {
    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(v) => !v.is_empty(),
            Value::Builtin(_) => true,
        }
    }

    /// The number as `f64` when the value is numeric (bools count, as in Python).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The integer when the value is an int or bool.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Python type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Builtin(_) => "builtin_function",
        }
    }

    /// Convert a JSON value from a definition file.
    pub fn from_json(v: &serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::None,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            // Definitions never use objects as values; keep the text so nothing is lost.
            serde_json::Value::Object(_) => Value::Str(v.to_string()),
        }
    }
}

/// Python float repr: shortest round-trip digits, always with a `.0` or exponent.
pub(crate) fn fmt_float(f: f64, out: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.is_nan() {
        return out.write_str("nan");
    }
    if f.is_infinite() {
        return out.write_str(if f > 0.0 { "inf" } else { "-inf" });
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Python switches to exponent notation outside this range: 1e-05, 1e+16.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        return write!(
            out,
            "{mant}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    let s = format!("{f}");
    if s.contains('.') {
        out.write_str(&s)
    } else {
        write!(out, "{s}.0")
    }
}

/// Formats as Python's `str()` does, which is what Cura sends to the engine and puts in G-code.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => fmt_float(*x, f),
            Value::Str(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    match item {
                        // Inside containers Python uses repr(): quoted strings.
                        Value::Str(s) => {
                            write!(f, "'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))?
                        }
                        other => write!(f, "{other}")?,
                    }
                }
                f.write_str("]")
            }
            Value::Builtin(name) => write!(f, "<built-in function {name}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_formatting() {
        assert_eq!(Value::Float(60.0).to_string(), "60.0");
        assert_eq!(Value::Float(0.1 + 0.2).to_string(), "0.30000000000000004");
        assert_eq!(Value::Float(1e-5).to_string(), "1e-05");
        assert_eq!(Value::Int(60).to_string(), "60");
        assert_eq!(Value::Bool(true).to_string(), "True");
        assert_eq!(
            Value::List(vec![Value::Int(0), Value::Int(90)]).to_string(),
            "[0, 90]"
        );
        assert_eq!(
            Value::List(vec![Value::Str("a".into())]).to_string(),
            "['a']"
        );
    }
}
