//! Shared setup of the doctor's tests against the project's fake API server.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sidecar_kit_doctor::conn::{self, Session, Target};
use sidecar_kit_fakeapi::FakeApi;
use sidecar_kit_testkit::TempDir;

/// A session on the fake, as the CLI would open it from a kubeconfig.
pub async fn session(fake: &FakeApi) -> Session {
    // The kubeconfig is read when connecting; its directory goes afterwards.
    let dir = TempDir::new("doctor-kc");
    let kc = fake.write_kubeconfig(dir.path()).unwrap();
    conn::connect(&Target {
        kubeconfig: Some(kc),
        context: None,
    })
    .await
    .unwrap()
}

/// A MutatingWebhookConfiguration with one webhook on pod CREATE; `extra` is merged into
/// the webhook.
pub fn webhook_config(name: &str, webhook: &str, extra: Value) -> Value {
    let mut w = json!({
        "name": webhook,
        "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": name, "namespace": "infra", "path": "/mutate"}},
        "sideEffects": "None",
        "failurePolicy": "Ignore",
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}]
    });
    if let (Some(m), Some(e)) = (w.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [w]
    })
}

/// What an old webhook does: re-serialise init containers without the field.
pub fn strip_restart_policy(pod: &mut Value) {
    if let Some(cs) = pod["spec"]
        .get_mut("initContainers")
        .and_then(Value::as_array_mut)
    {
        for c in cs {
            if let Some(m) = c.as_object_mut() {
                m.remove("restartPolicy");
            }
        }
    }
}
