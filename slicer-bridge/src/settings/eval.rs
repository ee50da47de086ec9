//! Evaluator for parsed Cura formulas, with Python semantics for the operators and builtins used.

use std::cmp::Ordering;

use thiserror::Error;

use super::expr::{BinOp, CmpOp, Expr};
use super::value::Value;

/// A formula that parsed but could not be evaluated.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// An operator got operands of types it does not support.
    #[error("unsupported operand types for {op}: {left} and {right}")]
    Type {
        /// The operator.
        op: String,
        /// Type of the left operand.
        left: &'static str,
        /// Type of the right operand.
        right: &'static str,
    },
    /// Division or modulo by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A math function got an argument outside its domain.
    #[error("math domain error in {0}")]
    Domain(String),
    /// An integer operation overflowed.
    #[error("integer overflow")]
    Overflow,
    /// A function name no Cura formula uses.
    #[error("unknown function `{0}`")]
    UnknownFunction(String),
    /// A function got a bad argument.
    #[error("bad argument to {function}: {message}")]
    Argument {
        /// The function.
        function: String,
        /// What was wrong.
        message: String,
    },
    /// Subscript out of range.
    #[error("index {index} out of range for a list of {len}")]
    Index {
        /// The index used.
        index: i64,
        /// Length of the list.
        len: usize,
    },
    /// Settings depend on each other in a loop.
    #[error("setting dependency cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// A referenced setting failed to evaluate.
    #[error("while evaluating `{key}`: {source}")]
    InSetting {
        /// The setting whose formula failed.
        key: String,
        /// Why.
        source: Box<EvalError>,
    },
}

/// Where names and Cura's helper functions come from during evaluation.
pub trait Scope {
    /// The value of a setting named in a formula (`None` when there is no such setting, as in Cura).
    fn setting(&mut self, name: &str) -> Result<Value, EvalError>;
    /// Call one of Cura's helper functions (`extruderValue`, `resolveOrValue`, ...).
    /// Returns `None` when `name` is not such a function.
    fn cura_function(&mut self, name: &str, args: &[Value]) -> Option<Result<Value, EvalError>>;
}

/// Evaluate an expression.
///
/// ```
/// use easyprint_slicer::settings::eval::{evaluate, Scope, EvalError};
/// use easyprint_slicer::settings::{expr::parse, Value};
/// struct Fixed;
/// impl Scope for Fixed {
///     fn setting(&mut self, _: &str) -> Result<Value, EvalError> { Ok(Value::Float(0.4)) }
///     fn cura_function(&mut self, _: &str, _: &[Value]) -> Option<Result<Value, EvalError>> { None }
/// }
/// let v = evaluate(&parse("math.ceil(line_width * 100 / 30)").unwrap(), &mut Fixed).unwrap();
/// assert_eq!(v, Value::Int(2));
/// ```
pub fn evaluate(expr: &Expr, scope: &mut dyn Scope) -> Result<Value, EvalError> {
    Evaluator {
        scope,
        locals: Vec::new(),
    }
    .eval(expr)
}

struct Evaluator<'a> {
    scope: &'a mut dyn Scope,
    locals: Vec<(String, Value)>,
}

fn type_err(op: &str, l: &Value, r: &Value) -> EvalError {
    EvalError::Type {
        op: op.to_owned(),
        left: l.type_name(),
        right: r.type_name(),
    }
}

fn arg_err(function: &str, message: impl Into<String>) -> EvalError {
    EvalError::Argument {
        function: function.to_owned(),
        message: message.into(),
    }
}

const BUILTINS: &[&str] = &[
    "min", "max", "round", "int", "float", "str", "bool", "len", "sum", "any", "all", "map", "abs",
    "list", "tuple", "sorted",
];

