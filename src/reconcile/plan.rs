//! The pure half of reconciliation: compare what the files say with what runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::spec::{BroadcastSpec, SpecChange};

/// What to do to make the running set match the desired set. Names are sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Desired but not running: start a supervisor.
    pub start: Vec<String>,
    /// Call-relevant fields changed: the supervisor hangs up and redials.
    pub restart: Vec<String>,
    /// Targets, schedule, `enabled` or redial policy changed: applied without redialing.
    pub update: Vec<String>,
    /// Running but no longer desired (file deleted): hang up and stop.
    pub stop: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
            && self.restart.is_empty()
            && self.update.is_empty()
            && self.stop.is_empty()
    }
}

/// Decides start / restart / update / stop. A change only to `description` or comments is no
/// change at all.
pub fn plan(
    desired: &BTreeMap<String, Arc<BroadcastSpec>>,
    running: &BTreeMap<String, Arc<BroadcastSpec>>,
) -> Plan {
    let mut plan = Plan::default();
    for (name, spec) in desired {
        match running.get(name) {
            None => plan.start.push(name.clone()),
            Some(current) => match current.change_to(spec) {
                SpecChange::None => {}
                SpecChange::Call => plan.restart.push(name.clone()),
                SpecChange::Targets | SpecChange::InPlace => plan.update.push(name.clone()),
            },
        }
    }
    plan.stop = running
        .keys()
        .filter(|name| !desired.contains_key(*name))
        .cloned()
        .collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, to: &str, url: &str, description: &str) -> Arc<BroadcastSpec> {
        let text = format!(
            "description = \"{description}\"\n[sip]\nuser = \"u\"\ndomain = \"d\"\n[call]\nto = \"{to}\"\n[rtmp]\nurl = \"{url}\"\n"
        );
        Arc::new(crate::spec::parse(&format!("{name}.toml"), &text).unwrap())
    }

    fn set(specs: &[Arc<BroadcastSpec>]) -> BTreeMap<String, Arc<BroadcastSpec>> {
        specs.iter().map(|s| (s.name.clone(), s.clone())).collect()
    }

    #[test]
    fn classifies_each_kind_of_difference() {
        let running = set(&[
            spec("same", "1", "rtmp://h/a/k", "x"),
            spec("described", "1", "rtmp://h/a/k", "x"),
            spec("redial", "1", "rtmp://h/a/k", "x"),
            spec("retarget", "1", "rtmp://h/a/k", "x"),
            spec("gone", "1", "rtmp://h/a/k", "x"),
        ]);
        let desired = set(&[
            spec("same", "1", "rtmp://h/a/k", "x"),
            spec("described", "1", "rtmp://h/a/k", "new words"),
            spec("redial", "2", "rtmp://h/a/k", "x"),
            spec("retarget", "1", "rtmp://h/b/k", "x"),
            spec("new", "1", "rtmp://h/a/k", "x"),
        ]);
        assert_eq!(
            plan(&desired, &running),
            Plan {
                start: vec!["new".into()],
                restart: vec!["redial".into()],
                update: vec!["retarget".into()],
                stop: vec!["gone".into()],
            }
        );
    }

    #[test]
    fn equal_sets_need_nothing() {
        let both = set(&[spec("a", "1", "rtmp://h/a/k", "x")]);
        assert!(plan(&both, &both).is_empty());
    }
}
