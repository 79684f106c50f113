//! Evaluation of an expression tree against the admission request, with CEL's rules for
//! errors under `&&` and `||`.

use super::parse::Expr;
use super::{CelError, Env};
use serde_json::Value;

pub(super) fn eval(e: &Expr, env: &Env) -> Result<Value, CelError> {
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
