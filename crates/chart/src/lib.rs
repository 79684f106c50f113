//! Tests of the Helm chart `charts/sidecar-kit` (no library code: see `tests/chart.rs`).
//!
//! The tests render the chart with `helm template` under each values file of
//! `charts/sidecar-kit/ci/` and compare the objects with what `kubectl kustomize` renders
//! from the matching overlay of `deploy/`; they also run `helm lint` with each values file
//! and check that the schema refuses bad values. helm comes from `SIDECAR_KIT_HELM`, else
//! `PATH`; without it each test says it skipped, in one line, and passes.
