//! Country of a client IP from a local MaxMind-format database (`server.geoip_database`),
//! used when the load balancer sends no trusted country header. Loaded once at start.

use std::net::IpAddr;
use std::path::Path;

pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
#[error("server.geoip_database `{path}`: {reason}")]
pub struct GeoIpError {
    path: String,
    reason: String,
}

impl GeoIp {
    pub fn open(path: &str) -> Result<GeoIp, GeoIpError> {
        let err = |reason: String| GeoIpError {
            path: path.to_string(),
            reason,
        };
        let reader =
            maxminddb::Reader::open_readfile(Path::new(path)).map_err(|e| err(e.to_string()))?;
        Ok(GeoIp { reader })
    }

    /// The ISO country code of `ip`, or "" when the database does not know it.
    pub fn country(&self, ip: IpAddr) -> String {
        let found = self
            .reader
            .lookup(ip)
            .ok()
            .and_then(|r| r.decode::<maxminddb::geoip2::Country>().ok().flatten());
        found
            .and_then(|c| c.country.iso_code.map(str::to_string))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> String {
        format!(
            "{}/tests/fixtures/geoip/country.mmdb",
            env!("CARGO_MANIFEST_DIR")
        )
    }

    #[test]
    fn looks_up_countries_and_misses_cleanly() {
        let g = GeoIp::open(&fixture()).unwrap();
        assert_eq!(g.country("203.0.113.9".parse().unwrap()), "DE");
        assert_eq!(g.country("198.51.100.1".parse().unwrap()), "FR");
        assert_eq!(g.country("2001:db8::1".parse().unwrap()), "NL");
        assert_eq!(g.country("192.0.2.1".parse().unwrap()), "");
        let missing = GeoIp::open("/no/such/file.mmdb")
            .err()
            .expect("no such file");
        assert!(missing.to_string().contains("server.geoip_database"));
    }
}