impl Evaluator<'_> {
    fn eval(&mut self, e: &Expr) -> Result<Value, EvalError> {
        Ok(match e {
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::Str(s.clone()),
            Expr::Bool(b) => Value::Bool(*b),
            Expr::None => Value::None,
            Expr::Name(n) => self.name(n)?,
            Expr::List(items) | Expr::Tuple(items) => match items.as_slice() {
                [c @ Expr::Comprehension { .. }] => self.eval(c)?,
                _ => Value::List(
                    items
                        .iter()
                        .map(|i| self.eval(i))
                        .collect::<Result<_, _>>()?,
                ),
            },
            Expr::Neg(x) => match self.eval(x)? {
                Value::Float(f) => Value::Float(-f),
                v => match v.as_i64() {
                    Some(i) => Value::Int(i.checked_neg().ok_or(EvalError::Overflow)?),
                    None => return Err(type_err("unary -", &v, &v)),
                },
            },
            Expr::Pos(x) => {
                let v = self.eval(x)?;
                match v {
                    Value::Bool(b) => Value::Int(i64::from(b)),
                    Value::Int(_) | Value::Float(_) => v,
                    _ => return Err(type_err("unary +", &v, &v)),
                }
            }
            Expr::Not(x) => Value::Bool(!self.eval(x)?.truthy()),
            Expr::And(a, b) => {
                let l = self.eval(a)?;
                if l.truthy() {
                    self.eval(b)?
                } else {
                    l
                }
            }
            Expr::Or(a, b) => {
                let l = self.eval(a)?;
                if l.truthy() {
                    l
                } else {
                    self.eval(b)?
                }
            }
            Expr::IfElse {
                cond,
                then,
                otherwise,
            } => {
                if self.eval(cond)?.truthy() {
                    self.eval(then)?
                } else {
                    self.eval(otherwise)?
                }
            }
            Expr::Binary(op, a, b) => {
                let l = self.eval(a)?;
                let r = self.eval(b)?;
                binary(*op, &l, &r)?
            }
            Expr::Compare(first, rest) => {
                let mut left = self.eval(first)?;
                for (op, rhs) in rest {
                    let right = self.eval(rhs)?;
                    if !compare(*op, &left, &right)? {
                        return Ok(Value::Bool(false));
                    }
                    left = right;
                }
                Value::Bool(true)
            }
            Expr::Index(obj, idx) => {
                let o = self.eval(obj)?;
                let i = self.eval(idx)?;
                index(&o, &i)?
            }
            Expr::Attr(obj, name) => match obj.as_ref() {
                Expr::Name(m) if m == "math" && !self.is_local("math") => match name.as_str() {
                    "pi" => Value::Float(std::f64::consts::PI),
                    "e" => Value::Float(std::f64::consts::E),
                    "inf" => Value::Float(f64::INFINITY),
                    _ => Value::Builtin(format!("math.{name}")),
                },
                _ => {
                    return Err(arg_err(
                        name,
                        "attribute access is only supported on `math` and in method calls",
                    ))
                }
            },
            Expr::Call(f, args) => self.call(f, args)?,
            Expr::Comprehension {
                element,
                var,
                iter,
                conditions,
            } => {
                let items = iterate(&self.eval(iter)?, "for")?;
                let mut out = Vec::new();
                for item in items {
                    self.locals.push((var.clone(), item));
                    let mut keep = true;
                    for c in conditions {
                        if !self.eval(c)?.truthy() {
                            keep = false;
                            break;
                        }
                    }
                    let r = if keep { Some(self.eval(element)) } else { None };
                    self.locals.pop();
                    if let Some(r) = r {
                        out.push(r?);
                    }
                }
                Value::List(out)
            }
        })
    }

    fn is_local(&self, name: &str) -> bool {
        self.locals.iter().any(|(n, _)| n == name)
    }

    fn name(&mut self, n: &str) -> Result<Value, EvalError> {
        if let Some((_, v)) = self.locals.iter().rev().find(|(k, _)| k == n) {
            return Ok(v.clone());
        }
        if BUILTINS.contains(&n) {
            return Ok(Value::Builtin(n.to_owned()));
        }
        self.scope.setting(n)
    }

    fn call(&mut self, f: &Expr, args: &[Expr]) -> Result<Value, EvalError> {
        // Method call on a value: "abc".lower(), s.startswith("x").
        if let Expr::Attr(obj, method) = f {
            if !matches!(obj.as_ref(), Expr::Name(m) if m == "math" && !self.is_local("math")) {
                let target = self.eval(obj)?;
                let argv = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<Vec<_>, _>>()?;
                return method_call(&target, method, &argv);
            }
        }
        let argv = args
            .iter()
            .map(|a| self.eval(a))
            .collect::<Result<Vec<_>, _>>()?;
        let name = match f {
            Expr::Name(n) if !self.is_local(n) && !BUILTINS.contains(&n.as_str()) => {
                if let Some(r) = self.scope.cura_function(n, &argv) {
                    return r;
                }
                return Err(EvalError::UnknownFunction(n.clone()));
            }
            other => match self.eval(other)? {
                Value::Builtin(n) => n,
                v => {
                    return Err(arg_err(
                        "call",
                        format!("{} is not callable", v.type_name()),
                    ))
                }
            },
        };
        call_builtin(&name, &argv)
    }
}

