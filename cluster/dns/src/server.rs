//! The DNS server: hickory-server's UDP/TCP machinery with our handler. Names in the zone are
//! answered from the current [`RecordSet`] (Mesos-DNS behaviour, contract §1.7); other names
//! are forwarded to the upstream resolvers in order, over the client's transport.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::xfer::Protocol;
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::ServerFuture;
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::labels::normalize_query;
use crate::records::RecordSet;

/// The current record set, shared by the refresher (writer), the DNS handler and the HTTP API.
/// `None` until the first successful rebuild.
#[derive(Clone, Default)]
pub struct Zone(Arc<RwLock<Option<Arc<RecordSet>>>>);

impl Zone {
    pub fn new() -> Zone {
        Zone::default()
    }
    /// The current set (cheap: an `Arc` clone).
    pub fn get(&self) -> Option<Arc<RecordSet>> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    /// Swaps in a new set atomically (the old one is freed outside the lock).
    pub fn set(&self, rs: RecordSet) {
        let rs = Some(Arc::new(rs));
        let old = match self.0.write() {
            Ok(mut g) => std::mem::replace(&mut *g, rs),
            Err(p) => std::mem::replace(&mut *p.into_inner(), rs),
        };
        drop(old);
    }
}

/// Server options (Mesos-DNS keys in brackets).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `domain` (`mesos`).
    pub domain: String,
    /// `ttl` of every answer and the SOA minimum (Mesos-DNS: 60; ours 5 because records follow
    /// the state within a second, see docs/dns.md).
    pub ttl: u32,
    /// `SOAMname`, `SOARname`.
    pub soa_mname: String,
    pub soa_rname: String,
    pub soa_refresh: i32,
    pub soa_retry: i32,
    pub soa_expire: i32,
    /// `resolvers`: upstreams for names outside the zone, tried in order. Empty: REFUSED.
    pub resolvers: Vec<SocketAddr>,
    /// `timeout`: per upstream query.
    pub timeout: Duration,
    /// `SetTruncateBit`.
    pub set_truncate_bit: bool,
    /// How long an idle TCP connection is kept.
    pub tcp_idle_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            domain: "mesos".into(),
            ttl: 5,
            soa_mname: "ns1.mesos".into(),
            soa_rname: "root.ns1.mesos".into(),
            soa_refresh: 60,
            soa_retry: 600,
            soa_expire: 86400,
            resolvers: Vec::new(),
            timeout: Duration::from_secs(5),
            set_truncate_bit: true,
            tcp_idle_timeout: Duration::from_secs(5),
        }
    }
}

/// Parses a resolver `ip` or `ip:port` (`[v6]:port`); port 53 by default.
pub fn parse_resolver(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("resolver {s:?} is not IP or IP:PORT"))
}

/// The request handler. Everything that comes from the network is handled without panics;
/// a failure to answer is logged and the request dropped.
pub struct Handler {
    zone: Zone,
    cfg: Arc<ServerConfig>,
    zone_name: String,
    soa_owner: Name,
    soa: Record,
    ns: Record,
}

fn fqdn(s: &str) -> String {
    format!("{}.", s.trim_end_matches('.').to_ascii_lowercase())
}

impl Handler {
    pub fn new(zone: Zone, cfg: ServerConfig) -> Result<Handler, String> {
        let zone_name = fqdn(&cfg.domain);
        let name = |s: &str| Name::from_ascii(fqdn(s)).map_err(|e| format!("bad name {s:?}: {e}"));
        let soa_owner = name(&cfg.domain)?;
        let mname = name(&cfg.soa_mname)?;
        let rname = name(&cfg.soa_rname.replace('@', "."))?;
        let soa = Record::from_rdata(
            soa_owner.clone(),
            cfg.ttl,
            RData::SOA(SOA::new(
                mname.clone(),
                rname,
                0,
                cfg.soa_refresh,
                cfg.soa_retry,
                cfg.soa_expire,
                cfg.ttl,
            )),
        );
        let ns = Record::from_rdata(soa_owner.clone(), cfg.ttl, RData::NS(NS(mname)));
        Ok(Handler {
            zone,
            cfg: Arc::new(cfg),
            zone_name,
            soa_owner,
            soa,
            ns,
        })
    }

    fn in_zone(&self, name: &str) -> bool {
        name == self.zone_name
            || (name.len() > self.zone_name.len()
                && name.ends_with(&self.zone_name)
                && name.as_bytes()[name.len() - self.zone_name.len() - 1] == b'.')
    }

