//! Which addresses webhook requests may reach. Only http and https URLs without credentials;
//! when `webhooks.allowed_hosts` is set, only those hosts; and never an internal address
//! (loopback, private, link-local, cloud metadata, ...) unless its network is listed in
//! `webhooks.allowed_networks`. Host names are resolved and every address is checked before a
//! connection opens, by the resolver the HTTP client uses itself, so a name cannot resolve to
//! a public address when checked and to 169.254.169.254 when connected.

use crate::config::Webhooks;
use ipnet::IpNet;
use reqwest_tls::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use url::{Host, Url};

/// Why an endpoint URL or address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the URL is not valid: {0}")]
    Invalid(String),
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("credentials in the URL are not allowed (sign with the endpoint's secret instead)")]
    Credentials,
    #[error("host {0} is not in webhooks.allowed_hosts")]
    HostNotAllowed(String),
    #[error(
        "{host} is {addr}, an internal address (loopback, private, link-local or metadata); \
         list its network in webhooks.allowed_networks to allow it"
    )]
    Internal { host: String, addr: IpAddr },
    #[error("{0} does not resolve to any address")]
    Unresolved(String),
}

/// The address rules, from `[webhooks]`.
#[derive(Debug, Clone)]
pub struct Guard {
    allowed_hosts: Vec<String>,
    allowed_networks: Vec<IpNet>,
}

impl Guard {
    pub fn new(w: &Webhooks) -> Guard {
        Guard {
            allowed_hosts: w.allowed_hosts.clone(),
            allowed_networks: w.networks(),
        }
    }

    /// The checks that need no lookup: scheme, credentials, allowed hosts, and an address
    /// written in the URL.
    pub fn check_url(&self, raw: &str) -> Result<Url, Refusal> {
        let url = Url::parse(raw.trim()).map_err(|e| Refusal::Invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        let host = match url.host() {
            Some(Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
            Some(Host::Ipv4(a)) => a.to_string(),
            Some(Host::Ipv6(a)) => a.to_string(),
            None => return Err(Refusal::Invalid("the URL names no host".into())),
        };
        if !self.host_allowed(&host) {
            return Err(Refusal::HostNotAllowed(host));
        }
        match url.host() {
            Some(Host::Ipv4(a)) => self.check_addr(&host, IpAddr::V4(a))?,
            Some(Host::Ipv6(a)) => self.check_addr(&host, IpAddr::V6(a))?,
            _ => {}
        }
        Ok(url)
    }

    /// `check_url`, then the host's addresses as they resolve now (an admin registering an
    /// endpoint hears at once that it points inside).
    pub async fn check_url_resolved(&self, raw: &str) -> Result<Url, Refusal> {
        let url = self.check_url(raw)?;
        if let Some(Host::Domain(d)) = url.host() {
            self.resolve(d).await?;
        }
        Ok(url)
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty()
            || self
                .allowed_hosts
                .iter()
                .any(|a| match a.strip_prefix("*.") {
                    Some(domain) => host
                        .strip_suffix(domain)
                        .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
                    None => host == a,
                })
    }

    /// Refuses an internal address unless its network is allowed.
    pub fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), Refusal> {
        if internal(addr) && !self.allowed_networks.iter().any(|n| n.contains(&addr)) {
            return Err(Refusal::Internal {
                host: host.to_string(),
                addr,
            });
        }
        Ok(())
    }

    /// Every address of `host`, each checked; refused if any one is internal.
    async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Refusal> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| Refusal::Unresolved(host.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(Refusal::Unresolved(host.to_string()));
        }
        for a in &addrs {
            self.check_addr(host, a.ip())?;
        }
        Ok(addrs)
    }
}

