//! The sink: nginx with the RTMP module, and what it says it received.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::host::http_get;
use crate::peers::{Process, free_tcp_port};
use crate::{Fallible, LOOPBACK};

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// nginx with application `live` (relays, and records every publish into `recordings/` when
/// asked) and, on an HTTP port, `/stat` with what each stream received (ngx_rtmp_stat_module).
/// Stopped when dropped.
pub struct Nginx {
    rtmp_port: u16,
    http_port: u16,
    _process: Process,
}

impl Nginx {
    /// Starts nginx with its own prefix and config under `dir`; `record`: one FLV file per
    /// publish in [`Nginx::recordings`].
    pub fn start(dir: &Path, record: bool) -> Fallible<Nginx> {
        let prefix = dir.join("nginx");
        let recordings = Nginx::recordings(dir);
        std::fs::create_dir_all(&recordings)
            .map_err(|e| format!("{}: {e}", recordings.display()))?;
        let (rtmp_port, http_port) = (free_tcp_port()?, free_tcp_port()?);
        let p = prefix.display();
        let record = if record {
            format!(
                "record all; record_unique on; record_path {};",
                recordings.display()
            )
        } else {
            "record off;".into()
        };
        // Every temp path inside the prefix: the packaged defaults point at /var/lib/nginx.
        let conf = format!(
            "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\npid {p}/nginx.pid;\n\
             worker_rlimit_nofile 8192;\nerror_log {p}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             rtmp {{ server {{ listen {LOOPBACK}:{rtmp_port}; chunk_size 4096;\n\
               application live {{ live on; {record} }} }} }}\n\
             http {{ access_log off; client_body_temp_path {p}/body; proxy_temp_path {p}/proxy;\n\
               fastcgi_temp_path {p}/fastcgi; uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;\n\
               server {{ listen {LOOPBACK}:{http_port}; location /stat {{ rtmp_stat all; }} }} }}\n"
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let mut command = Command::new("nginx");
        command
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(prefix.join("error.log"));
        let mut process = Process::spawn(command, &prefix.join("stderr.log"))?;
        for _ in 0..100 {
            let up = |port| TcpStream::connect((LOOPBACK, port)).is_ok();
            if up(rtmp_port) && up(http_port) {
                return Ok(Nginx {
                    rtmp_port,
                    http_port,
                    _process: process,
                });
            }
            if !process.alive() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(prefix.join("error.log")).unwrap_or_default();
        Err(format!("nginx did not start:\n{log}"))
    }

    pub fn url(&self, stream: &str) -> String {
        format!("rtmp://{LOOPBACK}:{}/live/{stream}", self.rtmp_port)
    }

    /// Where a recording nginx started in `dir` writes its files.
    pub fn recordings(dir: &Path) -> PathBuf {
        dir.join("nginx").join("recordings")
    }

    /// The recordings of stream `name` by the nginx started in `dir` (nginx names them
    /// `NAME-UNIXTIME.flv`), oldest first.
    pub fn recordings_in(dir: &Path, name: &str) -> Vec<PathBuf> {
        let prefix = format!("{name}-");
        let mut files: Vec<PathBuf> = std::fs::read_dir(Nginx::recordings(dir))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect();
        files.sort();
        files
    }

    /// The streams nginx has now.
    pub fn streams(&self) -> Fallible<Vec<SinkStream>> {
        let (_, reply) = http_get((LOOPBACK, self.http_port).into(), "/stat")
            .ok_or("nginx /stat did not answer")?;
        Ok(reply
            .split("<stream>")
            .skip(1)
            .filter_map(SinkStream::parse)
            .collect())
    }
}

/// One stream as nginx sees it.
#[derive(Debug)]
pub struct SinkStream {
    name: String,
    bytes_in: u64,
    video_codec: Option<String>,
    audio_codec: Option<String>,
    publishing: bool,
}

impl SinkStream {
    /// Reads one `<stream>` element of ngx_rtmp_stat_module's XML.
    fn parse(xml: &str) -> Option<SinkStream> {
        let xml = xml.split("</stream>").next()?;
        let codec = |section: &str| {
            xml.split_once(section)
                .and_then(|(_, rest)| element(rest, "codec"))
                .map(String::from)
        };
        Some(SinkStream {
            name: element(xml, "name")?.to_string(),
            bytes_in: element(xml, "bytes_in")?.parse().ok()?,
            video_codec: codec("<video>"),
            audio_codec: codec("<audio>"),
            publishing: xml.contains("<publishing/>"),
        })
    }
}

/// The text of the first `<name>…</name>` in `xml`.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find('<')?;
    Some(&xml[start..start + len])
}

pub fn find_stream<'a>(streams: &'a [SinkStream], name: &str) -> Option<&'a SinkStream> {
    streams.iter().find(|s| s.name == name)
}

/// nginx has the stream, it is publishing and it carries H.264 and AAC.
pub fn sink_ok(stream: Option<&SinkStream>) -> bool {
    stream.is_some_and(|s| {
        s.publishing
            && s.bytes_in > 0
            && s.video_codec.as_deref() == Some("H264")
            && s.audio_codec.as_deref() == Some("AAC")
    })
}

pub fn describe_sink(stream: Option<&SinkStream>) -> String {
    match stream {
        None => "nothing".into(),
        Some(s) => format!(
            "{:.1} MB{}, video {}, audio {}",
            s.bytes_in as f64 / 1e6,
            if s.publishing {
                " (publishing)"
            } else {
                " (not publishing)"
            },
            s.video_codec.as_deref().unwrap_or("none"),
            s.audio_codec.as_deref().unwrap_or("none")
        ),
    }
}

/// Bytes nginx received from `names` between two snapshots.
pub fn sink_delivered(before: &[SinkStream], after: &[SinkStream], names: &[String]) -> u64 {
    names
        .iter()
        .map(|n| {
            let bytes = |snapshot| find_stream(snapshot, n).map_or(0, |s| s.bytes_in);
            bytes(after).saturating_sub(bytes(before))
        })
        .sum()
}