fn num(v: &Value, function: &str) -> Result<f64, EvalError> {
    v.as_f64().ok_or_else(|| {
        arg_err(
            function,
            format!("expected a number, got {}", v.type_name()),
        )
    })
}

fn iterate(v: &Value, function: &str) -> Result<Vec<Value>, EvalError> {
    match v {
        Value::List(items) => Ok(items.clone()),
        Value::Str(s) => Ok(s.chars().map(|c| Value::Str(c.to_string())).collect()),
        other => Err(arg_err(
            function,
            format!("{} is not iterable", other.type_name()),
        )),
    }
}

/// Python's `round(x, n)`: correctly rounded half-to-even on the exact binary value,
/// which is what Rust's precision formatting does too.
fn round_to(x: f64, digits: i64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if (0..=17).contains(&digits) {
        format!("{x:.*}", digits as usize).parse().unwrap_or(x)
    } else if digits > 17 {
        x
    } else {
        let scale = 10f64.powi(i32::try_from(-digits).unwrap_or(308));
        (x / scale).round_ties_even() * scale
    }
}

fn float_to_int(f: f64, function: &str) -> Result<Value, EvalError> {
    if !f.is_finite() {
        return Err(arg_err(function, format!("cannot convert {f} to int")));
    }
    if f.abs() >= 9.2e18 {
        return Err(EvalError::Overflow);
    }
    Ok(Value::Int(f as i64))
}

fn extremum(name: &str, args: &[Value], want: Ordering) -> Result<Value, EvalError> {
    let items = match args {
        [single] => iterate(single, name)?,
        many => many.to_vec(),
    };
    let mut best: Option<Value> = None;
    for item in items {
        best = Some(match best {
            None => item,
            Some(b) => {
                if order(&item, &b, name)? == want {
                    item
                } else {
                    b
                }
            }
        });
    }
    best.ok_or_else(|| arg_err(name, "empty sequence"))
}