    fn soa_with_serial(&self, serial: u32) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = soa.data() {
            let s = SOA::new(
                s.mname().clone(),
                s.rname().clone(),
                serial,
                s.refresh(),
                s.retry(),
                s.expire(),
                s.minimum(),
            );
            soa.set_data(RData::SOA(s));
        }
        soa
    }

    /// The answer for a name in the zone: (rcode, answers, authority, additionals).
    pub fn answer_local(&self, query: &Query) -> Answer {
        let qname = query.name().clone();
        let key = normalize_query(&qname.to_ascii());
        let qtype = query.query_type();
        let Some(rs) = self.zone.get() else {
            // Not built yet: no NXDOMAIN storm at start.
            return Answer::rcode(ResponseCode::ServFail);
        };
        let ttl = self.cfg.ttl;
        let soa = self.soa_with_serial(rs.serial);
        let mut ans = Answer::rcode(ResponseCode::NoError);
        let want = |t: RecordType| qtype == t || qtype == RecordType::ANY;
        if let Some(ips) = rs.hosts.get(&key) {
            for ip in ips {
                match ip {
                    IpAddr::V4(v4) if want(RecordType::A) => {
                        ans.answers
                            .push(Record::from_rdata(qname.clone(), ttl, RData::A(A(*v4))))
                    }
                    IpAddr::V6(v6) if want(RecordType::AAAA) => ans.answers.push(
                        Record::from_rdata(qname.clone(), ttl, RData::AAAA(AAAA(*v6))),
                    ),
                    _ => {}
                }
            }
        }
        if want(RecordType::SRV) {
            if let Some(srvs) = rs.srvs.get(&key) {
                let mut seen = std::collections::HashSet::new();
                for s in srvs {
                    let Ok(target) = Name::from_ascii(&s.target) else {
                        continue;
                    };
                    ans.answers.push(Record::from_rdata(
                        qname.clone(),
                        ttl,
                        RData::SRV(SRV::new(0, 1, s.port, target.clone())),
                    ));
                    if seen.insert(s.target.as_str()) {
                        if let Some(ips) = rs.hosts.get(&s.target) {
                            if let Some(IpAddr::V4(v4)) = ips.iter().find(|i| i.is_ipv4()) {
                                ans.additionals.push(Record::from_rdata(
                                    target.clone(),
                                    ttl,
                                    RData::A(A(*v4)),
                                ));
                            }
                            if let Some(IpAddr::V6(v6)) = ips.iter().find(|i| i.is_ipv6()) {
                                ans.additionals.push(Record::from_rdata(
                                    target,
                                    ttl,
                                    RData::AAAA(AAAA(*v6)),
                                ));
                            }
                        }
                    }
                }
            }
        }
        let apex = key == self.zone_name;
        if apex && want(RecordType::SOA) {
            ans.answers.push(soa.clone());
        }
        if apex && want(RecordType::NS) {
            ans.answers.push(self.ns.clone());
        }
        ans.answers.shuffle(&mut rand::thread_rng());
        if ans.answers.is_empty() {
            if qtype == RecordType::SRV {
                // Quirk: SRV with no records is NOERROR, empty, no SOA.
                return ans;
            }
            if !(apex || rs.has_name(&key)) {
                ans.rcode = ResponseCode::NXDomain;
            }
            ans.authority.push(soa);
        }
        let _ = &self.soa_owner;
        ans
    }

    /// Forwards `query` to the upstreams in order, over `protocol`.
    async fn forward(&self, query: &Query, rd: bool, protocol: Protocol) -> Answer {
        if self.cfg.resolvers.is_empty() {
            return Answer::rcode(ResponseCode::Refused);
        }
        let mut msg = Message::new();
        msg.set_id(rand::random())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(rd);
        msg.add_query(query.clone());
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        msg.set_edns(edns);
        let Ok(bytes) = msg.to_vec() else {
            return Answer::rcode(ResponseCode::FormErr);
        };
        for up in &self.cfg.resolvers {
            let r = tokio::time::timeout(
                self.cfg.timeout,
                exchange(*up, &bytes, msg.id(), protocol == Protocol::Tcp),
            )
            .await;
            match r {
                Ok(Ok(mut resp)) => {
                    let mut ans = Answer::rcode(resp.response_code());
                    ans.forwarded = true;
                    ans.truncated = resp.truncated();
                    ans.answers = resp.take_answers();
                    ans.authority = resp.take_name_servers();
                    ans.additionals = resp.take_additionals();
                    return ans;
                }
                Ok(Err(e)) => tracing::debug!(upstream = %up, error = %e, "upstream failed"),
                Err(_) => tracing::debug!(upstream = %up, "upstream timed out"),
            }
        }
        Answer::rcode(ResponseCode::ServFail)
    }
}

