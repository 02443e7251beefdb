//! One connection to the SIP next hop for a probe: a connected UDP socket (so an ICMP port
//! unreachable comes back as an error), or a TCP/TLS stream framed by Content-Length.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::sip::Transport;
use crate::sip::core::framing::StreamFramer;
use crate::sip::core::message::{Framed, SipMessage, parse_datagram};

pub(super) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

pub(super) enum Link {
    Udp(UdpSocket),
    Stream {
        stream: Box<dyn ByteStream>,
        framer: StreamFramer,
    },
}

impl Link {
    /// Opens the link to `hop` within `step`. `host` is the name a TLS certificate must carry.
    pub(super) async fn open(
        transport: Transport,
        hop: SocketAddr,
        host: &str,
        ca_file: Option<&PathBuf>,
        step: Duration,
    ) -> Result<(Link, SocketAddr), String> {
        let open = async {
            match transport {
                Transport::Udp => {
                    let any: SocketAddr = if hop.is_ipv4() {
                        SocketAddr::from(([0, 0, 0, 0], 0))
                    } else {
                        SocketAddr::from(([0u16; 8], 0))
                    };
                    let socket = UdpSocket::bind(any)
                        .await
                        .map_err(|e| format!("cannot bind a UDP socket: {e}"))?;
                    socket
                        .connect(hop)
                        .await
                        .map_err(|e| format!("cannot reach {hop}: {e}"))?;
                    let local = socket.local_addr().map_err(|e| e.to_string())?;
                    Ok((Link::Udp(socket), local))
                }
                Transport::Tcp | Transport::Tls => {
                    let tcp = TcpStream::connect(hop)
                        .await
                        .map_err(|e| format!("cannot connect to {hop}: {e}"))?;
                    let local = tcp.local_addr().map_err(|e| e.to_string())?;
                    let stream: Box<dyn ByteStream> = if transport == Transport::Tls {
                        let connector =
                            crate::rtmp::tls::connector(ca_file).map_err(|e| e.to_string())?;
                        Box::new(
                            crate::rtmp::tls::handshake(&connector, host, tcp)
                                .await
                                .map_err(|e| format!("{hop}: {e}"))?,
                        )
                    } else {
                        Box::new(tcp)
                    };
                    let link = Link::Stream {
                        stream,
                        framer: StreamFramer::new(),
                    };
                    Ok((link, local))
                }
            }
        };
        match timeout(step, open).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer from {hop} within {step:?} (connect)")),
        }
    }

    pub(super) async fn send(&mut self, data: &[u8], step: Duration) -> Result<(), String> {
        let sent = match self {
            Link::Udp(socket) => timeout(step, socket.send(data))
                .await
                .map(|r| r.map(|_| ())),
            Link::Stream { stream, .. } => timeout(step, stream.write_all(data)).await,
        };
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(send_error(&e)),
            Err(_) => Err(format!("send stalled for {step:?}")),
        }
    }

    /// The next message from the hop (keep-alives and unparsable datagrams are skipped).
    /// Cancel-safe: the caller bounds it in time.
    pub(super) async fn recv(&mut self) -> Result<Box<SipMessage>, String> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match self {
                Link::Udp(socket) => {
                    let n = socket.recv(&mut buf).await.map_err(|e| send_error(&e))?;
                    if let Ok(Framed::Message(msg, _)) =
                        parse_datagram(buf.get(..n).unwrap_or_default())
                    {
                        return Ok(msg);
                    }
                }
                Link::Stream { stream, framer } => {
                    if let Some(msg) = framer
                        .next_message()
                        .map_err(|e| format!("invalid SIP from the peer: {e}"))?
                    {
                        return Ok(msg);
                    }
                    let n = stream
                        .read(&mut buf)
                        .await
                        .map_err(|e| format!("connection failed: {e}"))?;
                    if n == 0 {
                        return Err("the peer closed the connection".into());
                    }
                    framer
                        .push(buf.get(..n).unwrap_or_default())
                        .map_err(|e| format!("invalid SIP from the peer: {e}"))?;
                }
            }
        }
    }
}

fn send_error(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::ConnectionRefused {
        "nothing listens there (port unreachable)".into()
    } else {
        e.to_string()
    }
}
