//! The allocator: Dominant Resource Fairness over a snapshot, as pure logic.
//!
//! [`allocate`] takes a [`Snapshot`] (agents with their available resources by role, frameworks
//! with what they hold, roles with weights and quota, offer filters) and returns an
//! [`AllocationPlan`]: which agent's resources to offer to which framework. Like Mesos's
//! hierarchical DRF allocator it offers coarse-grained: in one cycle all of an agent's available
//! resources that a framework may use go to one framework, picked in this order:
//!
//! 1. roles whose quota guarantee is not yet met come first;
//! 2. then the role with the lowest weighted dominant share (`share / weight`);
//! 3. then, within the role, the framework with the lowest dominant share;
//! 4. ties by framework id.
//!
//! Reserved resources (a role other than `"*"`) go only to frameworks of that role; public
//! agents reserve everything for `slave_public`. Unreserved resources that unmet quota of other
//! roles needs (headroom) are not given to roles without quota. Suppressed frameworks and
//! frameworks with an active filter on an agent (a decline with `refuse_seconds`, covering at
//! least what is available now) are skipped.

use std::collections::{BTreeMap, HashMap};

use dcos_types::{AgentId, FrameworkId, Resources, ROLE_ANY};

/// Below this an offer is not worth making (Mesos: 0.01 cpus or 32 MB).
pub const MIN_CPUS: f64 = 0.01;
pub const MIN_MEM: f64 = 32.0;

/// One agent as the allocator sees it.
#[derive(Clone, Debug)]
pub struct AgentSnapshot {
    pub id: AgentId,
    /// Total resources by role (for the cluster totals behind shares).
    pub total: BTreeMap<String, Resources>,
    /// What is neither used by tasks nor offered, by role.
    pub available: BTreeMap<String, Resources>,
}

/// One framework as the allocator sees it.
#[derive(Clone, Debug)]
pub struct FrameworkSnapshot {
    pub id: FrameworkId,
    /// Roles it may receive reserved resources of; the first is the role its allocation is
    /// charged to.
    pub roles: Vec<String>,
    /// What it holds now (running tasks + outstanding offers).
    pub allocated: Resources,
    /// Suppressed, disconnected or inactive: receives nothing.
    pub suppressed: bool,
    /// Refusals by agent: skip the agent while what it has is covered by the refused resources.
    pub filters: HashMap<AgentId, Resources>,
}

impl FrameworkSnapshot {
    fn primary_role(&self) -> &str {
        self.roles.first().map(String::as_str).unwrap_or(ROLE_ANY)
    }
}

/// Per-role policy.
#[derive(Clone, Debug, Default)]
pub struct RolePolicy {
    /// DRF weight (default 1).
    pub weight: Option<f64>,
    /// Quota guarantee: resources the role is entitled to before roles without quota.
    pub guarantee: Option<Resources>,
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub agents: Vec<AgentSnapshot>,
    pub frameworks: Vec<FrameworkSnapshot>,
    pub roles: BTreeMap<String, RolePolicy>,
}

/// Offer these resources of `agent_id` to `framework_id`.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedOffer {
    pub framework_id: FrameworkId,
    pub agent_id: AgentId,
    pub resources: BTreeMap<String, Resources>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct AllocationPlan {
    pub offers: Vec<PlannedOffer>,
}

/// Dominant share of `alloc` against `total` (max over cpus, mem, disk, gpus).
pub fn dominant_share(alloc: &Resources, total: &Resources) -> f64 {
    let share = |a: f64, t: f64| if t > 0.0 { a / t } else { 0.0 };
    share(alloc.cpus, total.cpus)
        .max(share(alloc.mem, total.mem))
        .max(share(alloc.disk, total.disk))
        .max(share(alloc.gpus, total.gpus))
}

fn scalars(r: &Resources) -> Resources {
    Resources {
        ports: Vec::new(),
        ..r.clone()
    }
}

/// `a` covers `b` on cpus and mem (the headroom check).
fn short_of(a: &Resources, b: &Resources) -> bool {
    a.cpus + 1e-9 < b.cpus || a.mem + 1e-9 < b.mem
}

