//! Cura formula parser + evaluator on arbitrary text: never panics, never hangs.
#![no_main]

use easyprint_slicer::settings::eval::{evaluate, EvalError, Scope};
use easyprint_slicer::settings::{expr::parse, Value};
use libfuzzer_sys::fuzz_target;

struct Fixed;

impl Scope for Fixed {
    fn setting(&mut self, name: &str) -> Result<Value, EvalError> {
        Ok(match name.len() % 4 {
            0 => Value::Float(0.4),
            1 => Value::Int(3),
            2 => Value::Str("grid".into()),
            _ => Value::List(vec![Value::Int(1), Value::Float(2.5)]),
        })
    }
    fn cura_function(&mut self, _: &str, args: &[Value]) -> Option<Result<Value, EvalError>> {
        Some(Ok(Value::List(args.to_vec())))
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(expr) = parse(text) {
            let _ = evaluate(&expr, &mut Fixed);
        }
    }
});
