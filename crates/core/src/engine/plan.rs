//! The plan of one pod template, step by step: the pod's own checks and the earlier
//! injection, opt-outs, profile selection, modes, conflicts between profiles, and what they
//! add. Each step returns its result or a [`Skip`] with its reason.

use super::affinity::own_scheduling;
use super::mode::{self, Decision, Ground};
use super::notes::Notes;
use super::outcome::{
    Grounds, ModeDecision, ModeSource, ResourceChange, Skip, SkipCode, TemplateOutcome,
    TemplateResult,
};
use super::wiring::{self, Additions, Chosen};
use super::{Options, finish, optout, select, verify};
use crate::facts::{Availability, Facts, Scheduling};
use crate::patch::PatchOp;
use crate::pod::Template;
use crate::profile::{Mode, Profile, ProfileSet, first_conflict};
use crate::status::{Added, Injection, STATUS_ANNOTATION, Status};
use crate::version::api_server_keeps_field;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one template's planning reads, and the notes it writes.
pub(super) struct Context<'c, 't, 'a> {
    pub t: &'t Template<'a>,
    pub facts: &'c dyn Facts,
    pub opts: &'c Options,
    /// The namespace of the pod: the request's, else the object's, else the template's.
    pub ns: Option<String>,
    pub notes: Notes,
}

/// What the plan changes, before placement: the earlier injection, and what replaces it
/// (nothing, when it is removed).
pub(super) struct Plan {
    /// Everything the earlier injection added.
    pub prev_added: Added,
    pub prev: Option<Status>,
    /// One record per profile applied; none when the earlier injection is removed.
    pub records: Vec<Injection>,
    pub adds: Additions,
}

impl Plan {
    /// Removes the earlier injection, adds nothing.
    fn removal(prev: Status) -> Plan {
        Plan {
            prev_added: prev.all_added(),
            prev: Some(prev),
            records: Vec::new(),
            adds: Additions::default(),
        }
    }
}

pub(super) fn plan_template(
    t: &Template<'_>,
    profiles: &ProfileSet,
    facts: &dyn Facts,
    opts: &Options,
    remove_only: bool,
) -> (TemplateOutcome, Vec<PatchOp>) {
    let ns = opts
        .namespace
        .clone()
        .or_else(|| t.object_namespace.as_deref().map(str::to_string))
        .or_else(|| t.meta.namespace.as_deref().map(str::to_string));
    let mut cx = Context {
        t,
        facts,
        opts,
        ns,
        notes: Notes::default(),
    };
    match cx.plan(profiles, remove_only) {
        Ok(plan) => finish::finish(cx, plan),
        Err(skip) => (cx.outcome(TemplateResult::Skipped(skip), None), Vec::new()),
    }
}