/// The resolver the webhook client connects through: the guard's checks on every address.
pub struct GuardedResolver(pub Arc<Guard>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = guard.resolve(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Loopback, private, link-local (which holds the cloud metadata address 169.254.169.254),
/// shared, reserved, documentation, multicast and unspecified addresses; IPv4 inside IPv6
/// (mapped, compatible, NAT64) counts as the IPv4 address it carries.
pub fn internal(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => internal_v4(a),
        IpAddr::V6(a) => internal_v6(a),
    }
}

fn internal_v4(a: Ipv4Addr) -> bool {
    let [o1, o2, o3, _] = a.octets();
    a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || a.is_documentation()
        || o1 == 0
        || (o1 == 100 && (64..128).contains(&o2)) // shared address space (carrier NAT)
        || (o1 == 192 && o2 == 0 && o3 == 0) // IETF protocol assignments
        || (o1 == 198 && (o2 == 18 || o2 == 19)) // benchmarking
        || o1 >= 240 // reserved
}

fn internal_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let s = a.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return internal_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ));
    }
    a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local, e.g. fd00:ec2::254 (metadata)
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated) and the like
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(hosts: &[&str], nets: &[&str]) -> Guard {
        let mut w = crate::config::Settings::defaults().webhooks;
        w.allowed_hosts = hosts.iter().map(|s| s.to_string()).collect();
        w.allowed_networks = nets.iter().map(|s| s.to_string()).collect();
        Guard::new(&w)
    }

    #[test]
    fn internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(internal(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.215.14", "2606:4700::1111", "64:ff9b::5db8:d70e"] {
            assert!(!internal(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn urls() {
        let g = guard(&[], &[]);
        assert!(g.check_url("https://hooks.example.com/x").is_ok());
        assert_eq!(
            g.check_url("ftp://x.example/").unwrap_err(),
            Refusal::Scheme
        );
        assert_eq!(
            g.check_url("file:///etc/passwd").unwrap_err(),
            Refusal::Scheme
        );
        assert_eq!(
            g.check_url("https://u:p@x.example/").unwrap_err(),
            Refusal::Credentials
        );
        assert!(matches!(
            g.check_url("http://169.254.169.254/latest/meta-data")
                .unwrap_err(),
            Refusal::Internal { .. }
        ));
        assert!(matches!(
            g.check_url("http://[::ffff:a9fe:a9fe]/").unwrap_err(),
            Refusal::Internal { .. }
        ));
        assert!(matches!(
            g.check_url("http://10.0.0.1:8080/").unwrap_err(),
            Refusal::Internal { .. }
        ));
        // Decimal and short forms are parsed as the addresses they are.
        assert!(matches!(
            g.check_url("http://2852039166/").unwrap_err(),
            Refusal::Internal { .. }
        ));
        assert!(matches!(
            g.check_url("http://127.1/").unwrap_err(),
            Refusal::Internal { .. }
        ));
        let open = guard(&[], &["127.0.0.0/8"]);
        assert!(open.check_url("http://127.0.0.1:9/").is_ok());
        assert!(open.check_url("http://169.254.169.254/").is_err());
    }

    #[test]
    fn allowed_hosts() {
        let g = guard(&["hooks.example.com", "*.crm.example"], &[]);
        assert!(g.check_url("https://hooks.example.com/a").is_ok());
        assert!(g.check_url("https://HOOKS.example.com./a").is_ok());
        assert!(g.check_url("https://eu.crm.example/a").is_ok());
        assert!(matches!(
            g.check_url("https://crm.example/a").unwrap_err(),
            Refusal::HostNotAllowed(_)
        ));
        assert!(matches!(
            g.check_url("https://evilcrm.example/a").unwrap_err(),
            Refusal::HostNotAllowed(_)
        ));
        assert!(matches!(
            g.check_url("https://other.example/a").unwrap_err(),
            Refusal::HostNotAllowed(_)
        ));
    }

    #[tokio::test]
    async fn names_are_resolved_and_every_address_checked() {
        let g = guard(&[], &[]);
        assert!(matches!(
            g.check_url_resolved("http://localhost:9/")
                .await
                .unwrap_err(),
            Refusal::Internal { .. }
        ));
        let open = guard(&[], &["127.0.0.0/8", "::1/128"]);
        assert!(open.check_url_resolved("http://localhost:9/").await.is_ok());
    }
}
