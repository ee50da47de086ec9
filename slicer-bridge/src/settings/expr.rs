//! Tokenizer and Pratt parser for the Python-expression subset used by Cura setting formulas.
//!
//! Cura stores derived settings as Python expressions (`"value": "line_width * 2"`). The shipped
//! definitions use arithmetic, comparisons (chained), `and`/`or`/`not`, `a if c else b`, list and
//! tuple literals, subscripts, calls, attribute access (`math.ceil`, `"x".lower()`) and generator
//! expressions inside calls (`all(p != 'x' for p in extruderValues('k'))`). Nothing else is parsed.

use thiserror::Error;

/// A parse failure, with the byte offset in the formula where it happened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} at offset {offset} in formula `{formula}`")]
pub struct ParseError {
    /// What went wrong.
    pub message: String,
    /// Byte offset in the formula.
    pub offset: usize,
    /// The formula text.
    pub formula: String,
}

/// Binary operators (arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (true division)
    Div,
    /// `//`
    FloorDiv,
    /// `%`
    Mod,
    /// `**`
    Pow,
}

/// Comparison operators (may be chained: `a < b < c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `is`
    Is,
    /// `is not`
    IsNot,
}

/// Expression syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Integer literal.
    Int(i64),
    /// Float literal.
    Float(f64),
    /// String literal (adjacent literals already concatenated).
    Str(String),
    /// `True` / `False`.
    Bool(bool),
    /// `None`.
    None,
    /// A bare name: a setting key, a builtin or a module (`math`).
    Name(String),
    /// `[a, b]`
    List(Vec<Expr>),
    /// `(a, b)`
    Tuple(Vec<Expr>),
    /// `-x` / `+x`
    Neg(Box<Expr>),
    /// `+x`
    Pos(Box<Expr>),
    /// `not x`
    Not(Box<Expr>),
    /// Arithmetic.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// Chained comparison: first operand, then (op, operand) pairs.
    Compare(Box<Expr>, Vec<(CmpOp, Expr)>),
    /// `a and b`
    And(Box<Expr>, Box<Expr>),
    /// `a or b`
    Or(Box<Expr>, Box<Expr>),
    /// `then if cond else otherwise`
    IfElse {
        /// Condition.
        cond: Box<Expr>,
        /// Value when the condition is truthy.
        then: Box<Expr>,
        /// Value otherwise.
        otherwise: Box<Expr>,
    },
    /// `f(args)`
    Call(Box<Expr>, Vec<Expr>),
    /// `obj.name`
    Attr(Box<Expr>, String),
    /// `obj[index]`
    Index(Box<Expr>, Box<Expr>),
    /// `element for var in iter if cond` (generator or list comprehension: both yield a list).
    Comprehension {
        /// The produced element.
        element: Box<Expr>,
        /// The loop variable.
        var: String,
        /// The iterated value.
        iter: Box<Expr>,
        /// Optional filters.
        conditions: Vec<Expr>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Float(f64),
    Str(String),
    Name(String),
    Op(&'static str),
    End,
}

const OPERATORS: &[&str] = &[
    "**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "<", ">", "(", ")", "[", "]", ",",
    ".", ":",
];

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let err = |message: &str, offset: usize| ParseError {
        message: message.to_owned(),
        offset,
        formula: src.to_owned(),
    };
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let mut is_float = false;
            while i < bytes.len() {
                let d = bytes[i];
                if d.is_ascii_digit() || d == b'_' {
                    i += 1;
                } else if d == b'.' && !is_float {
                    is_float = true;
                    i += 1;
                } else if (d == b'e' || d == b'E')
                    && bytes
                        .get(i + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == b'-' || *n == b'+')
                {
                    is_float = true;
                    i += 2;
                } else {
                    break;
                }
            }
            let text: String = src[start..i].chars().filter(|c| *c != '_').collect();
            let tok = if is_float {
                Tok::Float(text.parse().map_err(|_| err("bad number", start))?)
            } else {
                Tok::Int(text.parse().map_err(|_| err("integer too large", start))?)
            };
            out.push((tok, start));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Name(src[start..i].to_owned()), start));
        } else if c == b'"' || c == b'\'' {
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&d) = bytes.get(i) else {
                    return Err(err("unterminated string", start));
                };
                if d == c {
                    i += 1;
                    break;
                }
                if d == b'\\' {
                    let Some(&e) = bytes.get(i + 1) else {
                        return Err(err("unterminated string", start));
                    };
                    match e {
                        b'n' => s.push('\n'),
                        b't' => s.push('\t'),
                        b'r' => s.push('\r'),
                        b'0' => s.push('\0'),
                        b'\\' | b'\'' | b'"' => s.push(e as char),
                        // Unknown escapes stay as written, as in Python.
                        _ => {
                            s.push('\\');
                            s.push(e as char);
                        }
                    }
                    i += 2;
                    continue;
                }
                // Copy one whole UTF-8 character.
                let ch = src[i..].chars().next().unwrap_or('\u{fffd}');
                s.push(ch);
                i += ch.len_utf8();
            }
            // Adjacent string literals concatenate, as in Python.
            if let Some((Tok::Str(prev), _)) = out.last_mut() {
                prev.push_str(&s);
            } else {
                out.push((Tok::Str(s), start));
            }
        } else if let Some(op) = OPERATORS.iter().find(|op| src[i..].starts_with(**op)) {
            i += op.len();
            out.push((Tok::Op(op), start));
        } else {
            return Err(err(&format!("unexpected character {:?}", c as char), start));
        }
    }
    out.push((Tok::End, src.len()));
    Ok(out)
}

