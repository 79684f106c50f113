//! A small evaluator for the common forms of admission `matchConditions` (CEL):
//! `has(...)`, `in`, `==`, `!=`, `&&`, `||`, `!`, parentheses, string, bool and list
//! literals, field and index access on `object`, `oldObject` and `request`. Anything else
//! (functions, macros, arithmetic, `authorizer`, `params`) is reported as "cannot
//! evaluate", never guessed.
//!
//! Errors follow CEL: `false && error` is false and `true || error` is true; a missing map
//! key is an evaluation error (the API server then applies the webhook's failurePolicy).

use serde_json::Value;

/// Why an expression has no boolean answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CelError {
    /// A form this evaluator does not handle.
    Unsupported(String),
    /// CEL itself would fail at run time (e.g. a missing key).
    Runtime(String),
}

impl std::fmt::Display for CelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CelError::Unsupported(s) => write!(f, "cannot evaluate: {s}"),
            CelError::Runtime(s) => write!(f, "evaluation error: {s}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Punct(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, CelError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(CelError::Unsupported("unterminated string".into()));
                };
                i += 1;
                if ch == quote {
                    break;
                }
                if ch == '\\' {
                    let Some(&esc) = chars.get(i) else {
                        return Err(CelError::Unsupported("unterminated string".into()));
                    };
                    i += 1;
                    s.push(match esc {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(ch);
                }
            }
            out.push(Tok::Str(s));
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = text
                .parse()
                .map_err(|_| CelError::Unsupported(format!("number {text}")))?;
            out.push(Tok::Int(n));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let p = match two.as_str() {
            "&&" => Some("&&"),
            "||" => Some("||"),
            "==" => Some("=="),
            "!=" => Some("!="),
            _ => None,
        };
        if let Some(p) = p {
            out.push(Tok::Punct(p));
            i += 2;
            continue;
        }
        let p = match c {
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            '.' => ".",
            '!' => "!",
            other => return Err(CelError::Unsupported(format!("operator {other:?}"))),
        };
        out.push(Tok::Punct(p));
        i += 1;
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Var(String),
    Field(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Has(Box<Expr>, String),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>, bool),
    In(Box<Expr>, Box<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Nesting beyond this is not evaluated (the API server's own CEL limits are of this order,
/// and it keeps recursion off the stack's edge).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }
    fn expect(&mut self, p: &str) -> Result<(), CelError> {
        if self.is(p) {
            self.pos += 1;
            Ok(())
        } else {
            Err(CelError::Unsupported(format!("expected {p:?}")))
        }
    }
    /// Runs one recursive step within the nesting limit.
    fn nested(
        &mut self,
        f: impl FnOnce(&mut Parser) -> Result<Expr, CelError>,
    ) -> Result<Expr, CelError> {
        if self.depth >= MAX_DEPTH {
            return Err(CelError::Unsupported(
                "an expression nested this deep".into(),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
    fn or(&mut self) -> Result<Expr, CelError> {
        self.nested(|p| {
            let mut e = p.and()?;
            while p.is("||") {
                p.pos += 1;
                e = Expr::Or(Box::new(e), Box::new(p.and()?));
            }
            Ok(e)
        })
    }
    fn and(&mut self) -> Result<Expr, CelError> {
        let mut e = self.rel()?;
        while self.is("&&") {
            self.pos += 1;
            e = Expr::And(Box::new(e), Box::new(self.rel()?));
        }
        Ok(e)
    }
    fn rel(&mut self) -> Result<Expr, CelError> {
        let left = self.unary()?;
        if self.is("==") || self.is("!=") {
            let eq = self.is("==");
            self.pos += 1;
            let right = self.unary()?;
            return Ok(Expr::Eq(Box::new(left), Box::new(right), eq));
        }
        if matches!(self.peek(), Some(Tok::Ident(s)) if s == "in") {
            self.pos += 1;
            let right = self.unary()?;
            return Ok(Expr::In(Box::new(left), Box::new(right)));
        }
        Ok(left)
    }
    fn unary(&mut self) -> Result<Expr, CelError> {
        let mut nots = 0;
        while self.is("!") {
            self.pos += 1;
            nots += 1;
        }
        let mut e = self.postfix()?;
        // `!!x` is `x` for a bool; keep the parity without recursing per `!`.
        if nots % 2 == 1 {
            e = Expr::Not(Box::new(e));
        } else if nots > 0 {
            e = Expr::Not(Box::new(Expr::Not(Box::new(e))));
        }
        Ok(e)
    }
    fn postfix(&mut self) -> Result<Expr, CelError> {
        self.nested(Parser::postfix_steps)
    }
    fn postfix_steps(&mut self) -> Result<Expr, CelError> {
        let mut e = self.primary()?;
        loop {
            if self.is(".") {
                self.pos += 1;
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return Err(CelError::Unsupported("a field name after '.'".into()));
                };
                self.pos += 1;
                if self.is("(") {
                    return Err(CelError::Unsupported(format!("the function {name}()")));
                }
                e = Expr::Field(Box::new(e), name);
            } else if self.is("[") {
                self.pos += 1;
                let idx = self.or()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> Result<Expr, CelError> {
        let Some(t) = self.peek().cloned() else {
            return Err(CelError::Unsupported("an unexpected end".into()));
        };
        self.pos += 1;
        match t {
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Int(n) => Ok(Expr::Lit(Value::from(n))),
            Tok::Punct("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Punct("[") => {
                let mut items = Vec::new();
                while !self.is("]") {
                    items.push(self.or()?);
                    if self.is(",") {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect("]")?;
                Ok(Expr::List(items))
            }
            Tok::Ident(id) => match id.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                "has" => {
                    self.expect("(")?;
                    let inner = self.postfix()?;
                    self.expect(")")?;
                    match inner {
                        Expr::Field(base, name) => Ok(Expr::Has(base, name)),
                        _ => Err(CelError::Unsupported(
                            "has() needs a field selection".into(),
                        )),
                    }
                }
                "object" | "oldObject" | "request" => {
                    if self.is("(") {
                        return Err(CelError::Unsupported(format!("the function {id}()")));
                    }
                    Ok(Expr::Var(id))
                }
                other => Err(CelError::Unsupported(format!("{other:?}"))),
            },
            Tok::Punct(p) => Err(CelError::Unsupported(format!("{p:?} here"))),
        }
    }
}

/// What the expressions may refer to.
pub struct Env<'a> {
    pub object: &'a Value,
    pub request: &'a Value,
}

fn eval(e: &Expr, env: &Env) -> Result<Value, CelError> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Var(name) => Ok(match name.as_str() {
            "object" => env.object.clone(),
            "request" => env.request.clone(),
            _ => Value::Null, // oldObject is null on CREATE
        }),
        Expr::Field(base, name) => {
            let b = eval(base, env)?;
            match b {
                Value::Object(m) => m
                    .get(name)
                    .cloned()
                    .ok_or_else(|| CelError::Runtime(format!("no such key: {name}"))),
                _ => Err(CelError::Runtime(format!("no such key: {name}"))),
            }
        }
        Expr::Index(base, idx) => {
            let b = eval(base, env)?;
            let i = eval(idx, env)?;
            match (&b, &i) {
                (Value::Object(m), Value::String(k)) => m
                    .get(k)
                    .cloned()
                    .ok_or_else(|| CelError::Runtime(format!("no such key: {k}"))),
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|n| a.get(usize::try_from(n).ok()?))
                    .cloned()
                    .ok_or_else(|| CelError::Runtime("index out of range".into())),
                _ => Err(CelError::Runtime("no such overload for [ ]".into())),
            }
        }
        Expr::Has(base, name) => match eval(base, env)? {
            Value::Object(m) => Ok(Value::Bool(m.get(name).is_some_and(|v| !v.is_null()))),
            _ => Err(CelError::Runtime(format!("has(): no such key: {name}"))),
        },
        Expr::List(items) => Ok(Value::Array(
            items
                .iter()
                .map(|x| eval(x, env))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Not(x) => match eval(x, env)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            _ => Err(CelError::Runtime("no such overload for !".into())),
        },
        Expr::And(a, b) => logic(eval(a, env), eval(b, env), false),
        Expr::Or(a, b) => logic(eval(a, env), eval(b, env), true),
        Expr::Eq(a, b, eq) => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            Ok(Value::Bool((x == y) == *eq))
        }
        Expr::In(a, b) => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            match (&x, &y) {
                (_, Value::Array(list)) => Ok(Value::Bool(list.contains(&x))),
                (Value::String(k), Value::Object(m)) => Ok(Value::Bool(m.contains_key(k))),
                _ => Err(CelError::Runtime("no such overload for in".into())),
            }
        }
    }
}

/// `&&` (short = false) and `||` (short = true), commutative over errors as in CEL.
fn logic(
    a: Result<Value, CelError>,
    b: Result<Value, CelError>,
    short: bool,
) -> Result<Value, CelError> {
    let as_bool = |r: Result<Value, CelError>| match r {
        Ok(Value::Bool(x)) => Ok(x),
        Ok(_) => Err(CelError::Runtime(
            "no such overload for a logical operator".into(),
        )),
        Err(e) => Err(e),
    };
    let (a, b) = (as_bool(a), as_bool(b));
    if a.as_ref().is_ok_and(|x| *x == short) || b.as_ref().is_ok_and(|x| *x == short) {
        return Ok(Value::Bool(short));
    }
    match (a, b) {
        (Ok(_), Ok(_)) => Ok(Value::Bool(!short)),
        // Unsupported beats a run-time error: we do not know what CEL would say.
        (Err(e @ CelError::Unsupported(_)), _) | (_, Err(e @ CelError::Unsupported(_))) => Err(e),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Evaluates a matchCondition expression to a boolean.
pub fn evaluate(expression: &str, env: &Env) -> Result<bool, CelError> {
    let toks = lex(expression)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(CelError::Unsupported(format!(
            "the expression after {:?}",
            p.toks.get(p.pos)
        )));
    }
    match eval(&e, env)? {
        Value::Bool(b) => Ok(b),
        other => Err(CelError::Runtime(format!("result is {other}, not a bool"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(expr: &str, object: &Value) -> Result<bool, CelError> {
        let request = json!({"namespace": "shop", "operation": "CREATE"});
        evaluate(
            expr,
            &Env {
                object,
                request: &request,
            },
        )
    }

    #[test]
    fn the_projects_own_match_condition() {
        let expr = "!has(object.metadata.annotations) ||\n  !('sidecar-kit.io/inject' in object.metadata.annotations) ||\n  object.metadata.annotations['sidecar-kit.io/inject'] != 'disabled'";
        assert_eq!(run(expr, &json!({"metadata": {}})), Ok(true));
        assert_eq!(
            run(expr, &json!({"metadata": {"annotations": {"a": "b"}}})),
            Ok(true)
        );
        assert_eq!(
            run(
                expr,
                &json!({"metadata": {"annotations": {"sidecar-kit.io/inject": "disabled"}}})
            ),
            Ok(false)
        );
    }

    #[test]
    fn operators_and_errors() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "web", "tier": "front"}}});
        assert_eq!(run("object.metadata.labels.app == 'web'", &pod), Ok(true));
        assert_eq!(
            run("object.metadata.labels['tier'] in ['front', 'back']", &pod),
            Ok(true)
        );
        assert_eq!(run("request.namespace != \"shop\"", &pod), Ok(false));
        assert_eq!(
            run(
                "has(object.metadata.labels) && !('x' in object.metadata.labels)",
                &pod
            ),
            Ok(true)
        );
        // A missing key is a run-time error, unless the other side of && / || decides.
        assert!(matches!(
            run("object.metadata.labels.x == 'y'", &pod),
            Err(CelError::Runtime(_))
        ));
        assert_eq!(
            run("false && object.metadata.labels.x == 'y'", &pod),
            Ok(false)
        );
        assert_eq!(
            run("object.metadata.labels.x == 'y' || true", &pod),
            Ok(true)
        );
        // Functions and unknown variables are not guessed.
        assert!(matches!(
            run("object.metadata.name.startsWith('p')", &pod),
            Err(CelError::Unsupported(_))
        ));
        assert!(matches!(
            run(
                "authorizer.group('').resource('pods').check('create').allowed()",
                &pod
            ),
            Err(CelError::Unsupported(_))
        ));
        assert!(matches!(
            run("size(object.metadata.labels) > 1", &pod),
            Err(CelError::Unsupported(_))
        ));
        assert!(matches!(run("'web'", &pod), Err(CelError::Runtime(_))));
        let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(matches!(run(&deep, &pod), Err(CelError::Unsupported(_))));
        assert_eq!(run(&format!("{}true", "!".repeat(10_001)), &pod), Ok(false));
        let has = format!(
            "{}object.metadata{}",
            "has(".repeat(10_000),
            ")".repeat(10_000)
        );
        assert!(matches!(run(&has, &pod), Err(CelError::Unsupported(_))));
    }
}