impl Context<'_, '_, '_> {
    /// The outcome of this template, with the notes gathered.
    pub fn outcome(
        self,
        result: TemplateResult,
        resources: Option<ResourceChange>,
    ) -> TemplateOutcome {
        TemplateOutcome {
            spec_pointer: self.t.spec_pointer.clone(),
            kind: self.t.kind.to_string(),
            name: self.t.object_name.as_deref().map(str::to_string),
            namespace: self.ns,
            result,
            warnings: self.notes.warnings,
            considered: self.notes.considered,
            facts: self.notes.facts,
            grounds: self.notes.grounds,
            decisions: self.notes.decisions,
            resources,
        }
    }

    fn plan(&mut self, profiles: &ProfileSet, remove_only: bool) -> Result<Plan, Skip> {
        let prev = self.previous(profiles)?;
        if remove_only {
            return match prev {
                Some(p) => Ok(Plan::removal(p)),
                None => Err(Skip::new(
                    SkipCode::NoProfileMatched,
                    "nothing was injected by sidecar-kit".into(),
                )),
            };
        }
        let ns = self.ns.as_deref();
        optout::pod(self.t, ns, &self.opts.excluded_namespaces)?;
        let ns_labels = ns.and_then(|n| self.facts.namespace_labels(n));
        optout::namespace(ns, ns_labels.as_deref())?;
        let selected = select::profiles(self, profiles, ns_labels.as_deref())?;

        // Where the pod can land, judged on its own constraints: without the node-affinity
        // expressions an earlier injection added (they would narrow the candidates to what
        // that decision chose, and turn it into another one on re-invocation).
        let prev_added = prev.as_ref().map(Status::all_added).unwrap_or_default();
        let sched = own_scheduling(&self.t.spec.scheduling, &prev_added);
        let chosen = self.decide_modes(&selected, &sched)?;
        no_conflicts(&chosen)?;

        if chosen.is_empty() {
            return match prev {
                Some(p) => {
                    self.notes
                        .warn("no profile applies any more: the earlier injection is removed");
                    Ok(Plan {
                        prev_added,
                        prev: Some(p),
                        records: Vec::new(),
                        adds: Additions::default(),
                    })
                }
                None => Err(Skip::new(
                    SkipCode::NoProfileMatched,
                    if profiles.is_empty() {
                        "no profiles are loaded".to_string()
                    } else {
                        "no profile selects this pod".to_string()
                    },
                )),
            };
        }

        let (adds, records) = wiring::build(self.t, chosen, &prev_added, &mut self.notes)?;
        Ok(Plan {
            prev_added,
            prev,
            records,
            adds,
        })
    }

    /// The earlier injection, from the status annotation, where the pod still holds exactly
    /// what it lists.
    fn previous(&mut self, profiles: &ProfileSet) -> Result<Option<Status>, Skip> {
        if let Some(message) = duplicate_container(self.t) {
            return Err(Skip::new(SkipCode::InvalidPod, message));
        }
        let prev = match self.t.meta.annotation(STATUS_ANNOTATION).map(Status::parse) {
            None => return Ok(None),
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                return Err(Skip::new(
                    SkipCode::BadStatus,
                    format!(
                        "annotation {STATUS_ANNOTATION} cannot be read ({e}); remove it (and what it describes) to inject again"
                    ),
                ));
            }
        };
        if let Err(why) = verify::status(self.t, &prev, profiles) {
            let message = format!(
                "annotation {STATUS_ANNOTATION} does not match what its profiles add: {why}; nothing is removed or added (remove the annotation, and by hand what it wrongly lists, to inject again)"
            );
            self.notes.warn(message.clone());
            return Err(Skip::new(SkipCode::UnverifiedStatus, message));
        }
        Ok(Some(prev))
    }

    /// The mode of each selected profile.
    fn decide_modes(
        &mut self,
        selected: &[Arc<Profile>],
        sched: &Scheduling,
    ) -> Result<Vec<Chosen>, Skip> {
        let (api_version, gate) = self.facts.api_server();
        let kept = api_server_keeps_field(api_version.as_ref(), gate);
        if self.opts.explain {
            let grounds = mode::grounds(&kept, self.facts, sched);
            self.notes.facts.extend(grounds);
            let availability = self.facts.availability();
            self.notes.grounds = Some(Grounds {
                api_server_version: api_version.clone(),
                api_server_gate: gate,
                kept: kept.clone(),
                candidates: (availability == Availability::Known)
                    .then(|| self.facts.candidates(sched)),
                availability,
                labeler_lease_fresh: self.facts.labeler_lease_fresh(),
            });
        }
        let annotation_mode = mode::annotated(self.t)?;
        let ground = Ground {
            kept: &kept,
            facts: self.facts,
            sched,
            windows: self.t.spec.windows,
        };
        selected
            .iter()
            .map(|p| {
                let (requested, by) = match (self.opts.mode_override, annotation_mode) {
                    (Some(m), _) => (m, ModeSource::Flag),
                    (None, Some(m)) => (m, ModeSource::Annotation),
                    (None, None) => (p.spec.mode, ModeSource::Profile),
                };
                let fallback = p.spec.fallback.mode();
                let source = mode::Source {
                    by,
                    profile: &p.name,
                };
                let decision = mode::decide(requested, source, fallback, &ground, &mut self.notes);
                if self.opts.explain {
                    self.notes.decisions.push(ModeDecision {
                        profile: p.name.clone(),
                        requested,
                        source: by,
                        fallback,
                        mode: decision.mode,
                        code: decision.code,
                        adjustments: decision.adjustments.clone(),
                        startup_probe: decision.probe,
                        reason: decision.reason.clone(),
                    });
                }
                fit_for_mode(p, &decision)?;
                Ok(Chosen {
                    profile: p.clone(),
                    decision,
                })
            })
            .collect()
    }
}

/// A profile whose containers universal mode cannot wrap is not injected in it.
fn fit_for_mode(p: &Profile, decision: &Decision) -> Result<(), Skip> {
    if decision.mode == Mode::Universal
        && let Some(c) = p.spec.containers.iter().find(|c| c.command.is_none())
    {
        return Err(Skip::new(
            SkipCode::ProfileUnfitForMode,
            format!(
                "profile {} cannot be injected in universal mode: container {:?} has no command to wrap; give its command in the profile",
                p.name, c.name
            ),
        ));
    }
    Ok(())
}

/// Profiles must not collide in one pod.
fn no_conflicts(chosen: &[Chosen]) -> Result<(), Skip> {
    for (i, a) in chosen.iter().enumerate() {
        for b in &chosen[i + 1..] {
            if let Some((what, name)) = first_conflict(&a.profile, &b.profile) {
                return Err(Skip::new(
                    SkipCode::ProfileConflict,
                    format!(
                        "profiles {} and {} both add {what} {name:?} to this pod",
                        a.profile.name, b.profile.name
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Two containers of one name (init and regular containers share one name space): the API
/// server refuses such a pod, and names would no longer say which container is which.
fn duplicate_container(t: &Template<'_>) -> Option<String> {
    let all = t
        .spec
        .init_containers
        .iter()
        .enumerate()
        .map(|(i, c)| ("initContainers", i, c))
        .chain(
            t.spec
                .containers
                .iter()
                .enumerate()
                .map(|(i, c)| ("containers", i, c)),
        );
    let mut seen: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    for (list, i, c) in all {
        if let Some((first_list, first)) = seen.insert(&c.view.name, (list, i)) {
            return Some(format!(
                "container name {:?} is used twice ({first_list}[{first}] and {list}[{i}]); the API server refuses such a pod: rename one of them",
                c.view.name
            ));
        }
    }
    None
}
