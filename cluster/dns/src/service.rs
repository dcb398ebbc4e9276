//! The whole Mesos-DNS role: refresher + DNS server (+ the HTTP API router to mount).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::records::NamingConfig;
use crate::refresh::{Refresher, StateSource, Stats};
use crate::server::{DnsServer, ServerConfig, Zone};

/// Options of the role (`dcosd --listen-dns ADDR --dns-resolvers IP[:PORT],...`).
#[derive(Clone, Debug)]
pub struct DnsOptions {
    /// UDP and TCP listen address (installed masters: port 53; DC/OS Mesos-DNS: 61053).
    pub listen: SocketAddr,
    /// Upstreams for names outside the zone (config.yaml `resolvers`); empty → REFUSED.
    pub resolvers: Vec<SocketAddr>,
    /// Other masters (`ip` or `ip:port`) for `master.mesos` / `masterN.mesos`.
    pub masters: Vec<String>,
    /// Rebuild interval (ours: 250 ms; Mesos-DNS: 60 s, DC/OS 30 s).
    pub refresh: Duration,
    pub naming: NamingConfig,
    pub server: ServerConfig,
}

impl DnsOptions {
    pub fn new(listen: SocketAddr) -> DnsOptions {
        DnsOptions {
            listen,
            resolvers: Vec::new(),
            masters: Vec::new(),
            refresh: Duration::from_millis(250),
            naming: NamingConfig::default(),
            server: ServerConfig::default(),
        }
    }

    /// `/v1/config` (Mesos-DNS Go field names).
    pub fn config_json(&self) -> serde_json::Value {
        let ip_sources: Vec<String> = self
            .naming
            .ip_sources
            .iter()
            .map(|s| format!("{s:?}").to_ascii_lowercase())
            .collect();
        let resolvers: Vec<String> = self.resolvers.iter().map(|r| r.to_string()).collect();
        json!({
            "RefreshSeconds": self.refresh.as_secs_f64(),
            "TTL": self.server.ttl,
            "Port": self.listen.port(),
            "Listener": self.listen.ip().to_string(),
            "Timeout": self.server.timeout.as_secs(),
            "Domain": self.naming.domain,
            "SOAMname": format!("{}.", self.server.soa_mname.trim_end_matches('.')),
            "SOARname": format!("{}.", self.server.soa_rname.trim_end_matches('.')),
            "SOARefresh": self.server.soa_refresh,
            "SOARetry": self.server.soa_retry,
            "SOAExpire": self.server.soa_expire,
            "SOAMinttl": self.server.ttl,
            "Masters": self.masters,
            "Resolvers": resolvers,
            "ZoneResolvers": {},
            "IPSources": ip_sources,
            "RecurseOn": !self.resolvers.is_empty(),
            "ExternalOn": !self.resolvers.is_empty(),
            "DnsOn": true,
            "HttpOn": true,
            "EnforceRFC952": self.naming.enforce_rfc952,
            "SetTruncateBit": self.server.set_truncate_bit,
            "EnumerationOn": true,
        })
    }
}

/// A running Mesos-DNS role.
pub struct DnsService {
    pub server: DnsServer,
    pub zone: Zone,
    pub stats: Arc<Stats>,
    config: serde_json::Value,
    refresher: tokio::task::JoinHandle<()>,
}

impl DnsService {
    /// Builds the first record set (retrying for up to 10 s: no NXDOMAIN storm at start),
    /// binds UDP+TCP and keeps the records fresh.
    pub async fn start(
        mut opts: DnsOptions,
        source: Arc<dyn StateSource>,
    ) -> anyhow::Result<DnsService> {
        opts.server.resolvers = opts.resolvers.clone();
        opts.server.domain = opts.naming.domain.clone();
        if !opts.listen.ip().is_unspecified() && opts.naming.ns_ips.is_empty() {
            opts.naming.ns_ips = vec![opts.listen.ip()];
        }
        if opts.naming.ns_ips.is_empty() {
            opts.naming.ns_ips = vec![IpAddr::from([127, 0, 0, 1])];
        }
        let zone = Zone::new();
        let mut refresher = Refresher::new(
            zone.clone(),
            source,
            opts.naming.clone(),
            opts.masters.clone(),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match refresher.refresh_once().await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    tracing::warn!(error = %e, "DNS: no master state yet; serving SERVFAIL for the zone until there is");
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let stats = refresher.stats.clone();
        let server = DnsServer::start(opts.listen, zone.clone(), opts.server.clone()).await?;
        let refresher = refresher.spawn(opts.refresh);
        Ok(DnsService {
            server,
            zone,
            stats,
            config: opts.config_json(),
            refresher,
        })
    }

    /// The Mesos-DNS HTTP API over this service's records (mount with
    /// `Router::nest("/mesos_dns", svc.http_router())` or serve on its own port).
    pub fn http_router(&self) -> axum::Router {
        crate::http::router(self.zone.clone(), self.config.clone())
    }

    pub async fn stop(self) {
        self.refresher.abort();
        self.server.stop().await;
    }
}