/// Parse a formula into an expression tree.
///
/// ```
/// use easyprint_slicer::settings::expr::{parse, Expr};
/// let e = parse("max(1, layer_height * 2)").unwrap();
/// assert!(matches!(e, Expr::Call(..)));
/// ```
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
        src,
        depth: 0,
    };
    let e = p.expr()?;
    if p.peek() != &Tok::End {
        return Err(p.error("unexpected trailing input"));
    }
    Ok(e)
}

/// Deepest tree accepted (nesting plus operator chains, which build left-deep trees). Cura's
/// formulas stay far below; this bounds the recursion of parsing, evaluating and dropping
/// (and so the stack) on hostile input.
const MAX_DEPTH: usize = 100;

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    src: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.pos].0.clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, message: &str) -> ParseError {
        ParseError {
            message: message.to_owned(),
            offset: self.toks[self.pos].1,
            formula: self.src.to_owned(),
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == kw)
    }

    fn expect_op(&mut self, op: &str) -> Result<(), ParseError> {
        if self.is_op(op) {
            self.next();
            Ok(())
        } else {
            Err(self.error(&format!("expected `{op}`")))
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("formula nested too deeply"));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    /// Full expression: ternary (lowest precedence).
    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.nested(Self::ternary)
    }

    fn ternary(&mut self) -> Result<Expr, ParseError> {
        let then = self.or_expr()?;
        if self.is_kw("if") {
            self.next();
            let cond = self.or_expr()?;
            if !self.is_kw("else") {
                return Err(self.error("expected `else`"));
            }
            self.next();
            let otherwise = self.expr()?;
            return Ok(Expr::IfElse {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            });
        }
        Ok(then)
    }

    /// Count one more level of a left-deep operator chain; undone by [`Self::unchain`].
    fn chain(&mut self, links: &mut usize) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("formula nested too deeply"));
        }
        self.depth += 1;
        *links += 1;
        Ok(())
    }

    fn unchain<T>(&mut self, links: usize, r: Result<T, ParseError>) -> Result<T, ParseError> {
        self.depth -= links;
        r
    }

    fn or_expr(&mut self) -> Result<Expr, ParseError> {
        let mut links = 0;
        let r = (|| {
            let mut lhs = self.and_expr()?;
            while self.is_kw("or") {
                self.chain(&mut links)?;
                self.next();
                lhs = Expr::Or(Box::new(lhs), Box::new(self.and_expr()?));
            }
            Ok(lhs)
        })();
        self.unchain(links, r)
    }

    fn and_expr(&mut self) -> Result<Expr, ParseError> {
        let mut links = 0;
        let r = (|| {
            let mut lhs = self.not_expr()?;
            while self.is_kw("and") {
                self.chain(&mut links)?;
                self.next();
                lhs = Expr::And(Box::new(lhs), Box::new(self.not_expr()?));
            }
            Ok(lhs)
        })();
        self.unchain(links, r)
    }

    fn not_expr(&mut self) -> Result<Expr, ParseError> {
        if self.is_kw("not") {
            self.next();
            let inner = self.nested(Self::not_expr)?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn cmp_op(&mut self) -> Option<CmpOp> {
        let op = match self.peek() {
            Tok::Op("==") => CmpOp::Eq,
            Tok::Op("!=") => CmpOp::Ne,
            Tok::Op("<") => CmpOp::Lt,
            Tok::Op("<=") => CmpOp::Le,
            Tok::Op(">") => CmpOp::Gt,
            Tok::Op(">=") => CmpOp::Ge,
            Tok::Name(n) if n == "in" => CmpOp::In,
            Tok::Name(n) if n == "is" => {
                self.next();
                if self.is_kw("not") {
                    self.next();
                    return Some(CmpOp::IsNot);
                }
                return Some(CmpOp::Is);
            }
            Tok::Name(n) if n == "not" => {
                if matches!(&self.toks[self.pos + 1].0, Tok::Name(m) if m == "in") {
                    self.next();
                    self.next();
                    return Some(CmpOp::NotIn);
                }
                return None;
            }
            _ => return None,
        };
        self.next();
        Some(op)
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let first = self.arith(0)?;
        let mut rest = Vec::new();
        while let Some(op) = self.cmp_op() {
            rest.push((op, self.arith(0)?));
        }
        if rest.is_empty() {
            Ok(first)
        } else {
            Ok(Expr::Compare(Box::new(first), rest))
        }
    }

    /// Pratt loop for arithmetic: `+ -` (10), `* / // %` (20), unary (30), `**` (40, right-assoc).
    fn arith(&mut self, min_bp: u8) -> Result<Expr, ParseError> {
        let mut links = 0;
        let r = self.arith_chain(min_bp, &mut links);
        self.unchain(links, r)
    }

    fn arith_chain(&mut self, min_bp: u8, links: &mut usize) -> Result<Expr, ParseError> {
        let mut lhs = if self.is_op("-") || self.is_op("+") {
            let neg = self.is_op("-");
            self.next();
            // Unary minus binds looser than `**`: -2**2 == -4.
            let operand = self.nested(|p| p.arith(30))?;
            if neg {
                Expr::Neg(Box::new(operand))
            } else {
                Expr::Pos(Box::new(operand))
            }
        } else {
            self.postfix()?
        };
        loop {
            let (op, lbp, rbp) = match self.peek() {
                Tok::Op("+") => (BinOp::Add, 10, 11),
                Tok::Op("-") => (BinOp::Sub, 10, 11),
                Tok::Op("*") => (BinOp::Mul, 20, 21),
                Tok::Op("/") => (BinOp::Div, 20, 21),
                Tok::Op("//") => (BinOp::FloorDiv, 20, 21),
                Tok::Op("%") => (BinOp::Mod, 20, 21),
                // Right operand of ** may itself be unary: 2**-1.
                Tok::Op("**") => (BinOp::Pow, 40, 30),
                _ => break,
            };
            if lbp < min_bp {
                break;
            }
            self.chain(links)?;
            self.next();
            let rhs = self.nested(|p| p.arith(rbp))?;
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut links = 0;
        let r = self.postfix_chain(&mut links);
        self.unchain(links, r)
    }

    fn postfix_chain(&mut self, links: &mut usize) -> Result<Expr, ParseError> {
        let mut e = self.atom()?;
        loop {
            if self.is_op("(") || self.is_op("[") || self.is_op(".") {
                self.chain(links)?;
            }
            if self.is_op("(") {
                self.next();
                let args = self.call_args()?;
                e = Expr::Call(Box::new(e), args);
            } else if self.is_op("[") {
                self.next();
                let idx = self.expr()?;
                self.expect_op("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else if self.is_op(".") {
                self.next();
                match self.next() {
                    Tok::Name(n) => e = Expr::Attr(Box::new(e), n),
                    _ => return Err(self.error("expected attribute name after `.`")),
                }
            } else {
                return Ok(e);
            }
        }
    }

    fn call_args(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        if self.is_op(")") {
            self.next();
            return Ok(args);
        }
        let first = self.expr()?;
        if self.is_kw("for") {
            // A bare generator as the only argument: f(x for x in y).
            args.push(self.comprehension(first)?);
            self.expect_op(")")?;
            return Ok(args);
        }
        args.push(first);
        while self.is_op(",") {
            self.next();
            if self.is_op(")") {
                break;
            }
            args.push(self.expr()?);
        }
        self.expect_op(")")?;
        Ok(args)
    }

    fn comprehension(&mut self, element: Expr) -> Result<Expr, ParseError> {
        self.next(); // `for`
        let var = match self.next() {
            Tok::Name(n) => n,
            _ => return Err(self.error("expected loop variable after `for`")),
        };
        if !self.is_kw("in") {
            return Err(self.error("expected `in`"));
        }
        self.next();
        let iter = self.or_expr()?;
        let mut conditions = Vec::new();
        while self.is_kw("if") {
            self.next();
            conditions.push(self.or_expr()?);
        }
        Ok(Expr::Comprehension {
            element: Box::new(element),
            var,
            iter: Box::new(iter),
            conditions,
        })
    }

    /// Comma-separated items up to `close`; returns (items, saw_trailing_or_inner_comma).
    fn sequence(&mut self, close: &str) -> Result<(Vec<Expr>, bool), ParseError> {
        let mut items = Vec::new();
        let mut comma = false;
        while !self.is_op(close) {
            let item = self.expr()?;
            if items.is_empty() && self.is_kw("for") {
                let c = self.comprehension(item)?;
                self.expect_op(close)?;
                return Ok((vec![c], false));
            }
            items.push(item);
            if self.is_op(",") {
                comma = true;
                self.next();
            } else {
                break;
            }
        }
        self.expect_op(close)?;
        Ok((items, comma))
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Float(f) => Ok(Expr::Float(f)),
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Name(n) => match n.as_str() {
                "True" => Ok(Expr::Bool(true)),
                "False" => Ok(Expr::Bool(false)),
                "None" => Ok(Expr::None),
                "and" | "or" | "not" | "if" | "else" | "for" | "in" | "is" | "lambda" => {
                    self.pos -= 1;
                    Err(self.error(&format!("unexpected keyword `{n}`")))
                }
                _ => Ok(Expr::Name(n)),
            },
            Tok::Op("(") => {
                let (mut items, comma) = self.sequence(")")?;
                if items.len() == 1 && !comma {
                    Ok(items.remove(0))
                } else {
                    Ok(Expr::Tuple(items))
                }
            }
            Tok::Op("[") => {
                let (items, _) = self.sequence("]")?;
                Ok(Expr::List(items))
            }
            Tok::End => Err(self.error("unexpected end of formula")),
            _ => {
                self.pos -= 1;
                Err(self.error("unexpected token"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_unary() {
        assert_eq!(
            parse("-2**2").unwrap(),
            Expr::Neg(Box::new(Expr::Binary(
                BinOp::Pow,
                Box::new(Expr::Int(2)),
                Box::new(Expr::Int(2))
            )))
        );
        assert!(matches!(
            parse("1 + 2 * 3").unwrap(),
            Expr::Binary(BinOp::Add, _, _)
        ));
        assert!(matches!(
            parse("a if b else c if d else e").unwrap(),
            Expr::IfElse { .. }
        ));
    }

    #[test]
    fn generator_in_call_and_not_in() {
        let e = parse("all(p != 'surface' for p in extruderValues('m'))").unwrap();
        let Expr::Call(_, args) = e else { panic!() };
        assert!(matches!(args[0], Expr::Comprehension { .. }));
        assert!(matches!(
            parse("x not in ['a', 'b']").unwrap(),
            Expr::Compare(_, ref v) if v[0].0 == CmpOp::NotIn
        ));
    }

    #[test]
    fn errors_name_position() {
        let e = parse("1 +").unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(parse("a b").is_err());
        assert!(parse("'abc").is_err());
        assert!(parse("a $ b").unwrap_err().message.contains('$'));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse(&deep).unwrap_err().message.contains("nested"));
        assert!(parse(&"-".repeat(10_000)).is_err());
        assert!(parse(&"not ".repeat(10_000)).is_err());
        assert!(parse(&format!("1{}", " ** 2".repeat(10_000))).is_err());
        assert!(parse("(((1)))").is_ok());
        assert!(parse(&format!("1{}", " + 1".repeat(10_000))).is_err());
        assert!(parse(&format!("a{}", "[0]".repeat(10_000))).is_err());
        assert!(parse(&format!("a{}", " or b".repeat(10_000))).is_err());
        // The deepest accepted tree evaluates and drops on a 1 MiB thread stack (debug build).
        let nested = |n: usize| format!("{}1{}", "(-".repeat(n), ")".repeat(n));
        let mut deepest = 0;
        while parse(&nested(deepest + 1)).is_ok() {
            deepest += 1;
        }
        assert!(deepest >= 20, "{deepest}");
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || parse(&nested(deepest)).unwrap())
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn strings_concatenate_and_escape() {
        assert_eq!(parse(r#"'a\n' "b""#).unwrap(), Expr::Str("a\nb".into()));
    }
}