/// Runs one allocation cycle.
pub fn allocate(snapshot: &Snapshot) -> AllocationPlan {
    let mut plan = AllocationPlan::default();
    if snapshot.frameworks.is_empty() || snapshot.agents.is_empty() {
        return plan;
    }
    // Cluster totals (scalars only) behind the shares.
    let mut total = Resources::default();
    for a in &snapshot.agents {
        for r in a.total.values() {
            total = total.plus(&scalars(r));
        }
    }

    // Role indices and allocations.
    let mut role_index: HashMap<&str, usize> = HashMap::new();
    let mut role_names: Vec<&str> = Vec::new();
    for f in &snapshot.frameworks {
        let role = f.primary_role();
        if !role_index.contains_key(role) {
            role_index.insert(role, role_names.len());
            role_names.push(role);
        }
    }
    let policy = |role: &str| snapshot.roles.get(role);
    let role_weight: Vec<f64> = role_names
        .iter()
        .map(|r| {
            policy(r)
                .and_then(|p| p.weight)
                .filter(|w| *w > 0.0 && w.is_finite())
                .unwrap_or(1.0)
        })
        .collect();
    let role_guarantee: Vec<Option<Resources>> = role_names
        .iter()
        .map(|r| policy(r).and_then(|p| p.guarantee.clone()))
        .collect();
    let mut role_alloc: Vec<Resources> = vec![Resources::default(); role_names.len()];
    let fw_role: Vec<usize> = snapshot
        .frameworks
        .iter()
        .map(|f| role_index.get(f.primary_role()).copied().unwrap_or(0))
        .collect();
    let mut fw_alloc: Vec<Resources> = snapshot
        .frameworks
        .iter()
        .map(|f| scalars(&f.allocated))
        .collect();
    for (i, a) in fw_alloc.iter().enumerate() {
        role_alloc[fw_role[i]] = role_alloc[fw_role[i]].plus(a);
    }
    let mut fw_share: Vec<f64> = fw_alloc.iter().map(|a| dominant_share(a, &total)).collect();
    let mut role_share: Vec<f64> = role_alloc
        .iter()
        .zip(&role_weight)
        .map(|(a, w)| dominant_share(a, &total) / w)
        .collect();

    let unmet_of = |alloc: &Resources, r: usize| -> bool {
        match &role_guarantee[r] {
            Some(g) => short_of(alloc, g),
            None => false,
        }
    };
    let mut unmet: Vec<bool> = (0..role_names.len())
        .map(|r| unmet_of(&role_alloc[r], r))
        .collect();
    // Headroom: unreserved resources still needed by unmet quota.
    let headroom = |role_alloc: &Vec<Resources>| -> Resources {
        let mut h = Resources::default();
        for (r, g) in role_guarantee.iter().enumerate() {
            if let Some(g) = g {
                h = h.plus(&scalars(g).minus(&role_alloc[r]));
            }
        }
        h
    };
    let mut unreserved_left = Resources::default();
    for a in &snapshot.agents {
        if let Some(r) = a.available.get(ROLE_ANY) {
            unreserved_left = unreserved_left.plus(&scalars(r));
        }
    }
    let any_quota = role_guarantee.iter().any(Option::is_some);
    // Reserved roles per framework, and filters indexed by agent.
    let reserved_roles: Vec<Vec<&str>> = snapshot
        .frameworks
        .iter()
        .map(|f| {
            f.roles
                .iter()
                .map(String::as_str)
                .filter(|r| *r != ROLE_ANY)
                .collect()
        })
        .collect();
    let mut filter_index: HashMap<&AgentId, Vec<(usize, &Resources)>> = HashMap::new();
    for (i, f) in snapshot.frameworks.iter().enumerate() {
        for (a, r) in &f.filters {
            filter_index.entry(a).or_default().push((i, r));
        }
    }

    for agent in &snapshot.agents {
        let unreserved = agent.available.get(ROLE_ANY).filter(|r| !r.is_empty());
        let protect = any_quota
            && match unreserved {
                Some(u) => short_of(&unreserved_left.minus(&scalars(u)), &headroom(&role_alloc)),
                None => false,
            };
        let filters = filter_index.get(&agent.id);
        // (framework, key, takes unreserved)
        let mut best: Option<(usize, (u8, f64, f64), bool)> = None;
        for (i, f) in snapshot.frameworks.iter().enumerate() {
            if f.suppressed {
                continue;
            }
            let r = fw_role[i];
            let quota_first = unmet[r];
            let take_unreserved = unreserved.is_some() && (quota_first || !protect);
            let (mut cpus, mut mem) = match (take_unreserved, unreserved) {
                (true, Some(u)) => (u.cpus, u.mem),
                _ => (0.0, 0.0),
            };
            for role in &reserved_roles[i] {
                if let Some(res) = agent.available.get(*role) {
                    cpus += res.cpus;
                    mem += res.mem;
                }
            }
            if cpus < MIN_CPUS && mem < MIN_MEM {
                continue;
            }
            let key = (u8::from(!quota_first), role_share[r], fw_share[i]);
            let better = match &best {
                None => true,
                Some((bi, bk, _)) => {
                    key.0 < bk.0
                        || (key.0 == bk.0
                            && (key.1 < bk.1
                                || (key.1 == bk.1
                                    && (key.2 < bk.2
                                        || (key.2 == bk.2 && f.id < snapshot.frameworks[*bi].id)))))
                }
            };
            if !better {
                continue;
            }
            if let Some(list) = filters {
                if let Some((_, refused)) = list.iter().find(|(fi, _)| *fi == i) {
                    let offer = build_offer(agent, &reserved_roles[i], take_unreserved);
                    let sum = offer
                        .values()
                        .fold(Resources::default(), |acc, r| acc.plus(r));
                    if refused.contains(&sum) {
                        continue;
                    }
                }
            }
            best = Some((i, key, take_unreserved));
        }
        if let Some((i, _, take_unreserved)) = best {
            let offer = build_offer(agent, &reserved_roles[i], take_unreserved);
            let sum = offer
                .values()
                .fold(Resources::default(), |acc, r| acc.plus(&scalars(r)));
            if let Some(u) = offer.get(ROLE_ANY) {
                unreserved_left = unreserved_left.minus(&scalars(u));
            }
            fw_alloc[i] = fw_alloc[i].plus(&sum);
            fw_share[i] = dominant_share(&fw_alloc[i], &total);
            let r = fw_role[i];
            role_alloc[r] = role_alloc[r].plus(&sum);
            role_share[r] = dominant_share(&role_alloc[r], &total) / role_weight[r];
            unmet[r] = unmet_of(&role_alloc[r], r);
            plan.offers.push(PlannedOffer {
                framework_id: snapshot.frameworks[i].id.clone(),
                agent_id: agent.id.clone(),
                resources: offer,
            });
        }
    }
    plan
}