/// One query to one upstream; the answer must carry our id.
async fn exchange(up: SocketAddr, bytes: &[u8], id: u16, tcp: bool) -> Result<Message, String> {
    let e = |e: std::io::Error| e.to_string();
    let buf = if tcp {
        let mut s = TcpStream::connect(up).await.map_err(e)?;
        let len = u16::try_from(bytes.len()).map_err(|_| "query too large".to_string())?;
        let mut out = Vec::with_capacity(bytes.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
        s.write_all(&out).await.map_err(e)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(e)?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.map_err(e)?;
        buf
    } else {
        let bind: SocketAddr = if up.is_ipv4() {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sock = UdpSocket::bind(bind).await.map_err(e)?;
        sock.connect(up).await.map_err(e)?;
        sock.send(bytes).await.map_err(e)?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).await.map_err(e)?;
            if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                buf.truncate(n);
                break buf;
            }
        }
    };
    let msg = Message::from_vec(&buf).map_err(|e| e.to_string())?;
    if msg.id() != id || msg.message_type() != MessageType::Response {
        return Err("answer does not match the query".into());
    }
    Ok(msg)
}

/// An answer before encoding.
#[derive(Debug)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
    /// From an upstream (not authoritative).
    pub forwarded: bool,
    /// TC from the upstream.
    pub truncated: bool,
}

impl Answer {
    fn rcode(rcode: ResponseCode) -> Answer {
        Answer {
            rcode,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
            forwarded: false,
            truncated: false,
        }
    }
}

/// Encoded size of a response with these sections.
fn encoded_len(
    header: &Header,
    query: &Query,
    edns: Option<&Edns>,
    answers: &[Record],
    authority: &[Record],
    additionals: &[Record],
) -> usize {
    let mut m = Message::new();
    m.set_header(*header);
    m.add_query(query.clone());
    m.add_answers(answers.iter().cloned());
    m.add_name_servers(authority.iter().cloned());
    m.add_additionals(additionals.iter().cloned());
    if let Some(e) = edns {
        m.set_edns(e.clone());
    }
    m.to_vec().map(|v| v.len()).unwrap_or(usize::MAX)
}

/// Fits the answer into `max` bytes: ADDITIONAL dropped first, then trailing answers (as
/// Mesos-DNS); returns whether anything was cut.
fn fit(header: &Header, query: &Query, edns: Option<&Edns>, ans: &mut Answer, max: usize) -> bool {
    let len = |a: &Answer| {
        encoded_len(
            header,
            query,
            edns,
            &a.answers,
            &a.authority,
            &a.additionals,
        )
    };
    if len(ans) <= max {
        return false;
    }
    ans.additionals.clear();
    if len(ans) <= max {
        return true;
    }
    // Binary search the number of answers kept.
    let all = std::mem::take(&mut ans.answers);
    let (mut lo, mut hi) = (0usize, all.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        ans.answers = all[..mid].to_vec();
        if len(ans) <= max {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    ans.answers = all[..lo].to_vec();
    if len(ans) > max {
        ans.authority.clear();
    }
    true
}

fn with_rcode(mut h: Header, code: ResponseCode) -> Header {
    h.set_response_code(code);
    h
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let req_header = request.header();
        let mut header = Header::response_from_request(req_header);
        let builder = MessageResponseBuilder::from_message_request(request);
        if req_header.message_type() != MessageType::Query {
            return ResponseInfo::from(with_rcode(header, ResponseCode::FormErr));
        }
        if req_header.op_code() != OpCode::Query {
            let h = with_rcode(header, ResponseCode::NotImp);
            let _ = response_handle
                .send_response(builder.build_no_records(h))
                .await;
            return ResponseInfo::from(h);
        }
        let Some(lq) = request.queries().first() else {
            let h = with_rcode(header, ResponseCode::FormErr);
            let _ = response_handle
                .send_response(builder.build_no_records(h))
                .await;
            return ResponseInfo::from(h);
        };
        let query = lq.original().clone();
        let key = normalize_query(&query.name().to_ascii());
        let mut ans = if self.in_zone(&key) {
            self.answer_local(&query)
        } else {
            self.forward(&query, req_header.recursion_desired(), request.protocol())
                .await
        };
        header.set_response_code(ans.rcode);
        header.set_authoritative(!ans.forwarded && ans.rcode != ResponseCode::Refused);
        header.set_recursion_available(!self.cfg.resolvers.is_empty());
        let (max, edns) = match (request.protocol(), request.edns()) {
            (Protocol::Udp, Some(e)) => {
                let size = e.max_payload().clamp(512, 4096);
                let mut out = Edns::new();
                out.set_max_payload(size);
                (size as usize, Some(out))
            }
            (Protocol::Udp, None) => (512, None),
            (_, e) => {
                let out = e.map(|_| {
                    let mut o = Edns::new();
                    o.set_max_payload(4096);
                    o
                });
                (u16::MAX as usize, out)
            }
        };
        // hickory-server writes the question from the request's raw bytes, so answer names
        // cannot point into it: leave room for one uncompressed copy of the name.
        let margin = query.name().len() + 2;
        let cut = fit(
            &header,
            &query,
            edns.as_ref(),
            &mut ans,
            max.saturating_sub(margin),
        );
        header.set_truncated(ans.truncated || (cut && self.cfg.set_truncate_bit));
        let mut builder = builder;
        if let Some(e) = edns {
            builder.edns(e);
        }
        let response = builder.build(
            header,
            ans.answers.iter(),
            ans.authority.iter(),
            std::iter::empty(),
            ans.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::debug!(error = %e, "cannot send a DNS response");
                ResponseInfo::from(with_rcode(header, ResponseCode::ServFail))
            }
        }
    }
}

