//! The shim's decisions as pure functions: no files, no processes, no clock.
//!
//! The state protocol is the contract's "Shim state" section, word for word:
//!
//! | role     | what it reads                                  | what it does                                  |
//! |----------|------------------------------------------------|-----------------------------------------------|
//! | `native` | `native-confirmed`, or `native-pending`/`-running` | write `native-running`, confirm, run sidecar |
//! | `native` | `legacy-running`                               | log, idle until SIGTERM (never exit)          |
//! | `native` | anything else                                  | write `native-pending`, exit 0 at once        |
//! | `legacy` | `native-running`                               | sleep until SIGTERM (`Always`) or exit 0      |
//! | `legacy` | anything else                                  | write `legacy-running`, run the sidecar       |
//! | `probe`  | `native-running`                               | exit 0 (else 1)                               |
//!
//! The rest of the file holds the other decisions the shim takes: when a Job's app containers
//! have finished for good, how long to wait before restarting a crashed sidecar, which status
//! to report at teardown, and whether a kubelet version runs native sidecars.

use std::fmt;
use std::time::Duration;

/// The one word in the `state` file. It describes the current pod sandbox only: `install`
/// removes it whenever the sandbox is (re-)created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The native copy's first run in this sandbox wrote it and exited at once.
    NativePending,
    /// The native copy runs the sidecar.
    NativeRunning,
    /// The legacy copy runs the sidecar.
    LegacyRunning,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::NativePending => "native-pending",
            State::NativeRunning => "native-running",
            State::LegacyRunning => "legacy-running",
        }
    }

    /// Parses the file's content (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Option<State> {
        match text.trim() {
            "native-pending" => Some(State::NativePending),
            "native-running" => Some(State::NativeRunning),
            "legacy-running" => Some(State::LegacyRunning),
            _ => None,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the node's kubelet version says about native sidecars (feature `api`,
/// `native --check-node`); `Unknown` whenever the check was not asked for or failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeSupport {
    Unknown,
    Supported,
    Unsupported,
}

/// What the native copy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeAction {
    /// Write `native-running`, create `native-confirmed`, supervise the sidecar.
    BecomeSidecar,
    /// The legacy copy already runs the sidecar: log it and idle until SIGTERM. Exiting would
    /// make the kubelet restart us forever (crash-loop back-off).
    Idle,
    /// First run in this sandbox: write `native-pending` and exit 0 at once, nothing else. On a
    /// capable node the kubelet restarts us and the next run becomes the sidecar.
    FirstRun,
}

/// The native copy's decision. `node` only matters where the marker protocol alone would take
/// the first-run branch: a node known to be capable skips the detection restart.
pub fn native_action(state: Option<State>, confirmed: bool, node: NodeSupport) -> NativeAction {
    match state {
        _ if confirmed => NativeAction::BecomeSidecar,
        Some(State::NativePending | State::NativeRunning) => NativeAction::BecomeSidecar,
        Some(State::LegacyRunning) => NativeAction::Idle,
        None if node == NodeSupport::Supported => NativeAction::BecomeSidecar,
        None => NativeAction::FirstRun,
    }
}

/// The pod's `spec.restartPolicy`, passed to the legacy copy by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn parse(text: &str) -> Option<RestartPolicy> {
        match text {
            "Always" => Some(RestartPolicy::Always),
            "OnFailure" => Some(RestartPolicy::OnFailure),
            "Never" => Some(RestartPolicy::Never),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }
}

/// What the legacy copy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyAction {
    /// The native copy runs the sidecar and the pod restarts containers that exit: sleep until
    /// SIGTERM (exiting would restart us forever).
    Dormant,
    /// The native copy runs the sidecar in a pod whose containers may finish: exit 0, so that
    /// this copy never holds the pod (a Job) open.
    ExitZero,
    /// Write `legacy-running` and supervise the sidecar.
    BecomeSidecar,
}

pub fn legacy_action(state: Option<State>, policy: RestartPolicy) -> LegacyAction {
    match (state, policy) {
        (Some(State::NativeRunning), RestartPolicy::Always) => LegacyAction::Dormant,
        (Some(State::NativeRunning), _) => LegacyAction::ExitZero,
        _ => LegacyAction::BecomeSidecar,
    }
}