/// What of `agent` a framework with these reserved roles gets.
fn build_offer(
    agent: &AgentSnapshot,
    reserved_roles: &[&str],
    take_unreserved: bool,
) -> BTreeMap<String, Resources> {
    let mut offer = BTreeMap::new();
    for role in reserved_roles {
        if let Some(res) = agent.available.get(*role) {
            if !res.is_empty() {
                offer.insert(role.to_string(), res.clone());
            }
        }
    }
    if take_unreserved {
        if let Some(res) = agent.available.get(ROLE_ANY) {
            if !res.is_empty() {
                offer.insert(ROLE_ANY.to_string(), res.clone());
            }
        }
    }
    offer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, role: &str, r: Resources) -> AgentSnapshot {
        let mut m = BTreeMap::new();
        m.insert(role.to_string(), r);
        AgentSnapshot {
            id: id.into(),
            total: m.clone(),
            available: m,
        }
    }

    fn fw(id: &str, roles: &[&str]) -> FrameworkSnapshot {
        FrameworkSnapshot {
            id: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            allocated: Resources::default(),
            suppressed: false,
            filters: HashMap::new(),
        }
    }

    /// The DRF paper's example: 9 CPUs / 18 GB; A's tasks need {1 CPU, 4 GB}, B's {3 CPU, 1 GB}.
    /// Each framework takes one task out of every offer and returns the rest, as a framework
    /// launching one task per offer does; the cycle repeats until nothing more fits.
    #[test]
    fn drf_worked_example() {
        let task = |f: &str| {
            if f == "A" {
                Resources::new(1.0, 4096.0, 0.0)
            } else {
                Resources::new(3.0, 1024.0, 0.0)
            }
        };
        let mut free = Resources::new(9.0, 18432.0, 0.0);
        let total = free.clone();
        let mut frameworks = vec![fw("A", &["*"]), fw("B", &["*"])];
        let mut launched: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..100 {
            let mut a = agent("s1", "*", total.clone());
            a.available.insert("*".into(), free.clone());
            let snap = Snapshot {
                agents: vec![a],
                frameworks: frameworks.clone(),
                roles: BTreeMap::new(),
            };
            let plan = allocate(&snap);
            let Some(offer) = plan.offers.first() else {
                break;
            };
            let f = offer.framework_id.as_str().to_string();
            let need = task(&f);
            let offered = offer.resources.get("*").cloned().unwrap_or_default();
            let i = frameworks.iter().position(|x| x.id.as_str() == f).unwrap();
            if offered.contains(&need) {
                free = free.minus(&need);
                frameworks[i].allocated = frameworks[i].allocated.plus(&need);
                *launched.entry(f).or_default() += 1;
            } else {
                // Decline: refuse what was offered.
                frameworks[i].filters.insert("s1".into(), offered);
            }
        }
        assert_eq!(launched.get("A"), Some(&3));
        assert_eq!(launched.get("B"), Some(&2));
    }

    #[test]
    fn lowest_share_gets_the_agent_and_weights_count() {
        let mut a = fw("a", &["web"]);
        a.allocated = Resources::new(2.0, 1024.0, 0.0);
        let b = fw("b", &["batch"]);
        let snap = Snapshot {
            agents: vec![agent("s1", "*", Resources::new(4.0, 4096.0, 0.0))],
            frameworks: vec![a.clone(), b.clone()],
            roles: BTreeMap::new(),
        };
        assert_eq!(allocate(&snap).offers[0].framework_id.as_str(), "b");
        // With weight 10, role web's weighted share drops below batch's... b has 0 so b still.
        let mut b2 = b;
        b2.allocated = Resources::new(1.0, 512.0, 0.0);
        let mut roles = BTreeMap::new();
        roles.insert(
            "web".to_string(),
            RolePolicy {
                weight: Some(10.0),
                guarantee: None,
            },
        );
        let snap = Snapshot {
            agents: vec![agent("s1", "*", Resources::new(4.0, 4096.0, 0.0))],
            frameworks: vec![a, b2],
            roles,
        };
        assert_eq!(allocate(&snap).offers[0].framework_id.as_str(), "a");
    }

    #[test]
    fn reservations_go_only_to_their_role() {
        let snap = Snapshot {
            agents: vec![agent(
                "pub",
                "slave_public",
                Resources::new(4.0, 4096.0, 0.0),
            )],
            frameworks: vec![fw("a", &["*"])],
            roles: BTreeMap::new(),
        };
        assert!(allocate(&snap).offers.is_empty());
        let snap = Snapshot {
            agents: vec![agent(
                "pub",
                "slave_public",
                Resources::new(4.0, 4096.0, 0.0),
            )],
            frameworks: vec![fw("a", &["*"]), fw("m", &["slave_public", "*"])],
            roles: BTreeMap::new(),
        };
        let plan = allocate(&snap);
        assert_eq!(plan.offers.len(), 1);
        assert_eq!(plan.offers[0].framework_id.as_str(), "m");
        assert!(plan.offers[0].resources.contains_key("slave_public"));
    }

    #[test]
    fn quota_comes_first_and_headroom_is_kept() {
        let mut roles = BTreeMap::new();
        roles.insert(
            "q".to_string(),
            RolePolicy {
                weight: None,
                guarantee: Some(Resources::new(4.0, 4096.0, 0.0)),
            },
        );
        let mut other = fw("a", &["*"]);
        other.allocated = Resources::default();
        let mut quota = fw("z", &["q"]);
        quota.allocated = Resources::new(1.0, 100.0, 0.0);
        let agents = vec![
            agent("s1", "*", Resources::new(4.0, 4096.0, 0.0)),
            agent("s2", "*", Resources::new(4.0, 4096.0, 0.0)),
        ];
        let snap = Snapshot {
            agents: agents.clone(),
            frameworks: vec![other.clone(), quota.clone()],
            roles: roles.clone(),
        };
        let plan = allocate(&snap);
        assert_eq!(plan.offers[0].framework_id.as_str(), "z");
        // With the quota framework suppressed, the other framework may take only what the
        // headroom leaves: one agent, not both.
        quota.suppressed = true;
        let snap = Snapshot {
            agents,
            frameworks: vec![other, quota],
            roles,
        };
        let plan = allocate(&snap);
        assert_eq!(plan.offers.len(), 1);
    }

    #[test]
    fn filters_and_suppress() {
        let mut a = fw("a", &["*"]);
        a.filters
            .insert("s1".into(), Resources::new(4.0, 4096.0, 0.0));
        let mut b = fw("b", &["*"]);
        b.suppressed = true;
        let snap = Snapshot {
            agents: vec![agent("s1", "*", Resources::new(4.0, 4096.0, 0.0))],
            frameworks: vec![a.clone(), b],
            roles: BTreeMap::new(),
        };
        assert!(allocate(&snap).offers.is_empty());
        // More resources than were refused: the filter no longer applies.
        let snap = Snapshot {
            agents: vec![agent("s1", "*", Resources::new(8.0, 4096.0, 0.0))],
            frameworks: vec![a],
            roles: BTreeMap::new(),
        };
        assert_eq!(allocate(&snap).offers.len(), 1);
    }

    #[test]
    fn tiny_leftovers_are_not_offered() {
        let snap = Snapshot {
            agents: vec![agent("s1", "*", Resources::new(0.001, 1.0, 10.0))],
            frameworks: vec![fw("a", &["*"])],
            roles: BTreeMap::new(),
        };
        assert!(allocate(&snap).offers.is_empty());
    }
}
