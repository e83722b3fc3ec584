//! Where a check's HTTP request may go: decided per resolved address, before connecting.
//!
//! The rules, in order (the first that decides names itself in the refusal):
//! 1. `link-local` / `deny-list`: 169.254.0.0/16 and fd00:ec2::254 (cloud metadata), and the
//!    operator's `egress_deny`, are refused to every instance — unless the check's grants name
//!    the address by a CIDR or host name.
//! 2. `agent-port`: the agent's own listening addresses and ports (status, health, metrics, OTLP,
//!    DogStatsD) are refused to instances from pod annotations. Operator-owned instances (conf.d,
//!    etcd, `adrt check`, `prometheus.io` autoconfig of the agent's own pod) may reach them: that
//!    is the rule that lets an operator scrape the agent's `/metrics`.
//! 3. Operator-owned instances may go anywhere else.
//! 4. An instance from a pod's annotations may reach what its check's grants name (CIDRs, hosts,
//!    the kubelet), and its target: the pod's own IPs, on the ports its container declares — on
//!    any port when the container declares none (Kubernetes does not require declaring them).
//!    Everything else is refused: `target-port` (the pod's IP, an undeclared port) or `not-target`
//!    (another pod, loopback, the node, the internet).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use serde::Serialize;

/// Whose instance this is, which decides what it may reach.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Reach {
    /// The operator's own config (conf.d, etcd, `adrt check`): trusted, within the deny list.
    #[default]
    Operator,
    /// From a pod's annotations: that pod's IPs, on its container's declared ports (any when none).
    Pod { ips: Vec<IpAddr>, ports: Vec<u16> },
}

/// What a check's grants allow beyond its target (see `manifest::EgressGrant`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Egress {
    pub target: bool,
    pub kubelet: bool,
    /// `(name, port)`, lowercase; `None`: any port.
    pub hosts: Vec<(String, Option<u16>)>,
    pub cidrs: Vec<IpNet>,
}

impl Default for Egress {
    /// The strictest: the discovered target only.
    fn default() -> Self {
        Egress { target: true, kubelet: false, hosts: Vec::new(), cidrs: Vec::new() }
    }
}

impl Egress {
    /// Parses `name` / `name:port` host grants.
    pub fn parse_host(spec: &str) -> Result<(String, Option<u16>), String> {
        let spec = spec.trim().to_ascii_lowercase();
        let (name, port) = match spec.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') || name.starts_with('[') => {
                (name.trim_matches(|c| c == '[' || c == ']').to_string(), Some(port.parse::<u16>().map_err(|_| format!("{spec:?}: bad port"))?))
            }
            _ => (spec.clone(), None),
        };
        if name.is_empty() || name.contains('/') {
            return Err(format!("{spec:?} is not a host name or host:port"));
        }
        Ok((name, port))
    }
}

/// Always refused unless a check's grants name them: the cloud metadata services.
fn link_local() -> [IpNet; 2] {
    [
        IpNet::new(IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16).unwrap(),
        IpNet::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)), 128).unwrap(),
    ]
}

/// A refusal: the rule and what it says about this address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub rule: &'static str,
    pub reason: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused by the egress rule `{}`: {}", self.rule, self.reason)
    }
}

/// What the agent knows of the network, the same for every check.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// The operator's `egress_deny`.
    pub deny: Vec<IpNet>,
    /// The agent's own listening sockets.
    pub own: Vec<SocketAddr>,
    /// This host's interface addresses: an unspecified listen address is reachable on them.
    pub local: Vec<IpAddr>,
    /// Host (lowercase, as the URL spells it) and port of the agent's kubelet.
    pub kubelet: Option<(String, u16)>,
}

impl Network {
    /// May an instance of this `reach`, under `egress`, connect to `addr`, which `host` (the
    /// URL's host, lowercase) resolved to?
    pub fn decide(&self, egress: &Egress, reach: &Reach, host: &str, addr: SocketAddr) -> Result<(), Denial> {
        let ip = addr.ip().to_canonical();
        let port = addr.port();
        let by_cidr = egress.cidrs.iter().any(|net| net.contains(&ip));
        let by_name = egress.hosts.iter().any(|(name, p)| name == host && p.is_none_or(|p| p == port))
            || (egress.kubelet && self.kubelet.as_ref().is_some_and(|(h, p)| h == host && *p == port));
        if !(by_cidr || by_name) {
            if link_local().iter().any(|net| net.contains(&ip)) {
                return Err(Denial { rule: "link-local", reason: format!("{ip} is link-local (cloud metadata)") });
            }
            if let Some(net) = self.deny.iter().find(|net| net.contains(&ip)) {
                return Err(Denial { rule: "deny-list", reason: format!("{ip} is in the operator's egress_deny {net}") });
            }
        }
        let Reach::Pod { ips, ports } = reach else { return Ok(()) };
        if self.is_own(ip, port) {
            return Err(Denial { rule: "agent-port", reason: format!("{ip}:{port} is the agent's own listening port") });
        }
        if by_cidr || by_name {
            return Ok(());
        }
        let is_target = ips.iter().any(|own| own.to_canonical() == ip);
        if is_target && !egress.target {
            return Err(Denial {
                rule: "not-target",
                reason: format!("{ip} is the pod's own address, but the check is granted no egress to its target (egress.target = false)"),
            });
        }
        if is_target {
            if ports.is_empty() || ports.contains(&port) {
                return Ok(());
            }
            let declared: Vec<String> = ports.iter().map(u16::to_string).collect();
            return Err(Denial {
                rule: "target-port",
                reason: format!("port {port} is not one the container declares ({})", declared.join(", ")),
            });
        }
        let what = if ip.is_loopback() { "loopback, " } else { "" };
        Err(Denial {
            rule: "not-target",
            reason: format!("{ip} is {what}not the address of the pod the instance came from (nor granted to the check)"),
        })
    }