fn call_builtin(name: &str, a: &[Value]) -> Result<Value, EvalError> {
    let one = |f: fn(f64) -> f64| -> Result<Value, EvalError> {
        match a {
            [x] => Ok(Value::Float(f(num(x, name)?))),
            _ => Err(arg_err(name, "expected one argument")),
        }
    };
    let checked = |v: f64| {
        if v.is_nan() {
            Err(EvalError::Domain(name.to_owned()))
        } else {
            Ok(Value::Float(v))
        }
    };
    match name {
        "min" => extremum(name, a, Ordering::Less),
        "max" => extremum(name, a, Ordering::Greater),
        "abs" => match a {
            [Value::Float(f)] => Ok(Value::Float(f.abs())),
            [x] => match x.as_i64() {
                Some(i) => Ok(Value::Int(i.checked_abs().ok_or(EvalError::Overflow)?)),
                None => Err(arg_err(
                    name,
                    format!("expected a number, got {}", x.type_name()),
                )),
            },
            _ => Err(arg_err(name, "expected one argument")),
        },
        "round" => match a {
            [x] => float_to_int(num(x, name)?.round_ties_even(), name),
            [x, n] => {
                let digits = n
                    .as_i64()
                    .ok_or_else(|| arg_err(name, "ndigits must be an int"))?;
                match x {
                    Value::Int(_) | Value::Bool(_) => Ok(x.clone()),
                    _ => Ok(Value::Float(round_to(num(x, name)?, digits))),
                }
            }
            _ => Err(arg_err(name, "expected one or two arguments")),
        },
        "int" => match a {
            [Value::Str(s)] => s
                .trim()
                .parse()
                .map(Value::Int)
                .map_err(|_| arg_err(name, format!("invalid literal {s:?}"))),
            [x] => match x.as_i64() {
                Some(i) => Ok(Value::Int(i)),
                None => float_to_int(num(x, name)?.trunc(), name),
            },
            _ => Err(arg_err(name, "expected one argument")),
        },
        "float" => match a {
            [Value::Str(s)] => s
                .trim()
                .parse()
                .map(Value::Float)
                .map_err(|_| arg_err(name, format!("invalid literal {s:?}"))),
            [x] => Ok(Value::Float(num(x, name)?)),
            _ => Err(arg_err(name, "expected one argument")),
        },
        "str" => match a {
            [x] => Ok(Value::Str(x.to_string())),
            _ => Err(arg_err(name, "expected one argument")),
        },
        "bool" => match a {
            [x] => Ok(Value::Bool(x.truthy())),
            _ => Err(arg_err(name, "expected one argument")),
        },
        "len" => match a {
            [Value::List(v)] => Ok(Value::Int(v.len() as i64)),
            [Value::Str(s)] => Ok(Value::Int(s.chars().count() as i64)),
            _ => Err(arg_err(name, "expected one list or string")),
        },
        "sum" => match a {
            [x] | [x, _] => {
                let mut acc = a.get(1).cloned().unwrap_or(Value::Int(0));
                for item in iterate(x, name)? {
                    acc = binary(BinOp::Add, &acc, &item)?;
                }
                Ok(acc)
            }
            _ => Err(arg_err(name, "expected an iterable")),
        },
        "any" | "all" => match a {
            [x] => {
                let items = iterate(x, name)?;
                Ok(Value::Bool(if name == "any" {
                    items.iter().any(Value::truthy)
                } else {
                    items.iter().all(Value::truthy)
                }))
            }
            _ => Err(arg_err(name, "expected one iterable")),
        },
        "list" | "tuple" => match a {
            [x] => Ok(Value::List(iterate(x, name)?)),
            [] => Ok(Value::List(Vec::new())),
            _ => Err(arg_err(name, "expected one iterable")),
        },
        "sorted" => match a {
            [x] => {
                let mut items = iterate(x, name)?;
                let mut failure = None;
                items.sort_by(|l, r| {
                    order(l, r, name).unwrap_or_else(|e| {
                        failure = Some(e);
                        Ordering::Equal
                    })
                });
                failure.map_or(Ok(Value::List(items)), Err)
            }
            _ => Err(arg_err(name, "expected one iterable")),
        },
        "map" => match a {
            [Value::Builtin(f), xs] => Ok(Value::List(
                iterate(xs, name)?
                    .into_iter()
                    .map(|x| call_builtin(f, &[x]))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Err(arg_err(name, "expected a builtin function and an iterable")),
        },
        "math.ceil" | "math.floor" | "math.trunc" => match a {
            [x] => {
                let v = num(x, name)?;
                float_to_int(
                    match name {
                        "math.ceil" => v.ceil(),
                        "math.floor" => v.floor(),
                        _ => v.trunc(),
                    },
                    name,
                )
            }
            _ => Err(arg_err(name, "expected one argument")),
        },
        "math.sqrt" => match a {
            [x] => checked(num(x, name)?.sqrt()),
            _ => Err(arg_err(name, "expected one argument")),
        },
        "math.log" => match a {
            [x] | [x, _] => {
                let v = num(x, name)?;
                if v <= 0.0 {
                    return Err(EvalError::Domain(name.to_owned()));
                }
                match a.get(1) {
                    Some(base) => checked(v.ln() / num(base, name)?.ln()),
                    None => Ok(Value::Float(v.ln())),
                }
            }
            _ => Err(arg_err(name, "expected one or two arguments")),
        },
        "math.log10" | "math.log2" => match a {
            [x] => {
                let v = num(x, name)?;
                if v <= 0.0 {
                    return Err(EvalError::Domain(name.to_owned()));
                }
                Ok(Value::Float(if name == "math.log10" {
                    v.log10()
                } else {
                    v.log2()
                }))
            }
            _ => Err(arg_err(name, "expected one argument")),
        },
        "math.pow" => match a {
            [x, y] => checked(num(x, name)?.powf(num(y, name)?)),
            _ => Err(arg_err(name, "expected two arguments")),
        },
        "math.atan2" => match a {
            [y, x] => Ok(Value::Float(num(y, name)?.atan2(num(x, name)?))),
            _ => Err(arg_err(name, "expected two arguments")),
        },
        "math.exp" => one(f64::exp),
        "math.fabs" => one(f64::abs),
        "math.sin" => one(f64::sin),
        "math.cos" => one(f64::cos),
        "math.tan" => one(f64::tan),
        "math.atan" => one(f64::atan),
        "math.asin" | "math.acos" => match a {
            [x] => {
                let v = num(x, name)?;
                checked(if name == "math.asin" {
                    v.asin()
                } else {
                    v.acos()
                })
            }
            _ => Err(arg_err(name, "expected one argument")),
        },
        "math.radians" => one(f64::to_radians),
        "math.degrees" => one(f64::to_degrees),
        _ => Err(EvalError::UnknownFunction(name.to_owned())),
    }
}

fn method_call(target: &Value, method: &str, a: &[Value]) -> Result<Value, EvalError> {
    let Value::Str(s) = target else {
        return Err(arg_err(
            method,
            format!("method call on {} is not supported", target.type_name()),
        ));
    };
    let str_arg = |i: usize| match a.get(i) {
        Some(Value::Str(x)) => Ok(x.as_str()),
        _ => Err(arg_err(
            method,
            format!("argument {} must be a string", i + 1),
        )),
    };
    Ok(match method {
        "lower" => Value::Str(s.to_lowercase()),
        "upper" => Value::Str(s.to_uppercase()),
        "strip" => Value::Str(s.trim().to_owned()),
        "startswith" => Value::Bool(s.starts_with(str_arg(0)?)),
        "endswith" => Value::Bool(s.ends_with(str_arg(0)?)),
        "replace" => Value::Str(s.replace(str_arg(0)?, str_arg(1)?)),
        "split" => Value::List(match a.first() {
            None => s
                .split_whitespace()
                .map(|p| Value::Str(p.to_owned()))
                .collect(),
            Some(_) => s
                .split(str_arg(0)?)
                .map(|p| Value::Str(p.to_owned()))
                .collect(),
        }),
        "join" => match a {
            [Value::List(items)] => Value::Str(
                items
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(s),
            ),
            _ => return Err(arg_err(method, "expected a list")),
        },
        _ => return Err(EvalError::UnknownFunction(format!("str.{method}"))),
    })
}

fn floor_div_int(a: i64, b: i64) -> Result<i64, EvalError> {
    if b == 0 {
        return Err(EvalError::DivisionByZero);
    }
    let q = a.checked_div(b).ok_or(EvalError::Overflow)?;
    Ok(if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    })
}

fn binary(op: BinOp, l: &Value, r: &Value) -> Result<Value, EvalError> {
    let sym = match op {
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::FloorDiv => "//",
        BinOp::Mod => "%",
        BinOp::Pow => "**",
    };
    match (l, r, op) {
        (Value::Str(a), Value::Str(b), BinOp::Add) => return Ok(Value::Str(format!("{a}{b}"))),
        (Value::List(a), Value::List(b), BinOp::Add) => {
            return Ok(Value::List(a.iter().chain(b).cloned().collect()))
        }
        (Value::Str(s), n, BinOp::Mul) | (n, Value::Str(s), BinOp::Mul) if n.as_i64().is_some() => {
            let count = usize::try_from(n.as_i64().unwrap_or(0).max(0)).unwrap_or(0);
            if s.len().saturating_mul(count) > 1 << 20 {
                return Err(EvalError::Overflow);
            }
            return Ok(Value::Str(s.repeat(count)));
        }
        _ => {}
    }
    if let (Some(a), Some(b)) = (l.as_i64(), r.as_i64()) {
        // Python ints are unbounded; past i64 the nearest float is close enough for settings.
        let int = |v: Option<i64>| match v {
            Some(i) => Ok(Value::Int(i)),
            None => binary(op, &Value::Float(a as f64), &Value::Float(b as f64)),
        };
        return match op {
            BinOp::Add => int(a.checked_add(b)),
            BinOp::Sub => int(a.checked_sub(b)),
            BinOp::Mul => int(a.checked_mul(b)),
            BinOp::Div => {
                if b == 0 {
                    Err(EvalError::DivisionByZero)
                } else {
                    Ok(Value::Float(a as f64 / b as f64))
                }
            }
            BinOp::FloorDiv => floor_div_int(a, b).map(Value::Int),
            BinOp::Mod => {
                let q = floor_div_int(a, b)?;
                int(q.checked_mul(b).and_then(|m| a.checked_sub(m)))
            }
            BinOp::Pow => {
                if b >= 0 {
                    int(u32::try_from(b).ok().and_then(|e| a.checked_pow(e)))
                } else {
                    Ok(Value::Float((a as f64).powf(b as f64)))
                }
            }
        };
    }
    let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
        return Err(type_err(sym, l, r));
    };
    let v = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                return Err(EvalError::DivisionByZero);
            }
            a / b
        }
        BinOp::FloorDiv => {
            if b == 0.0 {
                return Err(EvalError::DivisionByZero);
            }
            (a / b).floor()
        }
        BinOp::Mod => {
            if b == 0.0 {
                return Err(EvalError::DivisionByZero);
            }
            // Python: result has the sign of the divisor.
            let m = a % b;
            if m != 0.0 && (m < 0.0) != (b < 0.0) {
                m + b
            } else {
                m
            }
        }
        BinOp::Pow => {
            let p = a.powf(b);
            if p.is_nan() {
                return Err(EvalError::Domain("**".to_owned()));
            }
            p
        }
    };
    Ok(Value::Float(v))
}

