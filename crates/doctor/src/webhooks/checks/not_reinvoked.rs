//! `webhooks.sidecar-kit-not-reinvoked`: sidecar-kit's own webhook re-asserts
//! restartPolicy on re-invocation only, so with other webhooks in the chain it needs
//! `reinvocationPolicy: IfNeeded`.

use crate::report::{Finding, Severity};
use crate::webhooks::OWN_CONFIGURATION;
use crate::webhooks::chain::Hook;

pub(in crate::webhooks) fn check(hooks: &[Hook]) -> Vec<Finding> {
    hooks
        .iter()
        .filter(|h| h.configuration == OWN_CONFIGURATION)
        .filter(|h| h.reinvocation_policy != "IfNeeded" && hooks.len() > 1)
        .map(|h| {
            Finding::new(
                "webhooks.sidecar-kit-not-reinvoked",
                Severity::Warning,
                Some(format!("MutatingWebhookConfiguration {}, webhook {}", h.configuration, h.webhook)),
                format!(
                    "reinvocationPolicy is {}: a later webhook that strips restartPolicy from the injected sidecars is never undone",
                    h.reinvocation_policy
                ),
                Some("set reinvocationPolicy: IfNeeded (as deploy/base does)".into()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(configuration: &str, reinvocation: &str) -> Hook {
        Hook {
            order: 1,
            configuration: configuration.into(),
            webhook: "w.example.com".into(),
            failure_policy: "Fail".into(),
            reinvocation_policy: reinvocation.into(),
            namespace_selector: None,
            object_selector: None,
            match_conditions: Vec::new(),
        }
    }

    #[test]
    fn sidecar_kit_needs_reinvocation_behind_other_webhooks() {
        // (the chain as (configuration, reinvocationPolicy), findings)
        let cases: [(&[(&str, &str)], usize); 6] = [
            (&[], 0),
            (&[(OWN_CONFIGURATION, "Never")], 0),
            (&[(OWN_CONFIGURATION, "Never"), ("istio", "Never")], 1),
            (&[("istio", "Never"), (OWN_CONFIGURATION, "IfNeeded")], 0),
            (&[("istio", "Never"), ("linkerd", "Never")], 0),
            (
                &[(OWN_CONFIGURATION, "Never"), (OWN_CONFIGURATION, "Never")],
                2,
            ),
        ];
        for (chain, want) in cases {
            let hooks: Vec<Hook> = chain.iter().map(|(c, r)| hook(c, r)).collect();
            let found = check(&hooks);
            assert_eq!(found.len(), want, "{chain:?}");
            for f in &found {
                assert_eq!(f.check, "webhooks.sidecar-kit-not-reinvoked");
                assert!(
                    f.message.starts_with("reinvocationPolicy is Never"),
                    "{}",
                    f.message
                );
            }
        }
    }
}
