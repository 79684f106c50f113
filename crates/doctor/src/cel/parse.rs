//! The parser: tokens into an expression tree, by precedence (`||`, `&&`, `==`/`!=`/`in`,
//! `!`, field and index access), within a nesting limit.

use super::CelError;
use super::lex::Tok;
use serde_json::Value;

#[derive(Debug, Clone)]
pub(super) enum Expr {
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

/// Parses a whole token list into one expression.
pub(super) fn parse(toks: Vec<Tok>) -> Result<Expr, CelError> {
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
    Ok(e)
}
