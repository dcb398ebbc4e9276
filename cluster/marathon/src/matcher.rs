//! The offer matcher: a pure function from offers and the launch queue to a placement plan,
//! with, per queued app, why offers were not used (Marathon's `processedOffersSummary`
//! reasons), so that `/v2/queue` can say why an instance waits.

use std::collections::{BTreeMap, HashMap};

use dcos_types::{Offer, PortRange, Resources, ROLE_ANY};

use crate::constraints::Constraint;
use crate::model::App;

/// Why an offer could not take an instance (names as in Marathon's `/v2/queue`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    UnfulfilledRole,
    UnfulfilledConstraint,
    InsufficientCpus,
    InsufficientMemory,
    InsufficientDisk,
    InsufficientGpus,
    InsufficientPorts,
    DeclinedScarceResources,
}

impl Reject {
    pub const ALL: [Reject; 8] = [
        Reject::UnfulfilledRole,
        Reject::UnfulfilledConstraint,
        Reject::InsufficientCpus,
        Reject::InsufficientMemory,
        Reject::InsufficientDisk,
        Reject::InsufficientGpus,
        Reject::InsufficientPorts,
        Reject::DeclinedScarceResources,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reject::UnfulfilledRole => "UnfulfilledRole",
            Reject::UnfulfilledConstraint => "UnfulfilledConstraint",
            Reject::InsufficientCpus => "InsufficientCpus",
            Reject::InsufficientMemory => "InsufficientMemory",
            Reject::InsufficientDisk => "InsufficientDisk",
            Reject::InsufficientGpus => "InsufficientGpus",
            Reject::InsufficientPorts => "InsufficientPorts",
            Reject::DeclinedScarceResources => "DeclinedScarceResources",
        }
    }
}

