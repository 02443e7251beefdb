//! `sipcast status [--api URL]`: the daemon's report as a table.
//!
//! The API is local and plain HTTP, so a dozen lines of HTTP/1.0 over a TcpStream do instead
//! of an HTTP client dependency.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

/// Responses larger than this are refused.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

pub fn main(api: &str) -> ExitCode {
    match fetch(api, "/v1/broadcasts") {
        Ok(body) => match serde_json::from_str::<Value>(&body) {
            Ok(json) => {
                print!("{}", table(&json));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sipcast status: {api} answered something that is not JSON: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("sipcast status: {e}");
            ExitCode::FAILURE
        }
    }
}

/// GET `path` from `api` (`http://host:port`), returning the body of a 200.
pub fn fetch(api: &str, path: &str) -> Result<String, String> {
    let authority = api
        .strip_prefix("http://")
        .ok_or_else(|| format!("{api}: only http:// URLs are supported"))?
        .trim_end_matches('/');
    let mut stream =
        TcpStream::connect(authority).map_err(|e| format!("cannot reach {api}: {e}"))?;
    let timeout = Some(Duration::from_secs(5));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(|e| format!("cannot send to {api}: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut response)
        .map_err(|e| format!("cannot read from {api}: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{api}: malformed HTTP response"))?;
    let status_line = head.lines().next().unwrap_or("");
    if status_line.split(' ').nth(1) != Some("200") {
        return Err(format!("{api}{path}: {status_line}"));
    }
    Ok(body.to_string())
}

/// One row per broadcast, columns sized to fit.
pub fn table(json: &Value) -> String {
    let header = [
        "NAME", "DESIRED", "PHASE", "CALL", "RTMP", "ATTEMPTS", "NOTE",
    ];
    let mut rows: Vec<[String; 7]> = vec![header.map(String::from)];
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    for b in json["broadcasts"].as_array().into_iter().flatten() {
        let rtmp: Vec<String> = b["rtmp"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| text(&t["state"]))
            .collect();
        let call = match b["call"]["sip_status"].as_u64() {
            Some(code) => format!("{} ({code})", text(&b["call"]["state"])),
            None => text(&b["call"]["state"]),
        };
        let preflight_failure = b["preflight"]["failures"]
            .as_array()
            .and_then(|f| f.first())
            .map(|f| {
                format!(
                    "preflight failed: {}: {}",
                    text(&f["check"]),
                    text(&f["cause"])
                )
            });
        let note = if let Some(error) = b["error"].as_str() {
            error.lines().next().unwrap_or("").to_string()
        } else if let Some(failure) = preflight_failure {
            failure
        } else if let Some(at) = b["next_attempt_at"].as_str() {
            format!(
                "next attempt {at}; {}",
                b["call"]["reason"].as_str().unwrap_or("")
            )
        } else {
            b["call"]["reason"].as_str().unwrap_or("").to_string()
        };
        rows.push([
            text(&b["name"]),
            text(&b["desired"]),
            text(&b["phase"]),
            call,
            if rtmp.is_empty() {
                "-".into()
            } else {
                rtmp.join(",")
            },
            b["attempts"].as_u64().unwrap_or(0).to_string(),
            note,
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn a_failed_preflight_is_the_note_before_the_window() {
        let json = serde_json::json!({"broadcasts": [{
            "name": "allhands", "desired": "idle", "phase": "waiting",
            "call": {"state": "idle", "sip_status": null, "reason": null},
            "rtmp": [{"state": "idle"}], "attempts": 0, "error": null, "next_attempt_at": null,
            "preflight": {"ok": false, "checked_at": "2026-12-07T07:59:00Z", "failures": [
                {"check": "rtmp[0]", "cause": "rtmps://a.rtmps.youtube.com/live2/****: target refused publish of the stream key"}
            ]}
        }]});
        let text = table(&json);
        let row = text.lines().nth(1).unwrap();
        assert!(
            row.starts_with("allhands  idle     waiting  idle"),
            "{text}"
        );
        assert!(
            row.ends_with("preflight failed: rtmp[0]: rtmps://a.rtmps.youtube.com/live2/****: target refused publish of the stream key"),
            "{text}"
        );
    }
}
