//! Scenarios: the engine's pod specs (`tests/data/*.json`) run by the kubelet imitation with
//! the real `sidecar-shim` binary. Every wait polls a condition with a deadline.
// Test code: a panic is a failed assertion (clippy.toml allows unwrap in #[test] functions;
// the helpers of an integration test crate need the same).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kubelet;

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubelet::{NodeKind, Options, Phase, Pod, PodSpec, Snapshot, alive};

/// Deadline for conditions that normally hold within a second or two.
const T: Duration = Duration::from_secs(20);

fn start(spec: PodSpec, node: NodeKind) -> Pod {
    Pod::start(spec, Options::new(node)).expect("the API server accepts the pod")
}

/// Pids the agent recorded, one per start of the agent process (in any copy).
fn agent_starts(pod: &Pod) -> Vec<u32> {
    fs::read_to_string(pod.volume("agent-data").join("starts"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Agent processes running now.
fn live_agents(pod: &Pod) -> Vec<u32> {
    agent_starts(pod)
        .into_iter()
        .filter(|pid| alive(*pid))
        .collect()
}

fn state_word(pod: &Pod) -> String {
    fs::read_to_string(pod.volume("sidecar-kit").join("state/agent/state"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn confirmed(pod: &Pod) -> bool {
    pod.volume("sidecar-kit")
        .join("state/agent/native-confirmed")
        .exists()
}

/// Every line the shim wrote is one `sidecar-shim[role]: ...` line.
fn assert_log_lines(log: &str, role: &str) {
    assert!(!log.is_empty());
    for line in log.lines() {
        assert!(
            line.starts_with(&format!("sidecar-shim[{role}]: ")),
            "unexpected log line {line:?} in\n{log}"
        );
    }
}

/// Deletes the pod and checks the kubelet's termination order and the copies' statuses.
fn delete_and_check_order(pod: &Pod, sidecar: &str, regular: &[&str]) -> Snapshot {
    pod.delete();
    let snap = pod.wait_until("the pod is gone", T, |s| s.phase == Phase::Gone);
    let sidecar_end = *snap.get(sidecar).ends.last().expect("the sidecar ended");
    for name in regular {
        let end = *snap.get(name).ends.last().expect("ended");
        assert!(
            end <= sidecar_end,
            "{name} ended after the sidecar {sidecar}\n{}",
            pod.report()
        );
    }
    assert!(live_agents(pod).is_empty(), "no agent outlives the pod");
    assert!(
        !snap.events.iter().any(|e| e.contains("SIGKILL")),
        "nobody needed SIGKILL\n{}",
        pod.report()
    );
    snap
}

#[test]
fn native_supported_capable_node() {
    let pod = start(PodSpec::fixture("universal-pod.json"), NodeKind::Capable);
    let snap = pod.wait_until("the app and both copies run", T, |s| {
        s.get("app").running
            && s.get("agent").running
            && s.get("agent-legacy").running
            && s.get("agent-legacy").ready
    });

    // The detection restart: the first run exited 0 at once, the second runs the sidecar.
    let native = snap.get("agent");
    assert_eq!(native.exits, [0], "{}", pod.report());
    assert_eq!(native.restart_count(), 1, "the documented restartCount 1");
    assert!(native.started);
    assert_eq!(snap.get("sidecar-kit-install").exits, [0]);
    assert_eq!(state_word(&pod), "native-running");
    assert!(confirmed(&pod));
    assert_eq!(native.termination_message, "native");
    // The app started only after the startup probe passed, i.e. after the sidecar ran.
    let probe_passed = snap
        .events
        .iter()
        .position(|e| e.contains("agent: startup probe passed"))
        .expect("probe passed");
    let app_started = snap
        .events
        .iter()
        .position(|e| e.contains("app: started run 1"))
        .expect("app started");
    assert!(probe_passed < app_started, "{}", pod.report());
    assert!(snap.get("app").starts[0] >= native.starts[1]);

    // Exactly one agent: the legacy copy is dormant, and ready while dormant.
    pod.wait_until("the agent recorded its start", T, |_| {
        live_agents(&pod).len() == 1
    });
    let log = pod.logs("agent-legacy");
    assert!(log.contains("dormant until SIGTERM"), "{log}");
    assert_log_lines(&log, "legacy");
    assert_log_lines(&pod.logs("agent"), "native");
    pod.holds(
        "one agent, legacy copy idle",
        Duration::from_millis(300),
        |s| {
            live_agents(&pod).len() == 1
                && s.get("agent-legacy").running
                && s.get("agent").runs == 2
        },
    );

    // Teardown: regular containers first, the sidecar last; the idle copy exits 0, the native
    // copy passes the sidecar's status through (sleep killed by the forwarded SIGTERM).
    let snap = delete_and_check_order(&pod, "agent", &["app", "agent-legacy"]);
    assert_eq!(snap.get("agent-legacy").exits, [0]);
    assert_eq!(snap.get("agent").exits, [0, 143]);
}

#[test]
fn native_unsupported_unaware_node() {
    let pod = start(PodSpec::fixture("universal-pod.json"), NodeKind::Unaware);
    let snap = pod.wait_until("the app and the legacy copy run, ready", T, |s| {
        s.get("app").running && s.get("agent-legacy").running && s.get("agent-legacy").ready
    });
    // The native copy ran once as a plain init container and exited 0 before the app started.
    let native = snap.get("agent");
    assert_eq!(
        (native.runs, native.exits.as_slice()),
        (1, &[0][..]),
        "{}",
        pod.report()
    );
    assert!(!native.sidecar && !native.running);
    assert!(native.ends[0] <= snap.get("app").starts[0]);
    assert_eq!(
        native.termination_message, "",
        "the first run is not the sidecar"
    );
    assert_eq!(state_word(&pod), "legacy-running");
    assert!(!confirmed(&pod));
    assert_eq!(snap.get("agent-legacy").termination_message, "legacy");
    pod.wait_until("one agent", T, |_| live_agents(&pod).len() == 1);
    assert!(
        pod.logs("agent")
            .contains("wrote native-pending, exiting 0")
    );

    let snap = delete_and_check_order(&pod, "agent-legacy", &["app"]);
    assert_eq!(snap.get("agent-legacy").exits, [143]);
}

#[test]
fn api_server_dropped_the_field() {
    // Where the API server drops restartPolicy, a probe on the init container would get the
    // pod rejected: that is why the engine's no-probe variant has no probes at all.
    let mut broken = PodSpec::fixture("universal-pod.json");
    broken.container_mut("agent").restart_policy = None;
    let err = Pod::start(broken, Options::new(NodeKind::Capable))
        .err()
        .expect("rejected");
    assert!(
        err.contains("may not be set for init containers without restartPolicy=Always"),
        "{err}"
    );

    let spec = PodSpec::fixture("universal-pod-noprobe.json");
    let agent = spec
        .init_containers
        .iter()
        .find(|c| c.name == "agent")
        .unwrap();
    assert!(
        agent.restart_policy.is_none()
            && agent.startup_probe.is_none()
            && agent.readiness_probe.is_none()
    );
    // Even on a capable node the native copy is a plain init container now.
    let pod = start(spec, NodeKind::Capable);
    let snap = pod.wait_until("the legacy copy runs the agent", T, |s| {
        s.get("app").running && s.get("agent-legacy").ready
    });
    assert_eq!(snap.get("agent").exits, [0], "{}", pod.report());
    assert_eq!(
        snap.get("agent").runs,
        1,
        "no restart without restartPolicy"
    );
    assert_eq!(state_word(&pod), "legacy-running");
    pod.wait_until("one agent", T, |_| live_agents(&pod).len() == 1);
    delete_and_check_order(&pod, "agent-legacy", &["app"]);
}

/// The race the startup probe prevents. Without the probe the kubelet counts the native
/// copy's first run as started at once and starts the regular containers; the legacy copy
/// reads the state while the native copy restarts, and both copies run the sidecar. The
/// delay (the test hook) stands for a slow container start between reading and claiming.
#[test]
fn slow_first_run_without_probe_runs_two_sidecars_and_the_probe_prevents_it() {
    let slow = |spec: &mut PodSpec| {
        spec.container_mut("agent-legacy")
            .env
            .push(("SIDECAR_SHIM_TEST_CLAIM_DELAY_MS".into(), "400".into()));
    };

    let mut spec = PodSpec::fixture("universal-pod.json");
    spec.container_mut("agent").startup_probe = None;
    slow(&mut spec);
    let pod = start(spec, NodeKind::Capable);
    pod.wait_until("two agents run at once", T, |_| {
        live_agents(&pod).len() == 2
    });
    let snap = pod.snapshot();
    assert!(snap.get("agent").running && snap.get("agent-legacy").running);
    assert!(pod.logs("agent").contains("running the sidecar"));
    assert!(pod.logs("agent-legacy").contains("running the sidecar"));
    drop(pod);

    let mut spec = PodSpec::fixture("universal-pod.json");
    slow(&mut spec);
    let pod = start(spec, NodeKind::Capable);
    pod.wait_until("the legacy copy decided", T, |_| {
        pod.logs("agent-legacy").contains("dormant")
    });
    pod.holds("exactly one agent", Duration::from_millis(500), |_| {
        live_agents(&pod).len() == 1
    });
    assert_eq!(agent_starts(&pod).len(), 1);
}

#[test]
fn sandbox_recreation_on_a_capable_node_skips_the_restart_dance() {
    let pod = start(PodSpec::fixture("universal-pod.json"), NodeKind::Capable);
    pod.wait_until("native runs the agent", T, |s| {
        s.get("app").running && s.get("agent").started
    });
    assert_eq!(pod.snapshot().get("agent").runs, 2);

    pod.recreate_sandbox();
    let snap = pod.wait_until("the app runs again", T, |s| {
        s.phase == Phase::Running
            && s.get("app").runs == 2
            && s.get("app").running
            && s.get("agent-legacy").running
    });
    // install ran again and cleared the state but kept native-confirmed: the native copy
    // became the sidecar on its first run in the new sandbox, without a restart.
    assert_eq!(snap.get("sidecar-kit-install").runs, 2);
    let install = pod.logs("sidecar-kit-install");
    assert!(
        install.contains("cleared state `native-running` of agent")
            && install.contains("native-confirmed kept"),
        "{install}"
    );
    assert_eq!(
        snap.get("agent").runs,
        3,
        "one run in the new sandbox\n{}",
        pod.report()
    );
    assert!(
        pod.logs("agent")
            .contains("(native-confirmed): wrote native-running")
    );
    assert_eq!(state_word(&pod), "native-running");
    pod.wait_until("one agent", T, |_| live_agents(&pod).len() == 1);
    pod.holds("no further restart", Duration::from_millis(300), |s| {
        s.get("agent").runs == 3 && s.get("agent").running
    });
}

#[test]
fn sandbox_recreation_on_an_unaware_node_does_not_hang() {
    let pod = start(PodSpec::fixture("universal-pod.json"), NodeKind::Unaware);
    pod.wait_until("legacy runs the agent", T, |s| {
        s.get("app").running && s.get("agent-legacy").running
    });
    pod.wait_until("one agent", T, |_| live_agents(&pod).len() == 1);

    pod.recreate_sandbox();
    let snap = pod.wait_until("the app runs again", T, |s| {
        s.phase == Phase::Running && s.get("app").runs == 2 && s.get("app").running
    });
    // The stale `legacy-running` was cleared: the native copy ran once more and exited 0.
    assert_eq!(snap.get("agent").exits, [0, 0], "{}", pod.report());
    assert!(
        pod.logs("sidecar-kit-install")
            .contains("cleared state `legacy-running` of agent")
    );
    pod.wait_until("the legacy copy runs the agent again", T, |_| {
        state_word(&pod) == "legacy-running" && live_agents(&pod).len() == 1
    });
}

/// What install's clearing is for: with it disabled (state root pointed elsewhere), the
/// re-created sandbox on an unaware node hangs in Init: the native copy reads the old state
/// and never exits.
#[test]
fn without_clearing_a_recreated_sandbox_hangs() {
    let mut spec = PodSpec::fixture("universal-pod.json");
    spec.container_mut("sidecar-kit-install")
        .command
        .extend(["--state-root".into(), "/sidecar-kit/elsewhere".into()]);
    let pod = start(spec, NodeKind::Unaware);
    pod.wait_until("legacy runs the agent", T, |s| {
        s.get("app").running && s.get("agent-legacy").running
    });
    pod.recreate_sandbox();
    // The native copy reads the old state and idles (waited for: on a busy machine its log
    // line may come well after it started) ...
    pod.wait_until("the native copy runs again and idles", T, |s| {
        s.get("agent").runs == 2 && pod.logs("agent").contains("idling until SIGTERM")
    });
    // ... and nothing moves: the pod hangs in Init.
    pod.holds("the pod hangs in Init", Duration::from_millis(800), |s| {
        s.phase == Phase::Initializing && s.get("agent").running && s.get("app").runs == 1
    });
}

/// State files left by an earlier incarnation of the pod (container restarts and sandbox
/// re-creation reuse the emptyDir) must not mislead the protocol.
#[test]
fn stale_state_from_an_earlier_incarnation() {
    struct Case {
        node: NodeKind,
        stale: &'static str,
        confirmed: bool,
        winner: &'static str,
        native_runs: u32,
    }
    let cases = [
        // Stale "running" words on an unaware node would hang the pod (the native copy would
        // run the sidecar as a plain init container, or idle, and never exit).
        Case {
            node: NodeKind::Unaware,
            stale: "native-running",
            confirmed: false,
            winner: "legacy-running",
            native_runs: 1,
        },
        Case {
            node: NodeKind::Unaware,
            stale: "native-pending",
            confirmed: false,
            winner: "legacy-running",
            native_runs: 1,
        },
        // A stale "legacy-running" on a capable node would make the native copy idle and its
        // probe never pass.
        Case {
            node: NodeKind::Capable,
            stale: "legacy-running",
            confirmed: false,
            winner: "native-running",
            native_runs: 2,
        },
        // Confirmed earlier in this pod: no restart dance, whatever the stale word.
        Case {
            node: NodeKind::Capable,
            stale: "legacy-running",
            confirmed: true,
            winner: "native-running",
            native_runs: 1,
        },
    ];
    let pods: Vec<(Case, Pod)> = cases
        .into_iter()
        .map(|case| {
            let (stale, confirmed) = (case.stale, case.confirmed);
            let pod = Pod::start_with(
                PodSpec::fixture("universal-pod.json"),
                Options::new(case.node),
                |volumes| {
                    let dir = volumes["sidecar-kit"].join("state/agent");
                    fs::create_dir_all(&dir).unwrap();
                    fs::write(dir.join("state"), format!("{stale}\n")).unwrap();
                    fs::write(dir.join(".state.tmp.999999"), "native-run").unwrap();
                    if confirmed {
                        fs::write(dir.join("native-confirmed"), "").unwrap();
                    }
                },
            )
            .unwrap();
            (case, pod)
        })
        .collect();
    for (case, pod) in &pods {
        let what = format!(
            "{:?} with stale {} (confirmed {})",
            case.node, case.stale, case.confirmed
        );
        pod.wait_until(&what, T, |s| {
            s.get("app").running && s.get("agent-legacy").running && state_word(pod) == case.winner
        });
        pod.wait_until("one agent", T, |_| live_agents(pod).len() == 1);
        assert_eq!(
            pod.snapshot().get("agent").runs,
            case.native_runs,
            "{what}\n{}",
            pod.report()
        );
        assert!(
            !pod.volume("sidecar-kit")
                .join("state/agent/.state.tmp.999999")
                .exists()
        );
    }
}

#[test]
fn a_crashing_sidecar_is_restarted_by_the_shim_not_the_kubelet() {
    for node in [NodeKind::Capable, NodeKind::Unaware] {
        let copy = if node == NodeKind::Capable {
            "agent"
        } else {
            "agent-legacy"
        };
        let role = if node == NodeKind::Capable {
            "native"
        } else {
            "legacy"
        };
        let pod = start(PodSpec::fixture("universal-pod.json"), node);
        pod.wait_until("the agent runs", T, |s| {
            s.get("app").running && live_agents(&pod).len() == 1
        });
        let runs = pod.snapshot().get(copy).runs;
        let first = live_agents(&pod)[0];
        kubelet::send(first, "KILL");
        let second = pod.wait("the shim restarts the agent", T, |_| {
            live_agents(&pod).into_iter().find(|pid| *pid != first)
        });
        assert_ne!(first, second);
        let snap = pod.snapshot();
        assert_eq!(
            snap.get(copy).runs,
            runs,
            "the kubelet saw no exit\n{}",
            pod.report()
        );
        assert!(snap.get(copy).running);
        let log = pod.logs(copy);
        assert!(
            log.contains("sidecar exited with status 137") && log.contains("restarting in 1.0 s"),
            "{log}"
        );
        assert_log_lines(&log, role);
    }
}

fn job_pod(policy: &str, app_codes: &'static [i32]) -> Pod {
    let mut spec = PodSpec::fixture("legacy-job-pod.json");
    if policy != "Never" {
        // What the engine writes for the same Job with another restartPolicy.
        spec.restart_policy = kubelet::Policy::OnFailure;
        let agent = spec.container_mut("agent");
        let at = agent
            .command
            .iter()
            .position(|a| a == "--pod-restart-policy")
            .unwrap();
        agent.command[at + 1] = policy.to_string();
    }
    let mut opts = Options::new(NodeKind::Capable);
    opts.run_env = Some(Arc::new(move |name: &str, run: u32| {
        if name != "app" {
            return Vec::new();
        }
        let code = app_codes[(run as usize - 1).min(app_codes.len() - 1)];
        vec![("APP_EXIT_CODE".to_string(), code.to_string())]
    }));
    Pod::start(spec, opts).expect("accepted")
}

fn tombstone(pod: &Pod) -> String {
    fs::read_to_string(pod.volume("sidecar-kit").join("tombstones/app")).unwrap_or_default()
}

#[test]
fn job_with_a_legacy_sidecar_completes() {
    let pod = job_pod("Never", &[0]);
    let snap = pod.wait_until("the pod completes", T, |s| {
        matches!(s.phase, Phase::Succeeded | Phase::Failed)
    });
    assert_eq!(snap.phase, Phase::Succeeded, "{}", pod.report());
    assert_eq!(snap.get("app").exits, [0]);
    assert_eq!(
        snap.get("agent").exits,
        [0],
        "the stopped sidecar's copy exits 0"
    );
    assert_eq!(snap.get("agent").termination_message, "legacy");
    assert_eq!(tombstone(&pod), "0\n");
    assert!(live_agents(&pod).is_empty());
    assert_eq!(agent_starts(&pod).len(), 1);
    let log = pod.logs("agent");
    assert!(
        log.contains("app container app exited with 0: finished")
            && log.contains("Job done, exiting 0"),
        "{log}"
    );
    // Stopped within a tombstone poll or two of the app's end.
    let lag = snap.get("agent").ends[0] - snap.get("app").ends[0];
    assert!(lag < Duration::from_secs(2), "{lag:?}");
}

#[test]
fn job_app_failure_under_never_completes() {
    let pod = job_pod("Never", &[3]);
    let snap = pod.wait_until("the pod completes", T, |s| {
        matches!(s.phase, Phase::Succeeded | Phase::Failed)
    });
    assert_eq!(
        snap.phase,
        Phase::Failed,
        "the app failed: so does the pod\n{}",
        pod.report()
    );
    assert_eq!(snap.get("app").exits, [3]);
    assert_eq!(snap.get("agent").exits, [0]);
    assert_eq!(tombstone(&pod), "3\n");
    assert!(
        pod.logs("agent")
            .contains("exited with 3: finished (restartPolicy Never)")
    );
}

#[test]
fn job_app_failure_under_onfailure_waits_for_the_restarted_app() {
    let pod = job_pod("OnFailure", &[3, 0]);
    // The app's first run fails; the kubelet restarts it; the sidecar keeps running meanwhile.
    let snap = pod.wait_until("the app's second run", T, |s| s.get("app").runs == 2);
    assert!(snap.get("agent").running, "{}", pod.report());
    assert_eq!(live_agents(&pod).len(), 1);
    let snap = pod.wait_until("the pod completes", T, |s| {
        matches!(s.phase, Phase::Succeeded | Phase::Failed)
    });
    assert_eq!(snap.phase, Phase::Succeeded, "{}", pod.report());
    assert_eq!(snap.get("app").exits, [3, 0]);
    assert_eq!(snap.get("agent").exits, [0]);
    assert_eq!(snap.get("agent").runs, 1);
    let log = pod.logs("agent");
    assert!(
        log.contains("exited with 3: will be restarted") && log.contains("exited with 0: finished"),
        "{log}"
    );
}

#[test]
fn fixtures_follow_the_contract() {
    // Guard against hand edits drifting from the contract's "Universal wiring".
    let spec = PodSpec::fixture("universal-pod.json");
    let names: Vec<&str> = spec
        .init_containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["sidecar-kit-install", "agent"],
        "install right before the first native copy"
    );
    let install = &spec.init_containers[0];
    assert_eq!(
        install.command,
        ["sidecar-shim", "install", "/sidecar-kit/bin"]
    );
    let native = &spec.init_containers[1];
    assert_eq!(native.restart_policy.as_deref(), Some("Always"));
    assert_eq!(
        &native.command[..5],
        [
            "/sidecar-kit/bin/sidecar-shim",
            "native",
            "--state",
            "/sidecar-kit/state/agent",
            "--"
        ]
    );
    let probe = native.startup_probe.as_ref().unwrap();
    assert_eq!(
        probe.command,
        [
            "/sidecar-kit/bin/sidecar-shim",
            "probe",
            "--state",
            "/sidecar-kit/state/agent"
        ]
    );
    assert_eq!((probe.period_seconds, probe.failure_threshold), (1.0, 60));
    let legacy = spec
        .containers
        .iter()
        .find(|c| c.name == "agent-legacy")
        .unwrap();
    assert_eq!(
        &legacy.command[..8],
        [
            "/sidecar-kit/bin/sidecar-shim",
            "legacy",
            "--state",
            "/sidecar-kit/state/agent",
            "--pod-restart-policy",
            "Always",
            "--",
            "/bin/sh"
        ]
    );
    assert!(legacy.startup_probe.is_none() && !legacy.liveness_probe);
    assert_eq!(
        &legacy.readiness_probe.as_ref().unwrap().command[..5],
        [
            "/sidecar-kit/bin/sidecar-shim",
            "ready",
            "--state",
            "/sidecar-kit/state/agent",
            "--"
        ]
    );
    for c in [install, native, legacy] {
        assert!(
            c.mounts
                .contains(&("sidecar-kit".into(), "/sidecar-kit".into())),
            "{}",
            c.name
        );
    }
    let job = PodSpec::fixture("legacy-job-pod.json");
    let app = job.containers.iter().find(|c| c.name == "app").unwrap();
    assert_eq!(
        &app.command[..7],
        [
            "/sidecar-kit/bin/sidecar-shim",
            "app",
            "--tombstones",
            "/sidecar-kit/tombstones",
            "--name",
            "app",
            "--"
        ]
    );
    let agent = job.containers.iter().find(|c| c.name == "agent").unwrap();
    assert!(agent.command.windows(4).any(|w| w
        == [
            "--tombstones",
            "/sidecar-kit/tombstones",
            "--wait-for",
            "app"
        ]));
    for spec in [&spec, &job, &PodSpec::fixture("universal-pod-noprobe.json")] {
        spec.validate().unwrap();
    }
    assert!(Path::new(kubelet::SHIM).exists());
}

/// The imitation itself: a native sidecar that keeps crashing (no shim around it) is
/// restarted at once the first time, then after the crash-loop back-off (10 s, 20 s, ...
/// scaled). This back-off is why the shim supervises the sidecar instead of exiting with it.
#[test]
fn imitation_backs_off_a_crashing_native_sidecar() {
    let mut spec = PodSpec::fixture("universal-pod.json");
    let agent = spec.container_mut("agent");
    agent.command = vec!["/bin/sh".into(), "-c".into(), "exit 1".into()];
    agent.startup_probe = None;
    let mut opts = Options::new(NodeKind::Capable);
    opts.scale = 0.05; // back-off 0.5 s, then 1 s
    let pod = Pod::start(spec, opts).unwrap();
    let snap = pod.wait_until("four runs", T, |s| s.get("agent").runs >= 4);
    let starts = &snap.get("agent").starts;
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps[0] < Duration::from_millis(300),
        "first restart at once: {gaps:?}"
    );
    assert!(
        gaps[1] >= Duration::from_millis(500) && gaps[1] < Duration::from_millis(900),
        "{gaps:?}"
    );
    assert!(
        gaps[2] >= Duration::from_millis(1000) && gaps[2] < Duration::from_millis(1500),
        "{gaps:?}"
    );
}
