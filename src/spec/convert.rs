//! Raw TOML → validated [`BroadcastSpec`], collecting every problem with its position.

use std::ops::Range;
use std::time::Duration;

use super::error::Locator;
use super::raw::{self, Located, RawRtmp, RawSpec};
use super::{
    BroadcastSpec, CallSpec, MediaEncryption, OutputPolicy, RedialPolicy, RtmpTarget, SipSpec,
    SpecError, SpecErrors, Transport, broadcast_name, valid_name,
};
use crate::schedule::{CronExpr, MAX_WINDOWS, Schedule, WindowRule};
use crate::secret::{Secret, SecretSource};

/// Whether the call's signalling runs over TLS end to end from us: the transport, or a
/// `sips:` URI for the target or the proxy.
pub(super) fn signalling_is_tls(sip: &SipSpec, to: &str) -> bool {
    let sips = |uri: &str| {
        uri.get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
    };
    sip.transport == Transport::Tls || sips(to) || sip.proxy.as_deref().is_some_and(sips)
}

/// Longest DTMF string accepted: a meeting ID, a passcode and pauses fit easily.
const MAX_DTMF: usize = 128;
/// Longest window accepted; bounds how far back the schedule evaluator must look.
const MAX_WINDOW: Duration = Duration::from_secs(31 * 24 * 3600);

pub(super) fn parse(file: &str, text: &str) -> Result<BroadcastSpec, SpecErrors> {
    let loc = Locator::new(file, text);
    let toml_error = |e: toml::de::Error| {
        let message = scrub_values(e.message().trim_end()).replace('\n', " ");
        SpecErrors(vec![loc.error(e.span(), message)])
    };
    let shape: toml::Table = toml::from_str(text).map_err(toml_error)?;
    let spec_result = if shape.get("rtmp").is_some_and(toml::Value::is_array) {
        toml::from_str::<RawSpec<Vec<Located<RawRtmp>>>>(text).map(RawSpec::normalized)
    } else {
        toml::from_str::<RawSpec<Located<RawRtmp>>>(text).map(RawSpec::normalized)
    };
    let raw = spec_result.map_err(toml_error)?;
    let mut check = Checker {
        loc: Locator::new(file, text),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let spec = check.spec(file, raw);
    if check.errors.is_empty() {
        let mut spec = spec.expect("a spec is built whenever no error was recorded");
        spec.warnings = check.warnings;
        Ok(spec)
    } else {
        check.errors.sort_by_key(|e| (e.line, e.col));
        Err(SpecErrors(check.errors))
    }
}

struct Checker<'a> {
    loc: Locator<'a>,
    errors: Vec<SpecError>,
    warnings: Vec<SpecError>,
}