    fn is_own(&self, ip: IpAddr, port: u16) -> bool {
        self.own.iter().any(|own| {
            own.port() == port
                && (own.ip().to_canonical() == ip || (own.ip().is_unspecified() && (ip.is_loopback() || self.local.contains(&ip))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn network() -> Network {
        Network {
            deny: vec!["10.96.0.0/12".parse().unwrap()],
            own: vec![addr("127.0.0.1:5002"), addr("0.0.0.0:5555")],
            local: vec!["10.0.0.5".parse().unwrap()],
            kubelet: Some(("10.0.0.5".into(), 10250)),
        }
    }

    fn pod(ports: &[u16]) -> Reach {
        Reach::Pod { ips: vec!["10.244.1.7".parse().unwrap()], ports: ports.to_vec() }
    }

    fn rule(result: Result<(), Denial>) -> &'static str {
        result.err().map_or("allowed", |d| d.rule)
    }

    #[test]
    fn pod_instances_reach_their_pod_only() {
        let (net, egress) = (network(), Egress::default());
        assert_eq!(rule(net.decide(&egress, &pod(&[80]), "10.244.1.7", addr("10.244.1.7:80"))), "allowed");
        assert_eq!(rule(net.decide(&egress, &pod(&[]), "10.244.1.7", addr("10.244.1.7:9113"))), "allowed");
        assert_eq!(rule(net.decide(&egress, &pod(&[80]), "10.244.1.7", addr("10.244.1.7:22"))), "target-port");
        for other in ["10.244.1.8:80", "127.0.0.1:80", "10.0.0.5:10250", "8.8.8.8:80"] {
            assert_eq!(rule(net.decide(&egress, &pod(&[80]), "x", addr(other))), "not-target", "{other}");
        }
        let no_target = Egress { target: false, ..Egress::default() };
        let denial = net.decide(&no_target, &pod(&[80]), "x", addr("10.244.1.7:80")).unwrap_err();
        assert!(denial.rule == "not-target" && denial.reason.contains("egress.target = false"), "{denial}");
        // An IPv4-mapped IPv6 spelling is the same address.
        assert_eq!(rule(net.decide(&egress, &pod(&[80]), "x", addr("[::ffff:10.244.1.7]:80"))), "allowed");
        assert_eq!(rule(net.decide(&egress, &pod(&[80]), "x", addr("[::ffff:169.254.169.254]:80"))), "link-local");
    }

    #[test]
    fn metadata_the_deny_list_and_the_agents_ports_need_an_explicit_grant() {
        let net = network();
        let operator = Reach::Operator;
        let egress = Egress::default();
        assert_eq!(rule(net.decide(&egress, &operator, "169.254.169.254", addr("169.254.169.254:80"))), "link-local");
        assert_eq!(rule(net.decide(&egress, &operator, "x", addr("[fd00:ec2::254]:80"))), "link-local");
        assert_eq!(rule(net.decide(&egress, &operator, "x", addr("10.96.0.1:443"))), "deny-list");
        // The operator's own configs may scrape the agent; a pod's may not, even its own IP.
        assert_eq!(rule(net.decide(&egress, &operator, "127.0.0.1", addr("127.0.0.1:5002"))), "allowed");
        let agent_pod = Reach::Pod { ips: vec!["10.0.0.5".parse().unwrap()], ports: vec![] };
        assert_eq!(rule(net.decide(&egress, &agent_pod, "10.0.0.5", addr("10.0.0.5:5555"))), "agent-port");
        assert_eq!(rule(net.decide(&egress, &pod(&[]), "localhost", addr("127.0.0.1:5555"))), "agent-port");
        // Grants: a CIDR naming the metadata range, a host name, the kubelet.
        let granted = Egress {
            cidrs: vec!["169.254.169.254/32".parse().unwrap()],
            hosts: vec![("api.internal".into(), Some(443))],
            kubelet: true,
            ..Egress::default()
        };
        assert_eq!(rule(net.decide(&granted, &pod(&[80]), "x", addr("169.254.169.254:80"))), "allowed");
        assert_eq!(rule(net.decide(&granted, &pod(&[80]), "api.internal", addr("10.1.2.3:443"))), "allowed");
        assert_eq!(rule(net.decide(&granted, &pod(&[80]), "api.internal", addr("10.1.2.3:80"))), "not-target");
        assert_eq!(rule(net.decide(&granted, &pod(&[80]), "10.0.0.5", addr("10.0.0.5:10250"))), "allowed");
    }

    #[test]
    fn host_grants_parse() {
        assert_eq!(Egress::parse_host("API.internal:443"), Ok(("api.internal".into(), Some(443))));
        assert_eq!(Egress::parse_host("vault"), Ok(("vault".into(), None)));
        assert_eq!(Egress::parse_host("[fd00::1]:80"), Ok(("fd00::1".into(), Some(80))));
        assert!(Egress::parse_host("vault:http").is_err());
        assert!(Egress::parse_host("http://vault").is_err());
    }
}