fn order(l: &Value, r: &Value, op: &str) -> Result<Ordering, EvalError> {
    if let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) {
        return a.partial_cmp(&b).ok_or_else(|| type_err(op, l, r));
    }
    match (l, r) {
        (Value::Str(a), Value::Str(b)) => Ok(a.cmp(b)),
        (Value::List(a), Value::List(b)) => {
            for (x, y) in a.iter().zip(b) {
                let o = order(x, y, op)?;
                if o != Ordering::Equal {
                    return Ok(o);
                }
            }
            Ok(a.len().cmp(&b.len()))
        }
        _ => Err(type_err(op, l, r)),
    }
}

/// Python `==`: numbers compare across int/float/bool, other types only with their own kind.
pub(crate) fn py_eq(l: &Value, r: &Value) -> bool {
    if let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) {
        return a == b;
    }
    match (l, r) {
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| py_eq(x, y))
        }
        _ => l == r,
    }
}

fn compare(op: CmpOp, l: &Value, r: &Value) -> Result<bool, EvalError> {
    Ok(match op {
        CmpOp::Eq | CmpOp::Is => py_eq(l, r),
        CmpOp::Ne | CmpOp::IsNot => !py_eq(l, r),
        CmpOp::Lt => order(l, r, "<")? == Ordering::Less,
        CmpOp::Le => order(l, r, "<=")? != Ordering::Greater,
        CmpOp::Gt => order(l, r, ">")? == Ordering::Greater,
        CmpOp::Ge => order(l, r, ">=")? != Ordering::Less,
        CmpOp::In | CmpOp::NotIn => {
            let found = match (r, l) {
                (Value::List(items), _) => items.iter().any(|i| py_eq(i, l)),
                (Value::Str(hay), Value::Str(needle)) => hay.contains(needle.as_str()),
                _ => return Err(type_err("in", l, r)),
            };
            found == (op == CmpOp::In)
        }
    })
}