/// A running DNS server (UDP and TCP on the same address).
pub struct DnsServer {
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    cancel: Box<dyn FnOnce() + Send>,
    task: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Binds UDP and TCP on `listen` (port 0: a free port, the same for both when possible)
    /// and serves `zone`.
    pub async fn start(
        listen: SocketAddr,
        zone: Zone,
        cfg: ServerConfig,
    ) -> anyhow::Result<DnsServer> {
        use anyhow::Context as _;
        let handler = Handler::new(zone, cfg.clone()).map_err(anyhow::Error::msg)?;
        // Same port for both: bind UDP first, then TCP on its port (retry with fresh ports).
        let mut bound = None;
        for _ in 0..20 {
            let udp = UdpSocket::bind(listen)
                .await
                .with_context(|| format!("binding DNS (UDP) to {listen}"))?;
            let addr = udp.local_addr()?;
            match TcpListener::bind(addr).await {
                Ok(tcp) => {
                    bound = Some((udp, tcp));
                    break;
                }
                Err(e) if listen.port() != 0 => {
                    return Err(e).with_context(|| format!("binding DNS (TCP) to {listen}"))
                }
                Err(_) => continue,
            }
        }
        let Some((udp, tcp)) = bound else {
            anyhow::bail!("no free port for DNS on {listen} for both UDP and TCP");
        };
        let udp_addr = udp.local_addr()?;
        let tcp_addr = tcp.local_addr()?;
        let mut server = ServerFuture::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, cfg.tcp_idle_timeout);
        let token = server.shutdown_token().clone();
        let task = tokio::spawn(async move {
            if let Err(e) = server.block_until_done().await {
                tracing::error!(error = %e, "DNS server stopped");
            }
        });
        tracing::info!(%udp_addr, "DNS listening (UDP and TCP)");
        Ok(DnsServer {
            udp_addr,
            tcp_addr,
            cancel: Box::new(move || token.cancel()),
            task,
        })
    }

    pub async fn stop(self) {
        (self.cancel)();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvers_parse() {
        assert_eq!(
            parse_resolver("8.8.8.8").unwrap(),
            "8.8.8.8:53".parse().unwrap()
        );
        assert_eq!(parse_resolver("127.0.0.1:5353").unwrap().port(), 5353);
        assert_eq!(parse_resolver("::1").unwrap().port(), 53);
        assert_eq!(parse_resolver("[::1]:54").unwrap().port(), 54);
        assert!(parse_resolver("dns.google").is_err());
    }

    #[test]
    fn zone_membership() {
        let h = Handler::new(Zone::new(), ServerConfig::default()).unwrap();
        assert!(h.in_zone("mesos."));
        assert!(h.in_zone("web.marathon.mesos."));
        assert!(!h.in_zone("notmesos."));
        assert!(!h.in_zone("example.com."));
    }
}
