//! Preflight of one broadcast spec without streaming (`sipcast probe FILE`, and the daemon at
//! `lead` before each scheduled window): are the secrets readable, does the schedule have a
//! window ahead, does the SIP side answer (OPTIONS, or REGISTER with the real credentials), and
//! does every RTMP target accept a publish of its stream key (then unpublished at once)?
//!
//! [`run`] returns a [`Report`], one [`Check`] per line, in a fixed order; [`report`] prints it
//! as a checklist. Every network step is bounded by [`ProbeOptions::timeout`], and no check's
//! text ever contains a password or a stream key.

pub mod report;
pub mod rtmp;
pub mod sip;
mod sip_link;

use std::time::Duration;

use serde::Serialize;

use crate::secret::SecretSource;
use crate::spec::BroadcastSpec;

/// Default bound of each network step (DNS, SIP transaction, TCP/TLS connect, RTMP setup).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a probe runs.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Bound of each network step.
    pub timeout: Duration,
    /// CA certificates for SIP over TLS (the daemon's `tls_ca_file`); the system's when unset.
    pub sip_tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            timeout: DEFAULT_TIMEOUT,
            sip_tls_ca_file: None,
        }
    }
}

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Ok,
    Fail,
    /// Not run, because an earlier check it needs failed (that one carries the cause).
    Skipped,
}

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `spec`, `sip password`, `schedule`, `sip`, `rtmp[0]`, …
    pub check: String,
    pub verdict: Verdict,
    /// What was found (for `ok`) or why it failed; never a secret.
    pub detail: String,
}

impl Check {
    pub fn ok(check: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            verdict: Verdict::Ok,
            detail: detail.into(),
        }
    }

    pub fn fail(check: impl Into<String>, cause: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            verdict: Verdict::Fail,
            detail: cause.into(),
        }
    }

    pub fn skipped(check: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            verdict: Verdict::Skipped,
            detail: why.into(),
        }
    }
}

/// Every check of one probe, in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// All green: nothing failed.
    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.verdict == Verdict::Fail)
    }
}

/// Runs every check on a spec that parsed, at wall time `now`. Checks that need a secret that
/// cannot be read are skipped (the secret's own line fails).
pub async fn run(spec: &BroadcastSpec, options: &ProbeOptions, now: jiff::Timestamp) -> Report {
    let mut checks = Vec::new();
    let password_ok = secret_check(&mut checks, "sip password", spec.sip.password.as_ref());
    let key_ok: Vec<bool> = spec
        .rtmp
        .iter()
        .enumerate()
        .map(|(i, target)| {
            secret_check(
                &mut checks,
                &format!("rtmp[{i}] stream key"),
                target.stream_key.as_ref(),
            )
        })
        .collect();
    checks.push(schedule_check(spec, now));
    checks.push(if password_ok {
        sip::check(&spec.sip, &spec.call, options).await
    } else {
        Check::skipped("sip", "the SIP password cannot be read")
    });
    // The targets are probed one after the other: each is a few round trips, and a probe
    // should look like one careful client, not a burst.
    for (i, target) in spec.rtmp.iter().enumerate() {
        for (url, backup) in target.endpoints() {
            let name = if backup {
                format!("rtmp[{i}] backup")
            } else {
                format!("rtmp[{i}]")
            };
            if !key_ok.get(i).copied().unwrap_or(true) {
                checks.push(Check::skipped(name, "the stream key cannot be read"));
                continue;
            }
            checks.push(rtmp::check(name, url, target, options.timeout).await);
        }
    }
    Report { checks }
}

/// Reads a secret (if the spec names one) and adds its line. Returns whether it is usable.
fn secret_check(checks: &mut Vec<Check>, name: &str, source: Option<&SecretSource>) -> bool {
    let Some(source) = source else {
        return true;
    };
    let origin = match source {
        SecretSource::Inline(_) => "inline in the spec".to_string(),
        SecretSource::File(path) => format!("file {}", path.display()),
        SecretSource::Env(var) => format!("environment variable {var}"),
    };
    match source.read() {
        Ok(_) => {
            checks.push(Check::ok(name, format!("readable ({origin})")));
            true
        }
        Err(error) => {
            checks.push(Check::fail(name, error.to_string()));
            false
        }
    }
}

/// A scheduled spec must have a window now or ahead.
pub fn schedule_check(spec: &BroadcastSpec, now: jiff::Timestamp) -> Check {
    let Some(schedule) = &spec.schedule else {
        return Check::ok(
            "schedule",
            "none: live whenever the file exists and is enabled",
        );
    };
    let tz = schedule.timezone().clone();
    let state = schedule.state_at(now);
    match schedule.windows(now, 1).first() {
        Some(window) if window.start <= now => Check::ok(
            "schedule",
            format!("in a window now, until {}", window.end.to_zoned(tz)),
        ),
        Some(window) => Check::ok(
            "schedule",
            format!(
                "next window {} to {}",
                window.start.to_zoned(tz.clone()),
                window.end.to_zoned(tz)
            ),
        ),
        None if state.in_window => Check::ok("schedule", "in a window now"),
        None => Check::fail("schedule", "no future window"),
    }
}

#[cfg(test)]
mod tests;