fn index(o: &Value, i: &Value) -> Result<Value, EvalError> {
    let Some(idx) = i.as_i64() else {
        return Err(type_err("[]", o, i));
    };
    let items: Vec<Value> = match o {
        Value::List(v) => v.clone(),
        Value::Str(s) => s.chars().map(|c| Value::Str(c.to_string())).collect(),
        _ => return Err(type_err("[]", o, i)),
    };
    let len = items.len();
    let pos = if idx < 0 { idx + len as i64 } else { idx };
    usize::try_from(pos)
        .ok()
        .and_then(|p| items.get(p).cloned())
        .ok_or(EvalError::Index { index: idx, len })
}

#[cfg(test)]
mod tests {
    use super::super::expr::parse;
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, Value>);
    impl Scope for Map {
        fn setting(&mut self, name: &str) -> Result<Value, EvalError> {
            Ok(self.0.get(name).cloned().unwrap_or(Value::None))
        }
        fn cura_function(
            &mut self,
            name: &str,
            args: &[Value],
        ) -> Option<Result<Value, EvalError>> {
            (name == "extruderValues").then(|| {
                Ok(Value::List(vec![
                    args[0].clone(),
                    Value::Str("surface".into()),
                ]))
            })
        }
    }

    fn ev(src: &str) -> Result<Value, EvalError> {
        let mut scope = Map(HashMap::from([
            ("layer_height", Value::Float(0.2)),
            ("infill_pattern", Value::Str("grid".into())),
            ("wall_count", Value::Int(3)),
        ]));
        evaluate(&parse(src).unwrap(), &mut scope)
    }

    #[test]
    fn python_arithmetic() {
        assert_eq!(ev("7 // 2").unwrap(), Value::Int(3));
        assert_eq!(ev("-7 // 2").unwrap(), Value::Int(-4));
        assert_eq!(ev("-7 % 3").unwrap(), Value::Int(2));
        assert_eq!(ev("7 / 2").unwrap(), Value::Float(3.5));
        assert_eq!(ev("2 ** 10").unwrap(), Value::Int(1024));
        assert_eq!(ev("True + 1").unwrap(), Value::Int(2));
        assert_eq!(ev("0.15 % layer_height").unwrap(), Value::Float(0.15));
        assert_eq!(ev("1 / 0"), Err(EvalError::DivisionByZero));
        assert_eq!(ev("'a' + 'b'").unwrap(), Value::Str("ab".into()));
        assert!(matches!(ev("'a' + 1"), Err(EvalError::Type { .. })));
    }

    #[test]
    fn python_rounding() {
        assert_eq!(ev("round(2.5)").unwrap(), Value::Int(2));
        assert_eq!(ev("round(3.5)").unwrap(), Value::Int(4));
        assert_eq!(ev("round(0.1 + 0.2, 4)").unwrap(), Value::Float(0.3));
        assert_eq!(ev("math.ceil(round(0.8 / 0.2, 4))").unwrap(), Value::Int(4));
        assert_eq!(ev("int(-2.7)").unwrap(), Value::Int(-2));
    }

    #[test]
    fn logic_and_builtins() {
        assert_eq!(
            ev("infill_pattern not in ('concentric', 'cross') and wall_count > 1").unwrap(),
            Value::Bool(true)
        );
        assert_eq!(ev("1 < wall_count <= 3").unwrap(), Value::Bool(true));
        assert_eq!(ev("0 or 'x'").unwrap(), Value::Str("x".into()));
        assert_eq!(ev("max([1, 5, 2])").unwrap(), Value::Int(5));
        assert_eq!(ev("min(3, 1.5)").unwrap(), Value::Float(1.5));
        assert_eq!(ev("max(map(abs, [-3, 2]))").unwrap(), Value::Int(3));
        assert_eq!(ev("sum([1, 2.5])").unwrap(), Value::Float(3.5));
        assert_eq!(ev("len([1, 2])").unwrap(), Value::Int(2));
        assert_eq!(ev("[1, 2][-1]").unwrap(), Value::Int(2));
        assert!(matches!(ev("[1][3]"), Err(EvalError::Index { .. })));
        assert_eq!(ev("'Marlin'.lower()").unwrap(), Value::Str("marlin".into()));
        assert_eq!(
            ev("all(p != 'surface' for p in extruderValues('normal'))").unwrap(),
            Value::Bool(false)
        );
        assert_eq!(
            ev("[x * 2 for x in [1, 2, 3] if x > 1]").unwrap(),
            Value::List(vec![Value::Int(4), Value::Int(6)])
        );
        assert_eq!(ev("unknown_setting").unwrap(), Value::None);
        assert!(matches!(ev("nope(1)"), Err(EvalError::UnknownFunction(_))));
        assert!(matches!(ev("math.log(0)"), Err(EvalError::Domain(_))));
        assert_eq!(
            ev("math.floor(math.degrees(math.atan(0.4 / 2.0 / layer_height)))").unwrap(),
            Value::Int(45)
        );
    }
}
