//! Splitting a publish URL into what RTMP's `connect` and `publish` need (Adobe RTMP 1.0
//! §7.2.1.1 `connect` carries `app` and `tcUrl`; §7.2.2.6 `publish` carries the stream name).
//!
//! The shape is `rtmp[s]://host[:port]/app[/instance…]/key[?query]`. Ingest servers agree on
//! this much:
//! - the stream key is the last path segment, its query string stays on it (Facebook's
//!   `FB-…?s_bl=1&…`, auth tokens);
//! - everything between host and key is the app, instances included (`live2` for YouTube,
//!   `rtmp` for Facebook, `app` for Twitch, `live/_definst_` for Wowza);
//! - `tcUrl` is the URL up to and including the app, with the port only if it was written.
//!
//! A spec may give the key separately (`stream_key_file` …): then the whole URL path is the app
//! and the key is appended as the last segment. The key is a [`Secret`] and never appears in
//! [`RtmpUrl::redacted`], [`redacted_url`] or an error message.

use crate::secret::Secret;

/// Ports used when the URL names none.
pub const RTMP_DEFAULT_PORT: u16 = 1935;
pub const RTMPS_DEFAULT_PORT: u16 = 443;

/// A publish URL split for RTMP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: TLS, with `host` as the SNI name.
    pub tls: bool,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The `app` of `connect`, without leading or trailing slashes.
    pub app: String,
    /// The `tcUrl` of `connect`: scheme, authority as written, `/app`.
    pub tc_url: String,
    /// The stream name for `publish`, query string included.
    pub stream_key: Secret,
}

/// Why a URL cannot be published to. Never contains the URL's path or key.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UrlError {
    #[error("URL scheme must be rtmp:// or rtmps://")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
    #[error("URL port is not a number from 1 to 65535")]
    Port,
    #[error("user credentials in the URL are not supported")]
    Credentials,
    #[error("URL has no application name (rtmp://host/APP/…)")]
    NoApp,
    #[error("URL has no stream key and none is configured separately")]
    NoStreamKey,
}

/// The URL's parts before splitting the path.
struct Parts<'a> {
    tls: bool,
    scheme: &'a str,
    authority: &'a str,
    host: &'a str,
    port: u16,
    /// Path segments, empty ones (from `//` or a trailing `/`) removed.
    segments: Vec<&'a str>,
    query: Option<&'a str>,
}

fn split(url: &str) -> Result<Parts<'_>, UrlError> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "rtmp" => false,
        "rtmps" => true,
        _ => return Err(UrlError::Scheme),
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    if authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    let (host, port) = split_authority(authority)?;
    let default_port = if tls {
        RTMPS_DEFAULT_PORT
    } else {
        RTMP_DEFAULT_PORT
    };
    Ok(Parts {
        tls,
        scheme,
        authority,
        host,
        port: port.unwrap_or(default_port),
        segments: path.split('/').filter(|s| !s.is_empty()).collect(),
        query: query.filter(|q| !q.is_empty()),
    })
}

fn split_authority(authority: &str) -> Result<(&str, Option<u16>), UrlError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or(UrlError::NoHost)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or(UrlError::Port)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    let port = match port {
        None => None,
        Some(text) => match text.parse::<u16>() {
            Ok(0) | Err(_) => return Err(UrlError::Port),
            Ok(port) => Some(port),
        },
    };
    Ok((host, port))
}

impl RtmpUrl {
    /// Splits `url`; `separate_key`, when given, is the stream key and the whole path the app.
    pub fn parse(url: &str, separate_key: Option<&Secret>) -> Result<RtmpUrl, UrlError> {
        let parts = split(url)?;
        let (app_segments, key) = match separate_key {
            Some(key) => {
                // The URL's own query string, if any, travels with the key like it would have
                // had the key been written into the URL.
                let key = match (parts.query, key.expose().contains('?')) {
                    (Some(query), false) => format!("{}?{query}", key.expose()),
                    (Some(query), true) => format!("{}&{query}", key.expose()),
                    (None, _) => key.expose().to_string(),
                };
                (&parts.segments[..], key)
            }
            None => {
                let (last, app) = parts.segments.split_last().ok_or(UrlError::NoApp)?;
                if app.is_empty() {
                    return Err(UrlError::NoStreamKey);
                }
                let key = match parts.query {
                    Some(query) => format!("{last}?{query}"),
                    None => last.to_string(),
                };
                (app, key)
            }
        };
        if app_segments.is_empty() {
            return Err(UrlError::NoApp);
        }
        if key.is_empty() {
            return Err(UrlError::NoStreamKey);
        }
        let app = app_segments.join("/");
        Ok(RtmpUrl {
            tls: parts.tls,
            host: parts.host.to_string(),
            port: parts.port,
            tc_url: format!("{}://{}/{app}", parts.scheme, parts.authority),
            app,
            stream_key: Secret::new(key),
        })
    }

    /// `tcUrl/****`: what status, logs and errors show.
    pub fn redacted(&self) -> String {
        format!("{}/****", self.tc_url)
    }
}

/// Checks a configured URL offline, without reading the key (for `sipcast validate`): the same
/// rules as [`RtmpUrl::parse`], with any separate key taken as present and valid.
pub fn check(url: &str, has_separate_key: bool) -> Result<(), UrlError> {
    let placeholder = Secret::new("key");
    RtmpUrl::parse(url, has_separate_key.then_some(&placeholder)).map(|_| ())
}