/// `probe`: the native copy's startup probe passes only once it runs the sidecar.
pub fn probe_passes(state: Option<State>) -> bool {
    state == Some(State::NativeRunning)
}

/// `ready`: the legacy copy is ready while dormant; otherwise its original check decides.
pub fn ready_is_dormant(state: Option<State>) -> bool {
    state == Some(State::NativeRunning)
}

/// Whether an app container that exited with `code` has finished for good, i.e. the kubelet
/// will not start it again: it succeeded, or it failed under `Never`. Under `OnFailure` a
/// failed container is restarted, so the sidecar must keep serving it.
pub fn finished_for_good(code: i32, policy: RestartPolicy) -> bool {
    match policy {
        RestartPolicy::Always => false,
        RestartPolicy::OnFailure => code == 0,
        RestartPolicy::Never => true,
    }
}

/// Job-safe shutdown: true once every awaited app container has finished for good. `codes`
/// holds the last known exit code of each (`None`: still running or not started).
pub fn all_finished(codes: &[Option<i32>], policy: RestartPolicy) -> bool {
    codes
        .iter()
        .all(|code| code.is_some_and(|c| finished_for_good(c, policy)))
}

/// Parses a tombstone: the exit code in decimal and a newline.
pub fn parse_tombstone(text: &str) -> Option<i32> {
    text.trim().parse().ok()
}

/// The restart back-off of the supervised sidecar.
///
/// The kubelet's own crash-loop back-off is already armed by the detection restart (its next
/// restart of this container would wait 10 s, then 20 s, ...), so the shim keeps the container
/// alive and restarts the sidecar process itself: 1 s after the first crash, doubling up to
/// 30 s, back to 1 s once a run has stayed up for 60 s.
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    reset_after: Duration,
    last: Option<Duration>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(30),
            Duration::from_secs(60),
        )
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, reset_after: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            reset_after,
            last: None,
        }
    }

    /// The delay before the next start, given how long the run that just ended stayed up.
    pub fn next_delay(&mut self, uptime: Duration) -> Duration {
        let delay = match self.last {
            Some(last) if uptime < self.reset_after => (last * 2).min(self.max),
            _ => self.initial,
        };
        self.last = Some(delay);
        delay
    }
}

/// The status the supervising copy reports when the sidecar ended after we forwarded the stop
/// signal `stop_signal` at teardown. With `--sigterm-exit-zero`, an end caused by that signal
/// (killed by it, or exit code 128 + it, as shells report) becomes 0, so a sidecar that is
/// simply stopped does not look failed; any other status passes through.
pub fn teardown_status(code: i32, stop_signal: i32, sigterm_exit_zero: bool) -> i32 {
    if sigterm_exit_zero && code == 128 + stop_signal {
        0
    } else {
        code
    }
}

/// A kubelet version as reported in `status.nodeInfo.kubeletVersion` (`v1.29.3`,
/// `v1.30.2+k3s1`, `v1.28.5-eks-5e0fdde`): major, minor, patch; the rest is ignored.
pub fn parse_kubelet_version(text: &str) -> Option<(u32, u32, u32)> {
    let text = text.trim();
    let text = text.strip_prefix('v').unwrap_or(text);
    let core = text.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((major, minor, patch))
}

