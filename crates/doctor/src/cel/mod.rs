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

mod eval;
mod lex;
mod parse;

/// What the expressions may refer to.
pub struct Env<'a> {
    pub object: &'a Value,
    pub request: &'a Value,
}

/// Evaluates a matchCondition expression to a boolean.
pub fn evaluate(expression: &str, env: &Env) -> Result<bool, CelError> {
    let e = parse::parse(lex::lex(expression)?)?;
    match eval::eval(&e, env)? {
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
