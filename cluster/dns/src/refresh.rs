//! Keeps the [`Zone`] in step with the master: fetch the state, skip when it did not change,
//! rebuild the whole record set and swap it in. On error the previous set stays.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use crate::records::{generate, hostnames, NamingConfig, Snapshot};
use crate::server::Zone;

/// Where the state comes from: the bytes of a Mesos `/master/state` document.
pub trait StateSource: Send + Sync + 'static {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>>;
}

/// The master's own router, called in-process (`GET /master/state`): no socket, no auth.
pub struct RouterSource(pub axum::Router);

impl StateSource for RouterSource {
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>> {
        Box::pin(async move {
            let req = Request::get("/master/state")
                .body(Body::empty())
                .map_err(|e| e.to_string())?;
            let resp = self
                .0
                .clone()
                .oneshot(req)
                .await
                .map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("/master/state answered {}", resp.status()));
            }
            let body = axum::body::to_bytes(resp.into_body(), 1 << 30)
                .await
                .map_err(|e| e.to_string())?;
            Ok(body.to_vec())
        })
    }
}

/// A closure source (tests, benches, embedding).
pub struct FnSource<F>(pub F);

impl<F> StateSource for FnSource<F>
where
    F: Fn() -> Result<Vec<u8>, String> + Send + Sync + 'static,
{
    fn fetch(&self) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + '_>> {
        let r = (self.0)();
        Box::pin(async move { r })
    }
}

/// Figures of the refresher (for logs, benches and `/v1/config`).
#[derive(Debug, Default)]
pub struct Stats {
    pub rebuilds: AtomicU64,
    pub unchanged: AtomicU64,
    pub errors: AtomicU64,
    /// Duration of the last fetch+parse+generate, µs.
    pub last_rebuild_us: AtomicU64,
    pub last_records: AtomicU64,
}

pub struct Refresher {
    pub zone: Zone,
    source: Arc<dyn StateSource>,
    naming: NamingConfig,
    masters: Vec<String>,
    pub stats: Arc<Stats>,
    last_hash: Option<u64>,
    resolved: HashMap<String, (Vec<IpAddr>, Instant)>,
}

impl Refresher {
    pub fn new(
        zone: Zone,
        source: Arc<dyn StateSource>,
        naming: NamingConfig,
        masters: Vec<String>,
    ) -> Refresher {
        Refresher {
            zone,
            source,
            naming,
            masters,
            stats: Arc::new(Stats::default()),
            last_hash: None,
            resolved: HashMap::new(),
        }
    }

    /// One round. `Ok(true)`: a new set was swapped in; `Ok(false)`: the state had not changed.
    pub async fn refresh_once(&mut self) -> Result<bool, String> {
        let started = Instant::now();
        let bytes = self.source.fetch().await?;
        let mut h = DefaultHasher::new();
        bytes.hash(&mut h);
        let hash = h.finish();
        let stale_names = self
            .resolved
            .values()
            .any(|(_, at)| at.elapsed() > RESOLVE_TTL);
        if self.last_hash == Some(hash) && !stale_names {
            self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        let mut snap: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| format!("master state: {e}"))?;
        snap.masters = self.masters.clone();
        self.resolve(&mut snap).await;
        let serial = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let rs = generate(&snap, &self.naming, serial);
        self.stats
            .last_records
            .store(rs.len() as u64, Ordering::Relaxed);
        self.zone.set(rs);
        self.last_hash = Some(hash);
        self.stats.rebuilds.fetch_add(1, Ordering::Relaxed);
        self.stats
            .last_rebuild_us
            .store(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        Ok(true)
    }

    /// Host names that are not IP literals are resolved (cached for a minute, 1 s timeout).
    async fn resolve(&mut self, snap: &mut Snapshot) {
        for name in hostnames(snap) {
            let fresh = self
                .resolved
                .get(&name)
                .filter(|(_, at)| at.elapsed() <= RESOLVE_TTL)
                .map(|(ips, _)| ips.clone());
            let ips = match fresh {
                Some(ips) => ips,
                None => {
                    let r = tokio::time::timeout(
                        Duration::from_secs(1),
                        tokio::net::lookup_host((name.as_str(), 0)),
                    )
                    .await;
                    let ips: Vec<IpAddr> = match r {
                        Ok(Ok(addrs)) => {
                            let mut v: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                            v.dedup();
                            v
                        }
                        _ => Vec::new(),
                    };
                    self.resolved
                        .insert(name.clone(), (ips.clone(), Instant::now()));
                    ips
                }
            };
            snap.host_ips.insert(name, ips);
        }
    }

    /// Refreshes every `interval` until dropped/aborted (never closer than twice the cost of
    /// the last rebuild, so a huge state cannot eat a core).
    pub fn spawn(mut self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let started = Instant::now();
                if let Err(e) = self.refresh_once().await {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "DNS records not refreshed (serving the previous set)");
                }
                let wait = interval.max(started.elapsed() * 2);
                tokio::time::sleep(wait.saturating_sub(started.elapsed())).await;
            }
        })
    }
}

const RESOLVE_TTL: Duration = Duration::from_secs(60);