/// Support for native sidecars by kubelet version: 1.29 and later run them (gate on by
/// default); 1.28 counts as lacking support (gate off by default, different termination
/// order) and older kubelets ignore the field. Where a 1.28 kubelet has the gate on, it
/// restarts the native copy anyway and the marker protocol takes over. Unparseable: unknown.
pub fn node_support(version: &str) -> NodeSupport {
    match parse_kubelet_version(version) {
        Some((major, minor, _)) if major > 1 || (major == 1 && minor >= 29) => {
            NodeSupport::Supported
        }
        Some(_) => NodeSupport::Unsupported,
        None => NodeSupport::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NativeAction::*;
    use State::*;

    const ALL_STATES: [Option<State>; 4] = [
        None,
        Some(NativePending),
        Some(NativeRunning),
        Some(LegacyRunning),
    ];

    #[test]
    fn state_words_round_trip() {
        for state in [NativePending, NativeRunning, LegacyRunning] {
            assert_eq!(State::parse(state.as_str()), Some(state));
            assert_eq!(State::parse(&format!("{state}\n")), Some(state));
        }
        assert_eq!(State::parse(""), None);
        assert_eq!(State::parse("native"), None);
        assert_eq!(State::parse("NATIVE-RUNNING"), None);
    }

    #[test]
    fn native_first_run_in_a_fresh_sandbox_exits() {
        assert_eq!(native_action(None, false, NodeSupport::Unknown), FirstRun);
        assert_eq!(
            native_action(None, false, NodeSupport::Unsupported),
            FirstRun
        );
    }

    #[test]
    fn native_restart_after_pending_becomes_the_sidecar() {
        assert_eq!(
            native_action(Some(NativePending), false, NodeSupport::Unknown),
            BecomeSidecar
        );
        // A restart of the container that already ran the sidecar (crash of the shim itself).
        assert_eq!(
            native_action(Some(NativeRunning), true, NodeSupport::Unknown),
            BecomeSidecar
        );
        assert_eq!(
            native_action(Some(NativeRunning), false, NodeSupport::Unknown),
            BecomeSidecar
        );
    }

    #[test]
    fn native_idles_when_the_legacy_copy_won() {
        for node in [
            NodeSupport::Unknown,
            NodeSupport::Supported,
            NodeSupport::Unsupported,
        ] {
            assert_eq!(native_action(Some(LegacyRunning), false, node), Idle);
        }
    }

    #[test]
    fn confirmed_pod_skips_the_restart_dance_after_sandbox_recreation() {
        // install cleared `state` but kept `native-confirmed`.
        assert_eq!(
            native_action(None, true, NodeSupport::Unknown),
            BecomeSidecar
        );
        // The contract lists the confirmed flag first.
        assert_eq!(
            native_action(Some(LegacyRunning), true, NodeSupport::Unknown),
            BecomeSidecar
        );
    }

    #[test]
    fn node_check_only_changes_the_first_run_branch() {
        assert_eq!(
            native_action(None, false, NodeSupport::Supported),
            BecomeSidecar
        );
        for state in ALL_STATES.into_iter().flatten() {
            for confirmed in [false, true] {
                assert_eq!(
                    native_action(Some(state), confirmed, NodeSupport::Supported),
                    native_action(Some(state), confirmed, NodeSupport::Unknown),
                );
            }
        }
    }

    #[test]
    fn legacy_decisions() {
        use LegacyAction::*;
        use RestartPolicy::*;
        assert_eq!(legacy_action(Some(NativeRunning), Always), Dormant);
        assert_eq!(legacy_action(Some(NativeRunning), OnFailure), ExitZero);
        assert_eq!(legacy_action(Some(NativeRunning), Never), ExitZero);
        for policy in [Always, OnFailure, Never] {
            for state in [None, Some(NativePending), Some(LegacyRunning)] {
                assert_eq!(
                    legacy_action(state, policy),
                    BecomeSidecar,
                    "{state:?} {policy:?}"
                );
            }
        }
    }

    #[test]
    fn probe_and_ready_pass_only_on_native_running() {
        for state in ALL_STATES {
            assert_eq!(probe_passes(state), state == Some(NativeRunning));
            assert_eq!(ready_is_dormant(state), state == Some(NativeRunning));
        }
    }

    /// Simulates every interleaving of one pod on each kind of node and checks the invariant
    /// the protocol exists for: exactly one copy ends up running the sidecar, and no
    /// init container blocks the pod.
    #[test]
    fn exactly_one_sidecar_on_every_kind_of_node() {
        // Capable node with the startup probe: native run 1, restart, probe passes, then the
        // regular containers (the legacy copy) start.
        let mut state = None;
        let mut confirmed = false;
        assert_eq!(
            native_action(state, confirmed, NodeSupport::Unknown),
            FirstRun
        );
        state = Some(NativePending);
        assert_eq!(
            native_action(state, confirmed, NodeSupport::Unknown),
            BecomeSidecar
        );
        state = Some(NativeRunning);
        confirmed = true;
        assert!(probe_passes(state));
        assert_eq!(
            legacy_action(state, RestartPolicy::Always),
            LegacyAction::Dormant
        );

        // Sandbox re-created on the same (capable) node: install clears state, keeps the flag.
        state = None;
        assert_eq!(
            native_action(state, confirmed, NodeSupport::Unknown),
            BecomeSidecar
        );

        // Unaware node (or dropped field): the native copy runs once as a plain init
        // container; the legacy copy sees `native-pending` and takes over.
        let state = Some(NativePending);
        assert_eq!(
            legacy_action(state, RestartPolicy::Always),
            LegacyAction::BecomeSidecar
        );
        // Re-created sandbox there: cleared state, never confirmed: first run again, exits.
        assert_eq!(native_action(None, false, NodeSupport::Unknown), FirstRun);
    }

    #[test]
    fn job_completion_rules() {
        use RestartPolicy::*;
        assert!(finished_for_good(0, Never));
        assert!(finished_for_good(3, Never));
        assert!(finished_for_good(0, OnFailure));
        assert!(!finished_for_good(3, OnFailure));
        assert!(!finished_for_good(0, Always));
        assert!(all_finished(&[Some(0), Some(1)], Never));
        assert!(!all_finished(&[Some(0), None], Never));
        assert!(!all_finished(&[Some(0), Some(1)], OnFailure));
        assert!(all_finished(&[], Never));
    }

    #[test]
    fn tombstones_parse() {
        assert_eq!(parse_tombstone("0\n"), Some(0));
        assert_eq!(parse_tombstone("143\n"), Some(143));
        assert_eq!(parse_tombstone(" 7 "), Some(7));
        assert_eq!(parse_tombstone(""), None);
        assert_eq!(parse_tombstone("ok\n"), None);
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let s = Duration::from_secs;
        let mut b = Backoff::default();
        let quick = s(2);
        let delays: Vec<_> = (0..8).map(|_| b.next_delay(quick).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(
            b.next_delay(s(60)),
            s(1),
            "a run of 60 s resets the back-off"
        );
        assert_eq!(b.next_delay(quick), s(2));
    }

    #[test]
    fn teardown_status_rules() {
        assert_eq!(teardown_status(143, 15, false), 143);
        assert_eq!(teardown_status(143, 15, true), 0);
        assert_eq!(teardown_status(130, 2, true), 0);
        assert_eq!(teardown_status(1, 15, true), 1);
        assert_eq!(teardown_status(0, 15, true), 0);
        assert_eq!(
            teardown_status(137, 15, true),
            137,
            "SIGKILL is not the stop signal"
        );
    }

    #[test]
    fn kubelet_versions() {
        assert_eq!(parse_kubelet_version("v1.29.3"), Some((1, 29, 3)));
        assert_eq!(parse_kubelet_version("v1.30.2+k3s1"), Some((1, 30, 2)));
        assert_eq!(
            parse_kubelet_version("v1.29.1-gke.1589018"),
            Some((1, 29, 1))
        );
        assert_eq!(
            parse_kubelet_version("v1.28.5-eks-5e0fdde"),
            Some((1, 28, 5))
        );
        assert_eq!(parse_kubelet_version("1.31"), Some((1, 31, 0)));
        assert_eq!(parse_kubelet_version("v1"), None);
        assert_eq!(parse_kubelet_version(""), None);
        assert_eq!(parse_kubelet_version("vx.y.z"), None);
        assert_eq!(node_support("v1.29.0"), NodeSupport::Supported);
        assert_eq!(node_support("v1.33.1"), NodeSupport::Supported);
        assert_eq!(node_support("v2.0.0"), NodeSupport::Supported);
        assert_eq!(
            node_support("v1.28.5-eks-5e0fdde"),
            NodeSupport::Unsupported
        );
        assert_eq!(node_support("v1.27.9"), NodeSupport::Unsupported);
        assert_eq!(node_support("unknown"), NodeSupport::Unknown);
    }
}