/// One app waiting for `count` launches.
pub struct QueuedApp<'a> {
    pub app: &'a App,
    pub count: usize,
    pub constraints: &'a [Constraint],
    /// Per constraint: field value → number of the app's tasks there.
    pub placed: Vec<HashMap<String, usize>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    /// Index into the queue.
    pub app: usize,
    pub role: String,
    pub resources: Resources,
    /// Host ports in the order of the app's port requests.
    pub host_ports: Vec<u16>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfferPlan {
    pub launches: Vec<Launch>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AppOfferStats {
    pub processed: usize,
    /// Offers (of those processed) that took none of this app's instances.
    pub unused: usize,
    pub rejects: BTreeMap<Reject, usize>,
    /// The last reason, in words, for `/v2/queue`.
    pub last_reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct MatchResult {
    /// Per offer, in input order.
    pub offers: Vec<OfferPlan>,
    /// Per queued app, in input order.
    pub stats: Vec<AppOfferStats>,
}

fn role_ok(accepted: &[String], role: &str) -> bool {
    accepted.iter().any(|r| r == role)
}

/// Tries to fit one instance of `app` into `avail` (one role's remaining resources).
fn fit(app: &App, avail: &Resources) -> Result<(Resources, Vec<u16>), (Reject, String)> {
    let need = |what: Reject, want: f64, have: f64, unit: &str| {
        Err((what, format!("needs {want} {unit}, the offer has {have}")))
    };
    if avail.cpus + 1e-6 < app.cpus {
        return need(Reject::InsufficientCpus, app.cpus, avail.cpus, "cpus");
    }
    if avail.mem + 1e-6 < app.mem {
        return need(Reject::InsufficientMemory, app.mem, avail.mem, "MB mem");
    }
    if avail.disk + 1e-6 < app.disk {
        return need(Reject::InsufficientDisk, app.disk, avail.disk, "MB disk");
    }
    if avail.gpus + 1e-6 < app.gpus {
        return need(Reject::InsufficientGpus, app.gpus, avail.gpus, "gpus");
    }
    let requests = app.host_port_requests();
    let mut ports = Vec::with_capacity(requests.len());
    let mut pool = avail.clone();
    for p in requests.iter().flatten() {
        if !pool.contains_port(*p) {
            return Err((
                Reject::InsufficientPorts,
                format!("needs host port {p}, which the offer does not have free"),
            ));
        }
        pool = pool.minus(&Resources {
            ports: vec![PortRange { begin: *p, end: *p }],
            ..Resources::default()
        });
    }
    let dynamic = requests.iter().filter(|r| r.is_none()).count();
    let mut dyn_ports = match pool.take_ports(dynamic) {
        Some(p) => p.into_iter(),
        None => {
            return Err((
                Reject::InsufficientPorts,
                format!(
                    "needs {dynamic} dynamic ports, the offer has {}",
                    pool.port_count()
                ),
            ))
        }
    };
    for r in &requests {
        match r {
            Some(p) => ports.push(*p),
            None => ports.push(dyn_ports.next().unwrap_or(0)),
        }
    }
    let res = Resources {
        cpus: app.cpus,
        mem: app.mem,
        disk: app.disk,
        gpus: app.gpus,
        ports: dcos_types::resources::ports_of(&ports),
    };
    Ok((res, ports))
}

/// Tries to place one instance on the offer's remaining resources.
fn place_one(
    q: &QueuedApp<'_>,
    offer: &Offer,
    remaining: &BTreeMap<String, Resources>,
) -> Result<(String, Resources, Vec<u16>), (Reject, String)> {
    let accepted = q.app.accepted_roles();
    let roles: Vec<&String> = remaining.keys().filter(|r| role_ok(&accepted, r)).collect();
    if roles.is_empty() {
        return Err((
            Reject::UnfulfilledRole,
            format!(
                "accepts roles {:?}, the offer from {} has {:?}",
                accepted,
                offer.hostname,
                remaining.keys().collect::<Vec<_>>()
            ),
        ));
    }
    for (c, placed) in q.constraints.iter().zip(&q.placed) {
        let v = c.field_value(&offer.hostname, &offer.attributes);
        if !c.allows(v.as_deref(), placed) {
            return Err((
                Reject::UnfulfilledConstraint,
                format!(
                    "constraint [{}, {:?}{}] not met on {} ({}={})",
                    c.field,
                    c.op,
                    c.value
                        .as_deref()
                        .map(|v| format!(", {v}"))
                        .unwrap_or_default(),
                    offer.hostname,
                    c.field,
                    v.as_deref().unwrap_or("<missing>")
                ),
            ));
        }
    }
    // Don't spend scarce GPUs on apps that don't need them.
    if q.app.gpus <= 0.0 && roles.iter().all(|r| remaining[*r].gpus > 0.0) {
        return Err((
            Reject::DeclinedScarceResources,
            format!("{} has GPUs, which are kept for GPU apps", offer.hostname),
        ));
    }
    let mut first_err = None;
    // Prefer reserved roles over "*" (use reservations first, as Marathon does).
    let mut ordered = roles.clone();
    ordered.sort_by_key(|r| (r.as_str() == ROLE_ANY) as u8);
    for role in ordered {
        match fit(q.app, &remaining[role]) {
            Ok((res, ports)) => return Ok((role.clone(), res, ports)),
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or((Reject::UnfulfilledRole, "no role fits".into())))
}

/// Places queued instances on offers. Instances of different apps are interleaved
/// round-robin on each offer; at most `max_per_offer` launches per offer.
pub fn match_offers(
    offers: &[Offer],
    queue: &mut [QueuedApp<'_>],
    max_per_offer: usize,
) -> MatchResult {
    let mut result = MatchResult {
        offers: Vec::with_capacity(offers.len()),
        stats: vec![AppOfferStats::default(); queue.len()],
    };
    for offer in offers {
        let mut remaining = offer.resources.clone();
        let mut plan = OfferPlan::default();
        let mut blocked = vec![false; queue.len()];
        let mut used = vec![false; queue.len()];
        let mut considered = vec![false; queue.len()];
        loop {
            let mut progressed = false;
            for (i, q) in queue.iter_mut().enumerate() {
                if q.count == 0 || blocked[i] || plan.launches.len() >= max_per_offer {
                    continue;
                }
                considered[i] = true;
                match place_one(q, offer, &remaining) {
                    Ok((role, res, ports)) => {
                        if let Some(r) = remaining.get_mut(&role) {
                            *r = r.minus(&res);
                        }
                        for (c, placed) in q.constraints.iter().zip(q.placed.iter_mut()) {
                            if let Some(v) = c.field_value(&offer.hostname, &offer.attributes) {
                                *placed.entry(v).or_insert(0) += 1;
                            }
                        }
                        q.count -= 1;
                        used[i] = true;
                        progressed = true;
                        plan.launches.push(Launch {
                            app: i,
                            role,
                            resources: res,
                            host_ports: ports,
                        });
                    }
                    Err((why, text)) => {
                        blocked[i] = true;
                        if !used[i] {
                            let st = &mut result.stats[i];
                            *st.rejects.entry(why).or_insert(0) += 1;
                            st.last_reason = Some(format!("{}: {}", why.as_str(), text));
                        }
                    }
                }
            }
            if !progressed || plan.launches.len() >= max_per_offer {
                break;
            }
        }
        for i in 0..queue.len() {
            if considered[i] {
                result.stats[i].processed += 1;
                if !used[i] {
                    result.stats[i].unused += 1;
                }
            }
        }
        result.offers.push(plan);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcos_types::{AttributeValue, FrameworkId, OfferId};
    use serde_json::json;

    fn offer(host: &str, role: &str, res: Resources) -> Offer {
        let mut resources = BTreeMap::new();
        resources.insert(role.to_string(), res);
        Offer {
            id: OfferId(format!("o-{host}")),
            framework_id: FrameworkId("f".into()),
            agent_id: dcos_types::AgentId(format!("a-{host}")),
            hostname: host.into(),
            resources,
            attributes: BTreeMap::new(),
        }
    }

    fn app(v: serde_json::Value) -> App {
        let mut a = App::from_value(v).unwrap();
        a.normalize();
        a
    }

    fn q<'a>(app: &'a App, count: usize, cs: &'a [Constraint]) -> QueuedApp<'a> {
        QueuedApp {
            app,
            count,
            constraints: cs,
            placed: vec![HashMap::new(); cs.len()],
        }
    }

    fn agent() -> Resources {
        Resources::new(4.0, 4096.0, 10000.0).with_ports([(31000, 31009)])
    }

    #[test]
    fn packs_instances_and_assigns_ports() {
        let a = app(
            json!({"id":"a","cmd":"x","cpus":1,"mem":128,"portDefinitions":[{"port":0},{"port":0}]}),
        );
        let mut queue = [q(&a, 10, &[])];
        let r = match_offers(&[offer("h1", "*", agent())], &mut queue, 100);
        assert_eq!(r.offers[0].launches.len(), 4, "4 cpus");
        assert_eq!(r.offers[0].launches[0].host_ports, vec![31000, 31001]);
        assert_eq!(r.offers[0].launches[1].host_ports, vec![31002, 31003]);
        assert_eq!(queue[0].count, 6);
        assert_eq!(
            r.stats[0].rejects.get(&Reject::InsufficientCpus),
            None,
            "used offer"
        );
    }

    #[test]
    fn impossible_requests_say_why() {
        let a = app(json!({"id":"a","cmd":"x","cpus":100}));
        let mut queue = [q(&a, 1, &[])];
        let r = match_offers(&[offer("h1", "*", agent())], &mut queue, 100);
        assert!(r.offers[0].launches.is_empty());
        assert_eq!(r.stats[0].rejects[&Reject::InsufficientCpus], 1);
        assert!(r.stats[0]
            .last_reason
            .as_deref()
            .unwrap()
            .contains("needs 100 cpus"));
        assert_eq!(r.stats[0].unused, 1);
    }

    #[test]
    fn roles_are_honoured() {
        let plain = app(json!({"id":"a","cmd":"x","cpus":0.5}));
        let public =
            app(json!({"id":"b","cmd":"x","cpus":0.5,"acceptedResourceRoles":["slave_public"]}));
        let offers = [offer("pub", "slave_public", agent())];
        let mut queue = [q(&plain, 1, &[]), q(&public, 1, &[])];
        let r = match_offers(&offers, &mut queue, 100);
        assert_eq!(r.offers[0].launches.len(), 1);
        assert_eq!(r.offers[0].launches[0].app, 1);
        assert_eq!(r.offers[0].launches[0].role, "slave_public");
        assert_eq!(r.stats[0].rejects[&Reject::UnfulfilledRole], 1);
    }

    #[test]
    fn required_ports_must_be_free() {
        let a = app(json!({"id":"a","cmd":"x","cpus":0.1,"requirePorts":true,
            "portDefinitions":[{"port":31005}]}));
        let mut queue = [q(&a, 2, &[])];
        let r = match_offers(&[offer("h1", "*", agent())], &mut queue, 100);
        assert_eq!(r.offers[0].launches.len(), 1, "the port is taken after one");
        assert_eq!(r.offers[0].launches[0].host_ports, vec![31005]);
        let mut queue = [q(&a, 1, &[])];
        let r = match_offers(
            &[offer(
                "h1",
                "*",
                Resources::new(4.0, 4096.0, 0.0).with_ports([(1, 10)]),
            )],
            &mut queue,
            100,
        );
        assert_eq!(r.stats[0].rejects[&Reject::InsufficientPorts], 1);
    }

    #[test]
    fn unique_constraint_spreads() {
        let a = app(json!({"id":"a","cmd":"x","cpus":0.1,"constraints":[["hostname","UNIQUE"]]}));
        let cs = Constraint::parse_all(&a.constraints);
        let mut queue = [q(&a, 3, &cs)];
        let offers = [offer("h1", "*", agent()), offer("h2", "*", agent())];
        let r = match_offers(&offers, &mut queue, 100);
        assert_eq!(r.offers[0].launches.len(), 1);
        assert_eq!(r.offers[1].launches.len(), 1);
        assert_eq!(queue[0].count, 1);
    }

    #[test]
    fn like_constraint_on_attributes() {
        let a = app(json!({"id":"a","cmd":"x","cpus":0.1,"constraints":[["rack","LIKE","r1"]]}));
        let cs = Constraint::parse_all(&a.constraints);
        let mut o1 = offer("h1", "*", agent());
        o1.attributes
            .insert("rack".into(), AttributeValue::Text("r1".into()));
        let mut o2 = offer("h2", "*", agent());
        o2.attributes
            .insert("rack".into(), AttributeValue::Text("r2".into()));
        let mut queue = [q(&a, 2, &cs)];
        let r = match_offers(&[o2, o1], &mut queue, 1);
        assert!(r.offers[0].launches.is_empty());
        assert_eq!(r.offers[1].launches.len(), 1);
        assert_eq!(r.stats[0].rejects[&Reject::UnfulfilledConstraint], 1);
    }

    #[test]
    fn gpu_agents_are_kept_for_gpu_apps() {
        let a = app(json!({"id":"a","cmd":"x","cpus":0.1}));
        let mut res = agent();
        res.gpus = 1.0;
        let mut queue = [q(&a, 1, &[])];
        let r = match_offers(&[offer("g", "*", res)], &mut queue, 100);
        assert!(r.offers[0].launches.is_empty());
        assert_eq!(r.stats[0].rejects[&Reject::DeclinedScarceResources], 1);
    }
}