impl Checker<'_> {
    fn fail(&mut self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.errors.push(self.loc.error(span, message));
    }

    fn spec(&mut self, file: &str, raw: RawSpec<Vec<Located<RawRtmp>>>) -> Option<BroadcastSpec> {
        let name = broadcast_name(file).unwrap_or(file).to_string();
        if !valid_name(&name) {
            self.fail(
                None,
                format!(
                    "broadcast name {name:?} (the file name without .toml) must be 1-64 \
                     characters of A-Z a-z 0-9 . _ - and not start with . or -"
                ),
            );
        }
        let sip = match raw.sip {
            Some(sip) => self.sip(sip.value),
            None => {
                self.fail(None, "missing table [sip]");
                None
            }
        };
        let call = match (raw.call, &sip) {
            (Some(call), _) => {
                let asked = call.value.media_encryption.clone();
                let allow_plain = call.value.allow_sdes_over_plain_signalling == Some(true);
                let mut call = self.call(call.value, sip.as_ref().map(|s| s.domain.as_str()));
                if let (Some(call), Some(sip)) = (call.as_mut(), &sip) {
                    call.media_encryption =
                        self.media_encryption(sip, &call.to, asked, allow_plain);
                }
                call
            }
            (None, _) => {
                self.fail(None, "missing table [call]");
                None
            }
        };
        let schedule = raw.schedule.map(|s| self.schedule(s));
        let rtmp = match raw.rtmp {
            Some(list) => {
                let span = list.span.clone();
                let targets: Vec<_> = list
                    .value
                    .into_iter()
                    .filter_map(|t| self.rtmp(t))
                    .collect();
                if targets.is_empty() && self.errors.is_empty() {
                    self.fail(Some(span), "at least one [[rtmp]] target is required");
                }
                targets
            }
            None => {
                self.fail(
                    None,
                    "missing [[rtmp]]: at least one RTMP target is required",
                );
                Vec::new()
            }
        };
        let redial = raw.redial.map(|r| self.redial(r)).unwrap_or_default();
        let output = raw.output.map(|o| self.output(o)).unwrap_or_default();
        Some(BroadcastSpec {
            name,
            file: file.to_string(),
            description: raw.description,
            enabled: raw.enabled.unwrap_or(true),
            sip: sip?,
            call: call?,
            schedule: schedule.flatten(),
            rtmp,
            redial,
            output,
            warnings: Vec::new(),
        })
    }

    fn sip(&mut self, raw: raw::RawSip) -> Option<SipSpec> {
        let user = self.token(&raw.user, "sip.user");
        let domain = self.host_port(&raw.domain);
        let auth_user = raw
            .auth_user
            .as_ref()
            .map(|a| self.token(a, "sip.auth_user"))
            .unwrap_or(user.clone());
        let password = self.secret(
            ["sip.password", "sip.password_file", "sip.password_env"],
            [raw.password, raw.password_file, raw.password_env],
        );
        for uri in [&raw.registrar, &raw.proxy].into_iter().flatten() {
            self.sip_uri(uri);
        }
        if let Some(name) = &raw.display_name {
            self.bounded(name, "sip.display_name", 128);
        }
        if raw.client_cert_file.is_some() != raw.client_key_file.is_some() {
            let given = raw
                .client_cert_file
                .as_ref()
                .or(raw.client_key_file.as_ref());
            self.fail(
                given.map(|g| g.span.clone()),
                "sip.client_cert_file and sip.client_key_file go together".to_string(),
            );
        }
        Some(SipSpec {
            user: user?,
            domain: domain?,
            auth_user: auth_user?,
            password: password.ok()?,
            register: raw.register.unwrap_or(false),
            registrar: raw.registrar.map(|r| r.value),
            proxy: raw.proxy.map(|p| p.value),
            transport: raw.transport.unwrap_or_default(),
            display_name: raw.display_name.map(|d| d.value),
            ca_file: raw.ca_file.map(|c| c.value.into()),
            client_cert_file: raw.client_cert_file.map(|c| c.value.into()),
            client_key_file: raw.client_key_file.map(|c| c.value.into()),
        })
    }

    fn call(&mut self, raw: raw::RawCall, domain: Option<&str>) -> Option<CallSpec> {
        let to = if raw.to.value.contains(':') {
            self.sip_uri(&raw.to).map(|_| raw.to.value.clone())
        } else {
            self.token(&raw.to, "call.to")
                .map(|user| format!("sip:{user}@{}", domain.unwrap_or("invalid")))
        };
        let dtmf = raw
            .dtmf
            .map(|d| self.dtmf(d))
            .unwrap_or(Some(String::new()));
        let defaulted = |c: &mut Self, d: Option<Located<String>>, default: u64, zero_ok: bool| {
            d.map_or(Some(Duration::from_secs(default)), |d| {
                c.duration(&d, zero_ok)
            })
        };
        let dtmf_delay = defaulted(self, raw.dtmf_delay, 1, true);
        let answer_timeout = defaulted(self, raw.answer_timeout, 60, false);
        let media_timeout = defaulted(self, raw.media_timeout, 30, false);
        Some(CallSpec {
            to: to?,
            dtmf: dtmf?,
            dtmf_method: raw.dtmf_method.unwrap_or_default(),
            dtmf_delay: dtmf_delay?,
            audio: raw.audio.unwrap_or(true),
            video: raw.video.unwrap_or(true),
            answer_timeout: answer_timeout?,
            media_timeout: media_timeout?,
            on_remote_hangup: raw.on_remote_hangup.unwrap_or_default(),
            video_content: raw.video_content.unwrap_or_default(),
            // Resolved against the signalling in `media_encryption`.
            media_encryption: raw
                .media_encryption
                .map_or(MediaEncryption::Off, |m| m.value),
        })
    }

    /// `call.media_encryption` with its default: `prefer` when the signalling is TLS, `off`
    /// otherwise. SDES puts the SRTP keys in the SDP, so SRTP over plain UDP/TCP signalling
    /// hands them to anyone on the path: refused unless the spec accepts it, and warned then.
    fn media_encryption(
        &mut self,
        sip: &SipSpec,
        to: &str,
        asked: Option<Located<MediaEncryption>>,
        allow_plain: bool,
    ) -> MediaEncryption {
        let tls = signalling_is_tls(sip, to);
        let Some(asked) = asked else {
            return if tls {
                MediaEncryption::Prefer
            } else {
                MediaEncryption::Off
            };
        };
        if asked.value == MediaEncryption::Off || tls {
            return asked.value;
        }
        let message = "SRTP keys (SDES) travel in the SDP: over udp/tcp signalling anyone on \
                       the path can read them and decrypt the media; use sip.transport = \"tls\"";
        if allow_plain {
            self.warnings
                .push(self.loc.error(Some(asked.span), message.to_string()));
        } else {
            self.fail(
                Some(asked.span),
                format!("{message}, or set call.allow_sdes_over_plain_signalling = true"),
            );
        }
        asked.value
    }

    fn schedule(&mut self, raw: Located<raw::RawSchedule>) -> Option<Schedule> {
        let raw = raw.value;
        let tz = match jiff::tz::TimeZone::get(&raw.timezone.value) {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.fail(
                    Some(raw.timezone.span.clone()),
                    format!(
                        "unknown time zone {:?} (use an IANA name such as \"Europe/Berlin\")",
                        raw.timezone.value
                    ),
                );
                None
            }
        };
        let lead = raw
            .lead
            .map_or(Some(Duration::ZERO), |l| self.duration(&l, true));
        if raw.windows.value.is_empty() {
            self.fail(
                Some(raw.windows.span.clone()),
                "schedule.windows is empty: a schedule needs at least one window",
            );
        }
        let count = raw.windows.value.len();
        if count > MAX_WINDOWS {
            // Each window is looked at on every day an evaluation scans: keep that bounded.
            self.fail(
                Some(raw.windows.span),
                format!("too many windows ({count}, at most {MAX_WINDOWS})"),
            );
            return None;
        }
        let rules: Vec<Option<WindowRule>> = raw
            .windows
            .value
            .into_iter()
            .map(|w| self.window(w, tz.as_ref()))
            .collect();
        let rules: Option<Vec<WindowRule>> = rules.into_iter().collect();
        tz.as_ref()?; // already reported
        match Schedule::new(&raw.timezone.value, lead?, rules?) {
            Ok(schedule) => Some(schedule),
            Err(message) => {
                self.fail(Some(raw.timezone.span), message);
                None
            }
        }
    }

    fn window(
        &mut self,
        raw: Located<raw::RawWindow>,
        tz: Option<&jiff::tz::TimeZone>,
    ) -> Option<WindowRule> {
        let span = raw.span;
        let w = raw.value;
        let duration = match &w.duration {
            Some(d) => Some(self.duration(d, false)?),
            None => None,
        };
        if let (Some(d), Some(raw_d)) = (duration, &w.duration)
            && d > MAX_WINDOW
        {
            self.fail(
                Some(raw_d.span.clone()),
                "duration is longer than 31 days: split it into several windows",
            );
            return None;
        }
        match (w.cron, w.start) {
            (Some(cron), None) => {
                if let Some(end) = &w.end {
                    self.fail(
                        Some(end.span.clone()),
                        "a cron window takes `duration`, not `end`",
                    );
                    return None;
                }
                let Some(duration) = duration else {
                    self.fail(Some(span), "a cron window needs `duration`");
                    return None;
                };
                match CronExpr::parse(&cron.value) {
                    Ok(cron) => Some(WindowRule::Cron { cron, duration }),
                    Err(e) => {
                        // +1 skips the opening quote of the TOML string.
                        let at = cron.span.start + 1 + e.offset.min(cron.value.len());
                        self.fail(Some(at..at), format!("invalid cron expression: {e}"));
                        None
                    }
                }
            }
            (None, Some(start)) => {
                let tz = tz?;
                let start_at = self.time(&start, tz);
                let end_at = match (w.end, duration) {
                    (Some(end), None) => {
                        let end_at = self.time(&end, tz)?;
                        if start_at.is_some_and(|s| end_at <= s) {
                            self.fail(Some(end.span), "`end` must be after `start`");
                            return None;
                        }
                        Some(end_at)
                    }
                    (None, Some(d)) => start_at.and_then(|s| s.checked_add(d).ok()),
                    (Some(end), Some(_)) => {
                        self.fail(Some(end.span), "give either `end` or `duration`, not both");
                        return None;
                    }
                    (None, None) => {
                        self.fail(Some(span), "a one-off window needs `end` or `duration`");
                        return None;
                    }
                };
                Some(WindowRule::Fixed {
                    start: start_at?,
                    end: end_at?,
                })
            }
            (Some(cron), Some(_)) => {
                self.fail(
                    Some(cron.span),
                    "a window has either `cron` or `start`, not both",
                );
                None
            }
            (None, None) => {
                self.fail(
                    Some(span),
                    "a window needs `cron` + `duration`, or `start` + `end` or `duration`",
                );
                None
            }
        }
    }

    fn time(
        &mut self,
        raw: &Located<toml::Value>,
        tz: &jiff::tz::TimeZone,
    ) -> Option<jiff::Timestamp> {
        let text = match &raw.value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Datetime(dt) if dt.time.is_some() => dt.to_string(),
            _ => {
                self.fail(
                    Some(raw.span.clone()),
                    "expected a date and time such as \"2026-12-24T15:00\"",
                );
                return None;
            }
        };
        match crate::schedule::parse_time(&text, tz) {
            Ok(at) => Some(at),
            Err(e) => {
                self.fail(
                    Some(raw.span.clone()),
                    format!("invalid time {text:?}: {e}"),
                );
                None
            }
        }
    }

    fn rtmp(&mut self, raw: Located<raw::RawRtmp>) -> Option<RtmpTarget> {
        let r = raw.value;
        let stream_key = self.secret(
            [
                "rtmp.stream_key",
                "rtmp.stream_key_file",
                "rtmp.stream_key_env",
            ],
            [r.stream_key, r.stream_key_file, r.stream_key_env],
        );
        // A conflicting key source was reported already; don't also call the key missing.
        let has_key_source = !matches!(stream_key, Ok(None));
        // The publisher's own parser, so `validate` and the daemon never disagree on a URL.
        let url_ok = match crate::rtmp::url::check(&r.url.value, has_key_source) {
            Ok(()) => true,
            Err(e) => {
                let hint = match e {
                    crate::rtmp::url::UrlError::NoStreamKey => {
                        ": add it as the url's last segment or give stream_key_file"
                    }
                    _ => "",
                };
                self.fail(Some(r.url.span.clone()), format!("url: {e}{hint}"));
                false
            }
        };
        let keyframe_interval = r
            .keyframe_interval
            .map_or(Some(Duration::from_secs(4)), |k| self.duration(&k, false));
        let backup_ok = match &r.backup_url {
            Some(backup) => match crate::rtmp::url::check(&backup.value, has_key_source) {
                Ok(()) => true,
                Err(e) => {
                    self.fail(Some(backup.span.clone()), format!("backup_url: {e}"));
                    false
                }
            },
            None => true,
        };
        if !url_ok || !backup_ok {
            return None;
        }
        Some(RtmpTarget {
            url: r.url.value,
            stream_key: stream_key.ok()?,
            audio_codec: r.audio_codec.unwrap_or_default(),
            keyframe_interval: keyframe_interval?,
            ca_file: r.ca_file.map(|c| c.value.into()),
            backup_url: r.backup_url.map(|b| b.value),
        })
    }

    fn output(&mut self, raw: Located<raw::RawOutput>) -> OutputPolicy {
        let o = raw.value;
        let unpublish_after = o
            .unpublish_after
            .as_ref()
            .and_then(|d| self.duration(d, false));
        if let Some(slate) = &o.slate
            && slate.value.trim().is_empty()
        {
            self.fail(Some(slate.span.clone()), "output.slate: an empty path");
        }
        OutputPolicy {
            slate: o.slate.map(|s| s.value.into()),
            before_call: o.before_call.unwrap_or(true),
            unpublish_after,
        }
    }

    fn redial(&mut self, raw: Located<raw::RawRedial>) -> RedialPolicy {
        let defaults = RedialPolicy::default();
        let r = raw.value;
        let initial = r
            .initial
            .as_ref()
            .map_or(Some(defaults.initial), |d| self.duration(d, false));
        let max = r
            .max
            .as_ref()
            .map_or(Some(defaults.max), |d| self.duration(d, false));
        if let (Some(initial), Some(max)) = (initial, max)
            && max < initial
        {
            let at = r
                .max
                .as_ref()
                .or(r.initial.as_ref())
                .map(|d| d.span.clone());
            self.fail(at, "redial.max must not be shorter than redial.initial");
        }
        RedialPolicy {
            initial: initial.unwrap_or(defaults.initial),
            max: max.unwrap_or(defaults.max),
        }
    }

    /// At most one of the inline / file / env sources of one secret.
    fn secret(
        &mut self,
        keys: [&str; 3],
        sources: [Option<Located<String>>; 3],
    ) -> Result<Option<SecretSource>, ()> {
        let given: Vec<(usize, Located<String>)> = sources
            .into_iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .collect();
        if given.len() > 1 {
            let names: Vec<&str> = given.iter().map(|(i, _)| keys[*i]).collect();
            self.fail(
                Some(given[1].1.span.clone()),
                format!("give only one of {}", names.join(", ")),
            );
            return Err(());
        }
        let Some((kind, value)) = given.into_iter().next() else {
            return Ok(None);
        };
        if value.value.is_empty() {
            self.fail(Some(value.span), format!("{} is empty", keys[kind]));
            return Err(());
        }
        Ok(Some(match kind {
            0 => {
                self.warnings.push(self.loc.error(
                    Some(value.span),
                    format!("{} is written inline: prefer {}", keys[0], keys[1]),
                ));
                SecretSource::Inline(Secret::new(value.value))
            }
            1 => SecretSource::File(value.value.into()),
            _ => SecretSource::Env(value.value),
        }))
    }

    fn duration(&mut self, raw: &Located<String>, zero_ok: bool) -> Option<Duration> {
        match humantime::parse_duration(&raw.value) {
            Ok(d) if d.is_zero() && !zero_ok => {
                self.fail(Some(raw.span.clone()), "duration must be greater than 0");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.fail(
                    Some(raw.span.clone()),
                    format!(
                        "invalid duration {:?}: {e} (examples: \"90s\", \"1h 30m\")",
                        raw.value
                    ),
                );
                None
            }
        }
    }

    fn dtmf(&mut self, raw: Located<String>) -> Option<String> {
        if raw.value.chars().count() > MAX_DTMF {
            self.fail(
                Some(raw.span),
                format!("dtmf is longer than {MAX_DTMF} characters"),
            );
            return None;
        }
        for (i, c) in raw.value.char_indices() {
            if !matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d' | ',') {
                let at = raw.span.start + 1 + i;
                self.fail(
                    Some(at..at),
                    format!(
                        "invalid DTMF character {c:?}: use 0-9 * # A-D, and , for a 0.5 s pause"
                    ),
                );
                return None;
            }
        }
        Some(raw.value.to_ascii_uppercase())
    }

    /// A user part or auth name: printable, no spaces, no URI delimiters.
    fn token(&mut self, raw: &Located<String>, key: &str) -> Option<String> {
        let v = &raw.value;
        if v.is_empty() || v.len() > 128 {
            self.fail(
                Some(raw.span.clone()),
                format!("{key} must be 1-128 characters"),
            );
            return None;
        }
        if let Some(c) = v.chars().find(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '@' | '<' | '>' | '"' | ':' | ';')
        }) {
            self.fail(
                Some(raw.span.clone()),
                format!("{key} must not contain {c:?}"),
            );
            return None;
        }
        Some(v.clone())
    }

    fn bounded(&mut self, raw: &Located<String>, key: &str, max: usize) {
        if raw.value.len() > max || raw.value.chars().any(char::is_control) {
            self.fail(
                Some(raw.span.clone()),
                format!("{key} must be at most {max} characters, without control characters"),
            );
        }
    }

    /// `host[:port]`: a DNS name, IPv4, or `[IPv6]`, and an optional port 1-65535.
    fn host_port(&mut self, raw: &Located<String>) -> Option<String> {
        if valid_host_port(&raw.value) {
            Some(raw.value.clone())
        } else {
            self.fail(
                Some(raw.span.clone()),
                format!("sip.domain {:?} is not host[:port]", raw.value),
            );
            None
        }
    }

    fn sip_uri(&mut self, raw: &Located<String>) -> Option<()> {
        match raw.value.parse::<ezk_sip_types::uri::SipUri>() {
            Ok(_) => Some(()),
            Err(_) => {
                self.fail(
                    Some(raw.span.clone()),
                    format!(
                        "{:?} is not a SIP URI (expected sip:user@host[:port])",
                        raw.value
                    ),
                );
                None
            }
        }
    }
}

/// serde's type errors quote the offending value ("invalid type: integer `1234`, expected a
/// string"): for a mistyped `password = 1234` that value is a secret. Drop quoted values from
/// such messages; the position still points at the key.
fn scrub_values(message: &str) -> String {
    if !(message.starts_with("invalid type") || message.starts_with("invalid value")) {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len());
    let mut quote = None;
    for c in message.chars() {
        match (quote, c) {
            (None, '`' | '"') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (Some(_), _) => {}
            (None, _) => out.push(c),
        }
    }
    out.replace("  ", " ").replace(" ,", ",")
}

fn valid_host_port(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    host_ok && port_ok
}