/// The redacted form of a configured URL without reading the key: `rtmps://host/app/****`.
/// Works for URLs that fail to parse too, showing only the scheme and host (or nothing).
pub fn redacted_url(url: &str, has_separate_key: bool) -> String {
    match split(url) {
        Ok(parts) => {
            let app_len = if has_separate_key {
                parts.segments.len()
            } else {
                parts.segments.len().saturating_sub(1)
            };
            let app = parts.segments[..app_len].join("/");
            format!("{}://{}/{app}/****", parts.scheme, parts.authority)
        }
        Err(_) => "(invalid rtmp url)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, key: Option<&str>) -> RtmpUrl {
        RtmpUrl::parse(url, key.map(Secret::new).as_ref()).unwrap()
    }

    #[test]
    fn youtube_with_separate_key() {
        let url = parse(
            "rtmps://a.rtmps.youtube.com/live2",
            Some("abcd-efgh-ijkl-mnop"),
        );
        assert!(url.tls);
        assert_eq!((url.host.as_str(), url.port), ("a.rtmps.youtube.com", 443));
        assert_eq!(url.app, "live2");
        assert_eq!(url.tc_url, "rtmps://a.rtmps.youtube.com/live2");
        assert_eq!(url.stream_key.expose(), "abcd-efgh-ijkl-mnop");
        assert_eq!(url.redacted(), "rtmps://a.rtmps.youtube.com/live2/****");
    }

    #[test]
    fn youtube_key_in_url() {
        let url = parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh", None);
        assert_eq!((url.port, url.app.as_str()), (1935, "live2"));
        assert_eq!(url.stream_key.expose(), "abcd-efgh");
    }

    #[test]
    fn facebook_trailing_slash_and_query_on_the_key() {
        let url = parse(
            "rtmps://live-api-s.facebook.com:443/rtmp/",
            Some("FB-123-0-AbC?s_bl=1&s_ps=1&a=Ab"),
        );
        assert_eq!(url.app, "rtmp");
        assert_eq!(url.tc_url, "rtmps://live-api-s.facebook.com:443/rtmp");
        assert_eq!(url.stream_key.expose(), "FB-123-0-AbC?s_bl=1&s_ps=1&a=Ab");
        let inline = parse(
            "rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-AbC?s_bl=1&s_ps=1",
            None,
        );
        assert_eq!(inline.app, "rtmp");
        assert_eq!(inline.stream_key.expose(), "FB-123-0-AbC?s_bl=1&s_ps=1");
    }

    #[test]
    fn twitch_and_wowza_instance() {
        let twitch = parse("rtmp://live.twitch.tv/app/", Some("live_123_abc"));
        assert_eq!((twitch.app.as_str(), twitch.port), ("app", 1935));
        assert_eq!(twitch.stream_key.expose(), "live_123_abc");
        let wowza = parse("rtmp://wowza.example.com:1936/live/_definst_/cam1", None);
        assert_eq!(wowza.app, "live/_definst_");
        assert_eq!(wowza.port, 1936);
        assert_eq!(wowza.tc_url, "rtmp://wowza.example.com:1936/live/_definst_");
        assert_eq!(wowza.stream_key.expose(), "cam1");
    }

    #[test]
    fn url_query_joins_a_separate_key() {
        let url = parse("rtmp://cdn.example/live?token=t1", Some("k"));
        assert_eq!(url.stream_key.expose(), "k?token=t1");
        let url = parse("rtmp://cdn.example/live?token=t1", Some("k?a=1"));
        assert_eq!(url.stream_key.expose(), "k?a=1&token=t1");
    }

    #[test]
    fn ipv6_and_explicit_ports() {
        let url = parse("rtmp://[::1]:19350/live/key", None);
        assert_eq!((url.host.as_str(), url.port), ("::1", 19350));
        assert_eq!(url.tc_url, "rtmp://[::1]:19350/live");
        let url = parse("RTMPS://127.0.0.1/live/key", None);
        assert!(url.tls);
        assert_eq!(url.port, 443);
    }

    #[test]
    fn errors_never_echo_the_key() {
        let cases = [
            ("http://host/live/secretkey", UrlError::Scheme),
            ("rtmp:///live/secretkey", UrlError::NoHost),
            ("rtmp://host:99999/live/secretkey", UrlError::Port),
            ("rtmp://host:0/live/secretkey", UrlError::Port),
            ("rtmp://user:secretkey@host/live/k", UrlError::Credentials),
            ("rtmp://host/secretkey", UrlError::NoStreamKey),
            ("rtmp://host/", UrlError::NoApp),
        ];
        for (url, expected) in cases {
            let err = RtmpUrl::parse(url, None).unwrap_err();
            assert_eq!(err, expected, "{url}");
            assert!(!err.to_string().contains("secretkey"));
        }
        let err = RtmpUrl::parse("rtmp://host", Some(&Secret::new("k"))).unwrap_err();
        assert_eq!(err, UrlError::NoApp);
    }

    #[test]
    fn offline_check_needs_a_key_somewhere() {
        assert_eq!(check("rtmps://a.rtmps.youtube.com/live2", true), Ok(()));
        assert_eq!(
            check("rtmps://a.rtmps.youtube.com/live2", false),
            Err(UrlError::NoStreamKey)
        );
        assert_eq!(check("rtmp://h/live/k", false), Ok(()));
        assert_eq!(check("srt://h/live", true), Err(UrlError::Scheme));
    }

    #[test]
    fn redacted_url_hides_key_and_query() {
        assert_eq!(
            redacted_url("rtmps://a.rtmps.youtube.com/live2", true),
            "rtmps://a.rtmps.youtube.com/live2/****"
        );
        assert_eq!(
            redacted_url("rtmp://h:1936/live/_definst_/secret?tok=s", false),
            "rtmp://h:1936/live/_definst_/****"
        );
        assert_eq!(redacted_url("nonsense secret", false), "(invalid rtmp url)");
    }
}
